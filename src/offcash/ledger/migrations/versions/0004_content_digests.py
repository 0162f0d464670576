"""content digests: name each stored spend by what was signed, not by its bytes

Until this revision a message's digest was the SHA-256 of its bytes, so a malleated copy of a
payment (ECDSA ``s -> n - s``) was another message. Now a signed message is named by
``offcash.protocol.messages.digest`` (SHA-256 of its COSE ``Sig_structure``): this rewrites the
digest of every row of ``spends`` and ``conflicts`` from the message it stores, so that a copy
uploaded after the upgrade (the payer's, say) is recognised as the same spend. Two ``conflicts``
rows that were twins of one content become one (the evidence kept is the first). Rows without
their message are left as they are. Data only: the schema does not change.

Revision ID: 0004_digests
Revises: 0003
Create Date: 2026-11-28 09:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from offcash.protocol.messages import digest

revision = "0004_digests"
down_revision = "0003"
branch_labels = None
depends_on = None

_COLUMNS = ("payer", "counter", "digest", "message")


def _table(name: str) -> sa.TableClause:
    return sa.table(name, *(sa.column(c) for c in _COLUMNS))


def upgrade() -> None:
    conn = op.get_bind()
    spends = _table("spends")
    spent = conn.execute(sa.select(spends.c.payer, spends.c.counter, spends.c.message)).all()
    for payer, counter, message in spent:
        if message:
            conn.execute(
                sa.update(spends)
                .where(spends.c.payer == payer, spends.c.counter == counter)
                .values(digest=digest(bytes(message)))
            )
    conflicts = _table("conflicts")
    rows = conn.execute(
        sa.select(conflicts.c.payer, conflicts.c.counter, conflicts.c.digest, conflicts.c.message)
    ).all()
    done: set[tuple[bytes, int, bytes]] = set()
    for payer, counter, old, message in rows:
        if not message:
            continue
        key = conflicts.c.payer == payer, conflicts.c.counter == counter, conflicts.c.digest == old
        new = digest(bytes(message))
        if (bytes(payer), counter, new) in done:
            conn.execute(sa.delete(conflicts).where(*key))  # a twin of a row already renamed
            continue
        done.add((bytes(payer), counter, new))
        if new != bytes(old):
            conn.execute(sa.update(conflicts).where(*key).values(digest=new))


def downgrade() -> None:
    """Names go back to the SHA-256 of the stored bytes (twins merged above stay merged)."""
    import hashlib

    conn = op.get_bind()
    for name in ("spends", "conflicts"):
        t = _table(name)
        for payer, counter, old, message in conn.execute(
            sa.select(t.c.payer, t.c.counter, t.c.digest, t.c.message)
        ).all():
            if message:
                conn.execute(
                    sa.update(t)
                    .where(t.c.payer == payer, t.c.counter == counter, t.c.digest == old)
                    .values(digest=hashlib.sha256(bytes(message)).digest())
                )
