"""The ledger's tables: one SQLAlchemy Core schema for SQLite and PostgreSQL.

Theory of operation: money is ``BigInteger`` minor units. Balances are never stored: an
account's balance is the sum of its postings, so no row is a hot spot and every movement is an
append. Uniqueness rules carry the settlement guarantees: ``spends`` has one row per
``(payer, counter)`` (the first message seen; it is what debits the payer's float),
``conflicts`` one row per further distinct message with the same ``(payer, counter)`` (double
spend evidence), ``vouchers`` one row per voucher id. Every one of them leads with the payer or
wallet id, the distribution key for a sharded PostgreSQL (Citus): see docs/SETTLEMENT.md.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

WALLET = sa.LargeBinary(12)
DIGEST = sa.LargeBinary(32)

meta = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

authorities = sa.Table(
    "authorities",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("is_root", sa.Boolean, nullable=False),
    sa.Column("key_der", sa.LargeBinary, nullable=False),
    sa.Column("cert_der", sa.LargeBinary, nullable=False),
    sa.Column("crl_number", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("crl_der", sa.LargeBinary, nullable=True),
)

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", sa.String(80), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # issued|reserve|float|suspense|customer
    sa.Column("bank", sa.String(64), nullable=True),
    sa.Column("holder", sa.String(200), nullable=True),
)

journal = sa.Table(
    "journal",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("time", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("memo", sa.Text, nullable=False, server_default=""),
)

postings = sa.Table(
    "postings",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("journal_id", sa.BigInteger, sa.ForeignKey("journal.id"), nullable=False),
    sa.Column("account", sa.String(80), sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),  # debit > 0, credit < 0
    sa.Index("ix_postings_account", "account"),
)

wallets = sa.Table(
    "wallets",
    metadata,
    sa.Column("id", WALLET, primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # se|terminal
    sa.Column("bank", sa.String(64), nullable=False),
    sa.Column("account", sa.String(80), sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("limits", sa.String(200), nullable=True),  # CBOR-free: comma-separated ints
    sa.Column("next_seq", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("status", sa.String(16), nullable=False, server_default="active"),
    sa.Column("revoked_at", sa.BigInteger, nullable=True),
    sa.Column("reason", sa.String(64), nullable=True),
)

syncs = sa.Table(
    "syncs",
    metadata,
    sa.Column("wallet", WALLET, primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True),
    sa.Column("head", DIGEST, nullable=False),
    sa.Column("balance", sa.BigInteger, nullable=False),
    sa.Column("counter", sa.BigInteger, nullable=False),
    sa.Column("time", sa.BigInteger, nullable=False),
)

certificates = sa.Table(
    "certificates",
    metadata,
    sa.Column("wallet", WALLET, primary_key=True),
    sa.Column("serial", sa.BigInteger, primary_key=True),
    sa.Column("bank", sa.String(64), nullable=False),
    sa.Column("not_after", sa.BigInteger, nullable=False),
    # the certified key: SHA-256 of its DER SubjectPublicKeyInfo, and its algorithm's short
    # name; NULL for certificates issued before migration 0006_certified_keys (key unknown).
    # After an algorithm migration they decide whether a wallet already re-keyed, and to which
    # key (sync.check_rekey)
    sa.Column("spki_digest", DIGEST, nullable=True),
    sa.Column("algorithm", sa.String(16), nullable=True),
)

revocations = sa.Table(
    "revocations",
    metadata,
    sa.Column("bank", sa.String(64), primary_key=True),
    sa.Column("serial", sa.BigInteger, primary_key=True),
    sa.Column("wallet", WALLET, nullable=False),
    sa.Column("revoked_at", sa.BigInteger, nullable=False),
    sa.Column("not_after", sa.BigInteger, nullable=False),
    sa.Column("crl_number", sa.BigInteger, nullable=False),
    # the CRL-held rule (authority.revocations_known_to) and revoke() look revocations up by
    # wallet; without it both read every revocation of the bank (migration 0005_hot_indexes)
    sa.Index("ix_revocations_wallet", "wallet"),
)

crl_deliveries = sa.Table(
    "crl_deliveries",
    metadata,
    sa.Column("wallet", WALLET, primary_key=True),
    sa.Column("bank", sa.String(64), primary_key=True),
    sa.Column("crl_number", sa.BigInteger, primary_key=True),
    sa.Column("delivered_at", sa.BigInteger, nullable=False),
    # set while the sync that delivered it is unacknowledged: the delivery counts only once
    # the wallet's next sync shows it applied that acknowledgement (its sync_seq advanced)
    sa.Column("pending_seq", sa.BigInteger, nullable=True),
)

vouchers = sa.Table(
    "vouchers",
    metadata,
    sa.Column("wallet", WALLET, primary_key=True),
    sa.Column("id", sa.LargeBinary(16), primary_key=True),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("issued_at", sa.BigInteger, nullable=False),
    sa.Column("applied_at", sa.BigInteger, nullable=True),
    sa.Column("applied_seq", sa.BigInteger, nullable=True),  # the sync that first showed it
    sa.Column("expires", sa.BigInteger, nullable=True),
    sa.Column("returned_at", sa.BigInteger, nullable=True),  # credited back (expired, refund)
)

receipts = sa.Table(
    "receipts",
    metadata,
    sa.Column("wallet", WALLET, primary_key=True),
    sa.Column("payer", WALLET, primary_key=True),
    sa.Column("counter", sa.BigInteger, primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False),  # the sync whose log listed it
)

_SPEND_COLUMNS = (
    ("kind", sa.String(8)),  # payment|unload
    ("payee", WALLET),
    ("amount", sa.BigInteger),
    ("time", sa.BigInteger),
    ("state", sa.String(12)),  # a states.SpendState value
    ("message", sa.LargeBinary),
    ("settled_at", sa.BigInteger),
)


def _spend_table(name: str, *keys: sa.Column[object]) -> sa.Table:
    cols = [sa.Column(n, t, nullable=(n == "payee")) for n, t in _SPEND_COLUMNS]
    return sa.Table(name, metadata, *keys, *cols)


spends = _spend_table(
    "spends",
    sa.Column("payer", WALLET, primary_key=True),
    sa.Column("counter", sa.BigInteger, primary_key=True),
    sa.Column("digest", DIGEST, nullable=False),
)
_TORN_SETTLED = sa.text("state IN ('released', 'presumed')")
# partial: only torn payments settled without the payee's report (rare), looked up by payee
# when that payee's spends surface or it syncs (settle.reclaim_released, settle.unpresume);
# free for the insert path
# (payee, state) since 0005_hot_indexes: two equality columns, so that SQLite (no statistics)
# prefers it to ix_spends_state_time for "payee = ? AND state = 'presumed'"
sa.Index(
    "ix_spends_payee_torn",
    spends.c.payee,
    spends.c.state,
    postgresql_where=_TORN_SETTLED,
    sqlite_where=_TORN_SETTLED,
)

# release_torn: payments still in suspense and older than a cutoff, without scanning every
# spend ever settled (a range of the index; bound parameters work, unlike a partial index on
# SQLite). Migration 0005_hot_indexes; plans in docs/SETTLEMENT.md "Hot queries and their plans"
sa.Index("ix_spends_state_time", spends.c.state, spends.c.time)

conflicts = _spend_table(
    "conflicts",
    sa.Column("payer", WALLET, primary_key=True),
    sa.Column("counter", sa.BigInteger, primary_key=True),
    sa.Column("digest", DIGEST, primary_key=True),
)
sa.Index("ix_conflicts_state_time", conflicts.c.state, conflicts.c.time)
sa.Index(
    "ix_conflicts_payee_torn",
    conflicts.c.payee,
    conflicts.c.state,
    postgresql_where=_TORN_SETTLED,
    sqlite_where=_TORN_SETTLED,
)

anomalies = sa.Table(
    "anomalies",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("wallet", WALLET, nullable=True),
    sa.Column("bank", sa.String(64), nullable=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("time", sa.BigInteger, nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("evidence", sa.LargeBinary, nullable=True),
    sa.Index("ix_anomalies_wallet", "wallet"),
)

#: One row per idempotency key of an operator request (``offcash.ledger.idempotency``): the
#: SHA-256 of the key, the request it named (CBOR) and the answer it got.
idempotent_requests = sa.Table(
    "idempotent_requests",
    metadata,
    sa.Column("key", DIGEST, primary_key=True),
    sa.Column("request", sa.LargeBinary, nullable=False),
    sa.Column("result", sa.LargeBinary, nullable=True),
)
