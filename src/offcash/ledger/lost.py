"""The lost-device refund: what the ledger believes a lost SE held, paid to its owner once.

Theory of operation: a lost wallet's share of its bank's float is what the ledger believes its
SE held: the balance at its last acknowledged sync, plus the vouchers no sync showed applied and
not yet returned (loaded since, or never), plus the torn payments ``release_torn`` presumed it
received, minus its spends that surfaced since: ``settle.deficit``, negated. ``refund`` moves
that share from the float to the owner's account, in the caller's transaction, exactly once
(the wallet goes from ``revoked`` to ``refunded`` by a conditional UPDATE). The presumed
payments become ``released``: whether or not the SE had received them, their one owner is now
paid, and nothing moves them again (``release_torn`` and ``settle.reclaim_released`` never
presume for a refunded wallet). A negative share means the SE spent more than it held (its
received payments never surfaced, or it was broken): the shortfall is the bank's loss, booked
from its reserve to the float and listed as a ``reconcile`` anomaly with its amount, so the
float stays what the live SEs hold. Spends surfacing after the refund are charged to the
reserve by ``settle`` (late surfacing).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from offcash.domain.ids import WalletId
from offcash.ledger import books, registry, settle
from offcash.ledger import schema as s
from offcash.ledger.errors import ClaimNotReady
from offcash.ledger.states import Event


def _return_vouchers(conn: Connection, wallet: bytes, now: int) -> None:
    """Mark the vouchers no sync showed applied, and not returned, as returned."""
    v = s.vouchers
    conn.execute(
        sa.update(v)
        .where(v.c.wallet == wallet, v.c.applied_at.is_(None), v.c.returned_at.is_(None))
        .values(returned_at=now)
    )


def _release_presumed(conn: Connection, wallet: Row[Any], now: int) -> None:
    """Move the payments presumed in this SE to ``released`` (their value stays in the float,
    which the refund pays out)."""
    legs = books.Legs()  # LOST_REFUNDED moves no value
    for table in (s.spends, s.conflicts):
        rows = conn.execute(
            sa.select(table).where(settle.torn_by_payee(table, bytes(wallet.id), settle.PRESUMED))
        ).all()
        for r in rows:
            settle.move(conn, table, r, Event.LOST_REFUNDED, None, wallet, legs, now)


def refund(conn: Connection, wallet: Row[Any], now: int) -> int:
    """Refund a ``revoked`` lost ``wallet`` (a wallets row) to its owner's account; the amount.

    Raises ``ClaimNotReady`` if it was already refunded (nothing is written)."""
    wid = bytes(wallet.id)
    done = conn.execute(
        sa.update(s.wallets)
        .where(s.wallets.c.id == wid, s.wallets.c.status == "revoked")
        .values(status="refunded")
        .returning(s.wallets.c.id)
    ).first()
    if done is None:
        raise ClaimNotReady("already refunded")
    held = -settle.deficit(conn, wid)  # what the books say the SE holds
    _return_vouchers(conn, wid, now)
    _release_presumed(conn, wallet, now)
    legs = books.Legs()
    if held < 0:
        legs.move(books.reserve(wallet.bank), books.float_of(wallet.bank), -held)
        registry.anomaly(
            conn,
            "reconcile",
            f"lost device spent {-held} more than it held",
            now,
            wid,
            wallet.bank,
            -held,
        )
    refund = max(held, 0)
    legs.move(books.float_of(wallet.bank), str(wallet.account), refund)
    books.post(conn, now, "lost-refund", legs, memo=str(WalletId(wid)))
    return refund
