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


def test_presumed_payment_of_a_lost_device_is_refunded(world: World) -> None:
    """A torn payment presumed in the payee's SE (its onward spend surfaced) stayed in the float
    when the payee's device was then lost: the refund ignored it."""
    alice, _, _ = world.wallet(5_000)
    bob, bid, bob_acct = world.wallet(0, "Bank B")
    carol, cid, _ = world.wallet(0, "Bank B")
    bob.receive(alice.pay_to(bid, 1_000, T0 + 1), T0 + 1)  # bob never syncs
    carol.receive(bob.pay_to(cid, 600, T0 + 2), T0 + 2)
    world.sync(alice, T0 + 10)
    world.sync(carol, T0 + 11)  # bob's spend surfaces: he holds the payment
    age = world.ledger.params.max_payment_age + world.ledger.params.clock_skew
    assert world.ledger.release_torn(T0 + 20 + age) == 1  # presumed in bob's SE
    before = world.ledger.balance(bob_acct)
    world.ledger.report_lost(bid, T0 + 30 + age)
    assert world.ledger.refund_lost(bid, T0 + 30 + age + WINDOW) == 400  # is 0
    assert world.ledger.balance(bob_acct) == before + 400
    audit = world.ledger.audit()
    assert audit.banks["Bank B"].float == carol.status(T0).balance == 600  # is 1_000
    assert world.ledger.release_torn(T0 + 40 + age + WINDOW) == 0


def test_torn_payment_to_a_refunded_device_goes_to_its_owner(world: World) -> None:
    """After the refund, a torn payment to the lost wallet surfaced with its onward spend: it
    was presumed into the float of a wallet nothing settles any more."""
    alice, _, _ = world.wallet(5_000)
    bob, bid, bob_acct = world.wallet(0, "Bank B")
    carol, cid, _ = world.wallet(0, "Bank B")
    bob.receive(alice.pay_to(bid, 1_000, T0 + 1), T0 + 1)
    carol.receive(bob.pay_to(cid, 600, T0 + 2), T0 + 2)
    world.ledger.report_lost(bid, T0 + 3)
    assert world.ledger.refund_lost(bid, T0 + 3 + WINDOW) == 0  # nothing surfaced yet
    world.sync(alice, T0 + 10 + WINDOW)
    world.sync(carol, T0 + 11 + WINDOW)  # late surfacing: the bank pays it from its reserve
    age = world.ledger.params.max_payment_age + world.ledger.params.clock_skew
    before = world.ledger.balance(bob_acct)
    assert world.ledger.release_torn(T0 + 20 + age + WINDOW) == 1
    assert world.ledger.balance(bob_acct) == before + 1_000  # is before: presumed, stuck
    audit = world.ledger.audit()
    assert audit.banks["Bank B"].float == carol.status(T0).balance == 600
    assert audit.suspense == 0


def test_lost_device_that_spent_more_than_it_held_is_the_banks_loss(world: World) -> None:
    """Bob spent a payment whose payer was refunded as lost before it surfaced; then bob's device
    is lost too. His refund is nothing, and the float he overdrew is booked as his bank's loss
    (with the amount), so the float is still what the live SEs hold."""
    alice, aid, _ = world.wallet(5_000)
    bob, bid, _ = world.wallet(0, "Bank B")
    carol, cid, _ = world.wallet(0, "Bank B")
    bob.receive(alice.pay_to(bid, 1_000, T0 + 1), T0 + 1)
    carol.receive(bob.pay_to(cid, 1_000, T0 + 2), T0 + 2)
    world.ledger.report_lost(aid, T0 + 3)
    assert world.ledger.refund_lost(aid, T0 + 3 + WINDOW) == 5_000  # her payment never surfaced
    world.sync(carol, T0 + 10 + WINDOW)  # bob's spend surfaces
    world.ledger.report_lost(bid, T0 + 11 + WINDOW)
    assert world.ledger.refund_lost(bid, T0 + 11 + 2 * WINDOW) == 0
    audit = world.ledger.audit()
    assert audit.banks["Bank B"].float == carol.status(T0).balance == 1_000  # is 0
    assert audit.banks["Bank B"].losses == 1_000
    [loss] = [a for a in world.ledger.anomalies() if a.wallet == bid]
    assert (loss.kind, loss.amount) == ("reconcile", 1_000)
