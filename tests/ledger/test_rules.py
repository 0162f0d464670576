"""The settlement rules on both backends: double spend, CRL-held refusal, torn payments,
lost devices, reconciliation and counterfeits."""

from __future__ import annotations

from pathlib import Path

import pytest
from ledgerkit import World, clone, minted

from offcash.crypto.trust import TrustStore
from offcash.ledger.errors import ClaimNotReady, WalletRevoked
from offcash.protocol.messages import parse_payment

from harness import T0, PilotNetwork

DAY = 86400


def test_double_spend_pays_both_payees_books_loss_and_revokes(world: World, tmp_path: Path) -> None:
    alice, a_id, _ = world.wallet(5_000, "Bank A", sealed=tmp_path / "alice.se")
    evil = clone(tmp_path / "alice.se", tmp_path / "evil.se")
    bob, b_id, _ = world.wallet(0, "Bank B")
    carol, c_id, _ = world.wallet(0, "Bank A")
    p1 = alice.pay_to(b_id, 1_000, T0 + 10)
    p2 = evil.pay_to(c_id, 1_000, T0 + 11)
    assert parse_payment(p1).counter == parse_payment(p2).counter
    bob.receive(p1, T0 + 12)
    carol.receive(p2, T0 + 13)
    reserve_a = world.ledger.audit().banks["Bank A"].reserve
    assert world.sync(bob, T0 + 100).settled == 1
    res = world.sync(carol, T0 + 200)
    assert res.settled == 1 and res.ack is not None  # carol is paid and renewed
    audit = world.ledger.audit()
    assert audit.balanced
    assert audit.banks["Bank B"].float == 1_000
    assert audit.banks["Bank A"].float == 5_000 - 1_000 + 1_000  # carol (Bank A) holds it
    assert audit.banks["Bank A"].reserve == reserve_a - 1_000
    assert audit.banks["Bank A"].losses == 1_000
    assert world.ledger.wallet_status(a_id) == "revoked"
    [(counter, messages)] = world.ledger.evidence(a_id)
    assert counter == parse_payment(p1).counter and sorted(messages) == sorted([p1, p2])
    assert [a.kind for a in world.ledger.anomalies(a_id)] == ["double-spend"]
    assert len(res.crls) == 1  # Bank A's CRL now lists alice
    with pytest.raises(WalletRevoked):
        world.sync(alice, T0 + 300)
    assert world.sync(carol, T0 + 400).settled == 0  # re-uploads change nothing


def test_payment_accepted_after_payee_held_the_crl_is_refused(world: World, tmp_path: Path) -> None:
    alice, _a_id, _ = world.wallet(5_000, "Bank A", sealed=tmp_path / "alice.se")
    evil = clone(tmp_path / "alice.se", tmp_path / "evil.se")
    bob, b_id, _ = world.wallet(0, "Bank B")
    dave, d_id, dave_acct = world.wallet(0, "Bank B")
    bob.receive(alice.pay_to(b_id, 1_000, T0 + 10), T0 + 11)
    carol, c_id, _ = world.wallet(0, "Bank A")
    carol.receive(evil.pay_to(c_id, 1_000, T0 + 12), T0 + 13)
    world.sync(bob, T0 + 20)
    world.sync(carol, T0 + 30)  # double spend found: alice revoked, CRL 1
    got = world.sync(dave, T0 + 40)  # dave's SE installs the CRL...
    assert got.ack is not None and got.certificate is not None and got.crls
    world.sync(dave, T0 + 45)  # ...and its signed report says it holds it since T0+45
    # then dave's SE, broken, forgets it and accepts from the revoked payer
    dave._s.crls = []
    dave._trust = TrustStore.create(dave._s.root, dave._s.banks, [])
    dave.receive(evil.pay_to(d_id, 500, T0 + 50), T0 + 51)
    before = world.ledger.balance(dave_acct)
    res = world.sync(dave, T0 + 60)
    assert [r.reason for r in res.refused] == ["REVOKED"]
    assert world.ledger.balance(dave_acct) == before - 500  # charged back: never funded
    assert "refused-payment" in [a.kind for a in world.ledger.anomalies(d_id)]
    assert world.ledger.audit().balanced


def test_torn_payment_held_in_suspense_then_released_once(world: World) -> None:
    alice, _, _ = world.wallet(5_000)
    _bob, b_id, bob_acct = world.wallet(0, "Bank B")
    alice.pay_to(b_id, 800, T0 + 10)  # never delivered
    world.sync(alice, T0 + 20)
    assert world.ledger.audit().suspense == 800
    age = world.ledger.params.max_payment_age + world.ledger.params.clock_skew
    assert world.ledger.release_torn(T0 + 10 + age) == 0  # a payee could still accept it
    before = world.ledger.balance(bob_acct)
    assert world.ledger.release_torn(T0 + 11 + age) == 1
    assert world.ledger.release_torn(T0 + 12 + age) == 0
    assert world.ledger.balance(bob_acct) == before + 800
    assert world.ledger.audit().suspense == 0 and world.ledger.audit().balanced


def test_torn_payment_surfacing_after_release_moves_not_pays_twice(world: World) -> None:
    alice, _, _ = world.wallet(5_000)
    bob, b_id, bob_acct = world.wallet(0, "Bank B")
    bob.receive(alice.pay_to(b_id, 800, T0 + 10), T0 + 11)  # bob stays offline a long time
    world.sync(alice, T0 + 20)
    age = world.ledger.params.max_payment_age + world.ledger.params.clock_skew
    world.ledger.release_torn(T0 + 20 + age)
    before = world.ledger.balance(bob_acct)
    res = world.sync(bob, T0 + 30 + age)
    assert res.settled == 1
    assert world.ledger.balance(bob_acct) == before - 800  # now held in bob's SE instead
    audit = world.ledger.audit()
    assert audit.banks["Bank B"].float == 800 and audit.balanced


def test_payee_report_resolves_suspense(world: World) -> None:
    alice, _, _ = world.wallet(5_000)
    bob, b_id, _ = world.wallet(0, "Bank B")
    bob.receive(alice.pay_to(b_id, 300, T0 + 1), T0 + 2)
    world.sync(alice, T0 + 3)
    assert world.ledger.audit().suspense == 300
    world.sync(bob, T0 + 4)
    audit = world.ledger.audit()
    assert audit.suspense == 0 and audit.banks["Bank B"].float == 300


def test_lost_device_refund_after_claim_window(world: World) -> None:
    alice, a_id, acct = world.wallet(5_000)
    world.sync(alice, T0 + 10)
    bob, b_id, _ = world.wallet(0, "Bank B")
    carol, c_id, _ = world.wallet(0, "Bank B")
    bob.receive(alice.pay_to(b_id, 1_000, T0 + 20), T0 + 21)
    carol.receive(alice.pay_to(c_id, 500, T0 + 22), T0 + 23)
    world.ledger.report_lost(a_id, T0 + 30)
    assert world.ledger.wallet_status(a_id) == "revoked"
    with pytest.raises(ClaimNotReady):
        world.ledger.refund_lost(a_id, T0 + 40)
    world.sync(bob, T0 + 50)
    before = world.ledger.balance(acct)
    window = world.ledger.claim_window
    assert world.ledger.refund_lost(a_id, T0 + 30 + window) == 4_000
    with pytest.raises(ClaimNotReady):
        world.ledger.refund_lost(a_id, T0 + 31 + window)
    assert world.ledger.balance(acct) == before + 4_000
    world.sync(carol, T0 + 40 + window)  # surfaces after the refund: the bank's loss
    kinds = [a.kind for a in world.ledger.anomalies(a_id)]
    assert kinds == ["late-surfacing"]
    audit = world.ledger.audit()
    assert audit.balanced and audit.banks["Bank A"].float == 0
    assert audit.banks["Bank A"].losses == 500


def test_unreconciled_wallet_is_reported_and_revoked(world: World, tmp_path: Path) -> None:
    _, a_id, _ = world.wallet(5_000, sealed=tmp_path / "alice.se")
    alice = minted(tmp_path / "alice.se", 100)  # a broken SE mints value
    assert alice.status(T0).balance == 5_100
    res = world.sync(alice, T0 + 10)
    assert res.ack is None and res.certificate is None
    assert world.ledger.wallet_status(a_id) == "revoked"
    assert [a.kind for a in world.ledger.anomalies(a_id)] == ["reconcile"]


def test_counterfeit_payment_is_refused(world: World) -> None:
    rogue = PilotNetwork.create()  # forged CAs with the same names ("Bank A")
    mallory = rogue.wallet(5_000)
    term = world.ledger.register_terminal(world.account("Bank B", 0))
    res = world.ledger.redeem(term, [mallory.pay_to(term, 100, T0 + 1)], T0 + 2)
    assert res.settled == 0 and [r.reason for r in res.refused] == ["BAD_CERTIFICATE_SIGNATURE"]
    assert world.ledger.audit().balanced


def test_too_old_payment_refused_at_acceptance_time(world: World) -> None:
    alice, _, _ = world.wallet(5_000)
    bob, b_id, _ = world.wallet(0, "Bank B")
    p = alice.pay_to(b_id, 100, T0 + 1)
    bob.receive(p, T0 + 2)
    res = world.sync(bob, T0 + 30 * DAY)  # acceptance, not sync time, is what counts
    assert res.settled == 1 and not res.refused
