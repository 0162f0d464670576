"""certified keys: each issued wallet certificate records its key's SPKI digest and algorithm

After an algorithm migration a wallet re-keys once, at a sync reported under its old key with a
KeyRollover CSR. Within the legacy window that old key (a clone's, or a forger's who broke the
old algorithm) could re-key the wallet again: the ledger kept no record of which key it had
certified. ``certificates`` gains ``spki_digest`` (SHA-256 of the certified key's DER
SubjectPublicKeyInfo) and ``algorithm`` (its short name, e.g. ``ml-dsa-44``); ``sync.run``
reads them under the wallet's lock (``authority.certified_keys``, ``sync.check_rekey``).

Existing rows stay NULL in both columns: the table never held the certificate itself, so the
key of a certificate issued before this revision cannot be recovered. A NULL row is "key not
known" and is never taken for a certificate of the new algorithm; a wallet that re-keyed before
this revision is covered from its next sync on (which records its certified key). Nullable
columns only: no data changes, both ways on SQLite (batch mode) and PostgreSQL.

Revision ID: 0006_certified_keys
Revises: 0005_hot_indexes
Create Date: 2026-11-28 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_certified_keys"
down_revision = "0005_hot_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("certificates") as batch:
        batch.add_column(sa.Column("spki_digest", sa.LargeBinary(32), nullable=True))
        batch.add_column(sa.Column("algorithm", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("certificates") as batch:
        batch.drop_column("algorithm")
        batch.drop_column("spki_digest")
