"""settlement fixes: voucher application and expiry, payee receipts, pending CRL deliveries

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 07:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("vouchers") as batch:
        batch.add_column(sa.Column("applied_seq", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("expires", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("returned_at", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("crl_deliveries") as batch:
        batch.add_column(sa.Column("pending_seq", sa.BigInteger(), nullable=True))
    op.create_table(
        "receipts",
        sa.Column("wallet", sa.LargeBinary(length=12), nullable=False),
        sa.Column("payer", sa.LargeBinary(length=12), nullable=False),
        sa.Column("counter", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("wallet", "payer", "counter"),
    )
    torn_settled = sa.text("state IN ('released', 'presumed')")
    op.create_index(
        "ix_spends_payee_torn",
        "spends",
        ["payee"],
        postgresql_where=torn_settled,
        sqlite_where=torn_settled,
    )


def downgrade() -> None:
    op.drop_index("ix_spends_payee_torn", table_name="spends")
    op.drop_table("receipts")
    with op.batch_alter_table("crl_deliveries") as batch:
        batch.drop_column("pending_seq")
    with op.batch_alter_table("vouchers") as batch:
        batch.drop_column("returned_at")
        batch.drop_column("expires")
        batch.drop_column("applied_seq")
