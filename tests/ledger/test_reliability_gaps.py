"""Losses found by the conservation test (tests/ledger/test_conservation.py), once pinned as strict
expected failures, now fixed; each names the honest party who was out of pocket."""

from __future__ import annotations

from ledgerkit import World

from harness import T0

WINDOW = 10 * 86400 + 1  # the world fixture's claim window, and a second


def test_refund_counts_voucher_funded_in_the_second_of_sync(world: World) -> None:
    se, wid, acct = world.wallet(20_000)  # funded, loaded and ...
    world.sync(se, T0)  # ... synced in the same second
    before = world.ledger.balance(acct)
    world.ledger.report_lost(wid, T0 + 10)
    refund = world.ledger.refund_lost(wid, T0 + 10 + WINDOW)
    assert refund == 20_000  # is 40_000: the bank pays the voucher twice
    assert world.ledger.balance(acct) == before + 20_000


def test_refund_counts_voucher_loaded_after_a_later_sync(world: World) -> None:
    se, wid, _ = world.wallet(0)
    voucher = world.ledger.fund(wid, 5_000, T0)  # the load is delayed (a crash, no battery)
    world.sync(se, T0 + 60)
    se.load(voucher, T0 + 120)
    assert se.status(T0 + 120).balance == 5_000
    world.ledger.report_lost(wid, T0 + 180)  # the device is lost before its next sync
    assert world.ledger.refund_lost(wid, T0 + 180 + WINDOW) == 5_000  # is 0


def test_lost_fund_answer(world: World) -> None:
    se, wid, acct = world.wallet(0)
    before = world.ledger.balance(acct)
    world.ledger.fund(wid, 5_000, T0)  # committed; the answer (the voucher) is lost
    world.sync(se, T0 + 2 * 86400)  # the voucher expired unloaded, the SE synced
    assert world.ledger.balance(acct) == before  # is before - 5_000, forever


def test_crl_delivery_recorded_when_ack_is_lost(world: World) -> None:
    mallory, mid, _ = world.wallet(10_000, "Bank B")
    clone = type(mallory)(mallory._s.encode())  # a copied SE file
    alice, aid, alice_acct = world.wallet(0)
    bob, bid, _ = world.wallet(0)
    alice.receive(mallory.pay_to(aid, 1_000, T0 + 1), T0 + 1)
    bob.receive(clone.pay_to(bid, 1_000, T0 + 1), T0 + 1)
    world.sync(alice, T0 + 2)
    world.sync(bob, T0 + 3)  # the double spend is detected: mallory is revoked
    assert world.ledger.wallet_status(mid) == "revoked"
    world.sync(alice, T0 + 4, apply=False)  # committed with the new CRL; the answer is lost
    alice.receive(mallory.pay_to(aid, 500, T0 + 5), T0 + 5)  # alice never got the CRL
    res = world.sync(alice, T0 + 6)
    assert res.refused == []  # refused REVOKED ...
    assert world.ledger.balance(alice_acct) == 100_000  # ... and charged back to alice
