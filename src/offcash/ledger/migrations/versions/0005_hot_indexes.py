"""hot indexes: release_torn by (state, time), revocations by wallet, torn by (payee, state)

``release_torn`` selected payments in suspense older than a cutoff by scanning the whole
``spends`` table (88-141 ms at 600k spends, growing linearly); ``(state, time)`` makes it a
range of an index whose length is the number of payments in that state. The CRL-held rule and
``revoke`` look ``revocations`` up by wallet. The partial index ``ix_spends_payee_torn`` (0002)
gains ``state`` as a second column: SQLite, which has no statistics, would otherwise pick
``ix_spends_state_time`` for the deficit check's ``payee = ? AND state = 'presumed'`` (one
equality each) and read every presumed payment; ``conflicts`` gets the same partial index
(``ix_conflicts_payee_torn``), since the same lookups read it. Indexes only: no data changes.
Plans of every hot statement: docs/SETTLEMENT.md, "Hot queries and their plans".

Self-contained (creates and drops only indexes, and puts 0002's index back on downgrade), so it
can be re-chained after another 0005 revision at merge: only ``down_revision`` would change.

Revision ID: 0005_hot_indexes
Revises: 0004_digests
Create Date: 2026-11-28 10:25:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_hot_indexes"
down_revision = "0004_digests"
branch_labels = None
depends_on = None

_INDEXES = (
    ("ix_spends_state_time", "spends", ["state", "time"]),
    ("ix_conflicts_state_time", "conflicts", ["state", "time"]),
    ("ix_revocations_wallet", "revocations", ["wallet"]),
)


_TORN = "ix_spends_payee_torn"


def _torn(name: str, table: str, columns: list[str]) -> None:
    where = sa.text("state IN ('released', 'presumed')")
    op.create_index(name, table, columns, postgresql_where=where, sqlite_where=where)


def upgrade() -> None:
    for name, table, columns in _INDEXES:
        op.create_index(name, table, columns, unique=False)
    _torn("ix_conflicts_payee_torn", "conflicts", ["payee", "state"])
    op.drop_index(_TORN, table_name="spends")
    _torn(_TORN, "spends", ["payee", "state"])


def downgrade() -> None:
    op.drop_index(_TORN, table_name="spends")
    _torn(_TORN, "spends", ["payee"])
    op.drop_index("ix_conflicts_payee_torn", table_name="conflicts")
    for name, table, _ in reversed(_INDEXES):
        op.drop_index(name, table_name=table)
