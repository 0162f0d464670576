"""Several service processes settling the same uploads at once never double-credit."""

from __future__ import annotations

import multiprocessing as mp
import random

from ledgerkit import World

from offcash.domain.ids import WalletId
from offcash.ledger import LedgerService
from offcash.protocol import messages as m

from harness import T0


def _redeem(url: str, schema: str | None, terminal: bytes, payments: list[bytes], seed: int) -> int:
    ledger = LedgerService.open(url, schema=schema)
    mine = payments[:]
    random.Random(seed).shuffle(mine)
    settled = 0
    for i in range(0, len(mine), 7):
        settled += ledger.redeem(WalletId(terminal), mine[i : i + 7], T0 + 100).settled
    ledger.engine.dispose()
    return settled


def test_concurrent_redemptions_settle_each_payment_once(
    world: World, db_target: tuple[str, str | None]
) -> None:
    url, schema = db_target
    shop = world.account("Bank B", 0)
    term = world.ledger.register_terminal(shop)
    payments = []
    for _ in range(4):
        se, _, _ = world.wallet(5_000)
        payments += [se.pay_to(term, 10 + i, T0 + i) for i in range(10)]
    total = sum(10 + i for i in range(10)) * 4
    world.ledger.engine.dispose()
    with mp.get_context("fork").Pool(4) as pool:
        counts = pool.starmap(_redeem, [(url, schema, term.raw, payments, s) for s in range(4)])
    assert sum(counts) == len(payments)  # each settled by exactly one process
    assert world.ledger.balance(shop) == total
    audit = world.ledger.audit()
    assert audit.balanced and audit.banks["Bank A"].float == 4 * 5_000 - total


def _fund(url: str, schema: str | None, wallet: bytes, key: bytes) -> bytes:
    ledger = LedgerService.open(url, schema=schema)
    try:
        return ledger.fund(WalletId(wallet), 1_000, T0 + 1, key)
    finally:
        ledger.engine.dispose()


def test_concurrent_retries_of_one_fund_debit_once(
    world: World, db_target: tuple[str, str | None]
) -> None:
    url, schema = db_target
    _, wid, acct = world.wallet(0)
    key = b"k" * 16
    world.ledger.engine.dispose()
    with mp.get_context("fork").Pool(4) as pool:
        vouchers = pool.starmap(_fund, [(url, schema, wid.raw, key)] * 8)
    assert {m.parse_voucher(v).voucher_id for v in vouchers} == {key}
    assert world.ledger.balance(acct) == 100_000 - 1_000
    assert world.ledger.audit().banks["Bank A"].float == 1_000
