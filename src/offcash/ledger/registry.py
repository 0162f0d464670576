"""Wallets and terminals known to the ledger: who owns them, their bank, their status.

Theory of operation: a wallet row is written at enrolment (a secure element) or registration
(a receive-only terminal) and names the owner's customer account, which is where unloads,
terminal redemptions, released torn payments and lost-device refunds are paid. ``status`` moves
``active -> revoked -> refunded`` and never back; revocation is one conditional update, so a
wallet is revoked (and its certificates listed in a CRL) exactly once.

Concurrency: a transaction that decides something from a wallet's state and then writes (sync,
fund, unload and every settlement, lost-device report and refund, torn-payment release) first
locks that wallet's row (``get``/``many`` with ``lock=True``: ``SELECT ... FOR UPDATE``, several
rows in one statement in id order, so that two lockers never wait on each other in a cycle).
On PostgreSQL (READ COMMITTED) this serialises them per wallet; SQLite's ``BEGIN IMMEDIATE``
already serialises every writer. docs/SETTLEMENT.md "Concurrency" lists each rule and its lock.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from offcash.domain.ids import WalletId
from offcash.domain.limits import Limits
from offcash.ledger import authority
from offcash.ledger import schema as s
from offcash.ledger.errors import NotFound

W = s.wallets


def encode_limits(limits: Limits) -> str:
    """Limits as text for the wallets table."""
    return ",".join(
        str(v)
        for v in (
            limits.max_balance,
            limits.max_payment,
            limits.max_offline_payments,
            limits.max_offline_value,
            limits.max_offline_seconds,
        )
    )


def decode_limits(text: str) -> Limits:
    """Limits from their text form."""
    return Limits(*(int(v) for v in text.split(",")))


# built once (SQLAlchemy then reuses their compiled form): these run several times per sync
_GET = sa.select(W).where(W.c.id == sa.bindparam("id"))
_GET_LOCKED = _GET.with_for_update()
_MANY = sa.select(W).where(W.c.id.in_(sa.bindparam("ids", expanding=True)))
_MANY_LOCKED = _MANY.order_by(W.c.id).with_for_update()


def get(conn: Connection, wallet: WalletId, lock: bool = False) -> Row[Any]:
    """The wallet's row, or ``NotFound``. ``lock``: hold its row lock until the transaction
    ends (PostgreSQL ``SELECT ... FOR UPDATE``; SQLite's write transaction already excludes
    every other writer), so that a rule which reads the wallet's state and then writes
    (sync, unload, fund) is never interleaved with another on the same wallet."""
    row = conn.execute(_GET_LOCKED if lock else _GET, {"id": wallet.raw}).first()
    if row is None:
        raise NotFound(f"unknown wallet {wallet}")
    return row


def many(conn: Connection, ids: Iterable[bytes], lock: bool = False) -> dict[bytes, Row[Any]]:
    """Rows of the wallets among ``ids`` that exist; ``lock``: locked until the transaction
    ends, in id order (every locker takes them in that order: no deadlock between them)."""
    wanted = sorted(set(ids))
    out: dict[bytes, Row[Any]] = {}
    for i in range(0, len(wanted), 500):
        rows = conn.execute(_MANY_LOCKED if lock else _MANY, {"ids": wanted[i : i + 500]})
        for row in rows:
            out[bytes(row.id)] = row
    return out


def revoke(
    conn: Connection, auth: authority.Authorities, wallet: WalletId, reason: str, now: int
) -> bool:
    """Revoke an active wallet (status and CRL); False if it was already revoked."""
    row = conn.execute(
        sa.update(W)
        .where(W.c.id == wallet.raw, W.c.status == "active")
        .values(status="revoked", revoked_at=now, reason=reason)
        .returning(W.c.bank)
    ).first()
    if row is None:
        return False
    authority.revoke(conn, auth, wallet, row.bank, now)
    return True


def anomaly(
    conn: Connection,
    kind: str,
    detail: str,
    now: int,
    wallet: bytes | None = None,
    bank: str | None = None,
    amount: int = 0,
    evidence: bytes | None = None,
) -> None:
    """Record something settlement detected (double spend, loss, mismatch, counterfeit...)."""
    row = {"wallet": wallet, "bank": bank, "kind": kind, "amount": amount, "time": now}
    conn.execute(_ANOMALY, {**row, "detail": detail, "evidence": evidence})


_ANOMALY = sa.insert(s.anomalies)


def anomalies(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Record several anomalies at once (``anomaly``'s arguments as dicts, in one statement)."""
    if rows:
        conn.execute(_ANOMALY, rows)


def anomaly_counts(conn: Connection) -> dict[str, int]:
    """How many anomalies the ledger recorded, by kind (for monitoring)."""
    a = s.anomalies
    rows = conn.execute(sa.select(a.c.kind, sa.func.count()).group_by(a.c.kind))
    return {str(kind): int(n) for kind, n in rows}
