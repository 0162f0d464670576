"""Attacks with a copied secure-element file: a clone that spends the same money twice, and a
state file rolled back to an older copy. Offline a payee catches the reuse only if both payments
reach it; settlement catches every reuse of a ``(payer, counter)``, pays the honest payees, books
the loss to the payer's bank, revokes the payer and keeps both signed messages as evidence."""

from __future__ import annotations

from pathlib import Path

import pytest
from attackkit import (
    ACCOUNT,
    Party,
    assert_books,
    party,
    reopen,
    se_balance,
    sealed_wallet,
)
from ledgerkit import World

from offcash.errors import Rejection, VerificationError
from offcash.ledger.errors import IncompleteLog, WalletRevoked
from offcash.protocol import messages as m
from offcash.se.interface import SecureElement
from offcash.verification import verify_payment

from harness import T0


def _pay_by_request(payer: SecureElement, payee: Party, amount: int, now: int) -> bytes:
    """An interactive payment: the payee's request, the payer's SE pays, the payee accepts."""
    payment = payer.pay(payee.se.request(amount, now), now)
    assert payee.se.receive(payment, now + 1).duplicate is False
    return payment


def _assert_evidence(world: World, payer: Party, counter: int, messages: list[bytes]) -> None:
    """The ledger holds every signed message for the double-spent counter, and each is
    provably the payer's: it verifies against the network's trust and names payer and counter."""
    [(held_counter, held)] = world.ledger.evidence(payer.wid)
    assert held_counter == counter and sorted(held) == sorted(messages)
    for data in held:
        p = m.parse_payment(data)
        v = verify_payment(data, trust=world.ledger.trust, params=world.ledger.params, now=p.time)
        assert (v.payer, p.counter) == (payer.wid, counter)


@pytest.mark.parametrize("order", ["payees-first", "payers-first"])
def test_clone_pays_two_payees_both_paid_payer_revoked_loss_to_bank(
    world: World, tmp_path: Path, order: str
) -> None:
    alice = sealed_wallet(world, tmp_path / "alice", 5_000, "Bank A")
    evil = alice.clone(tmp_path / "stolen")  # the clone
    bob, carol = party(world, 0, "Bank B"), party(world, 0, "Bank A")
    p1 = _pay_by_request(alice.se, bob, 1_000, T0 + 10)
    p2 = _pay_by_request(evil, carol, 1_000, T0 + 11)  # offline, carol cannot know
    counter = m.parse_payment(p1).counter
    assert m.parse_payment(p2).counter == counter
    reserve_a = world.ledger.audit().banks["Bank A"].reserve

    if order == "payers-first":
        assert world.sync(alice.se, T0 + 50).ack is not None
        res = world.sync(evil, T0 + 60)  # the clone's log reveals the reuse
        assert res.ack is None and res.certificate is None
    assert world.sync(bob.se, T0 + 100).refused == []
    res = world.sync(carol.se, T0 + 200)
    assert res.refused == [] and res.ack is not None  # carol is paid and renewed

    assert world.ledger.wallet_status(alice.wid) == "revoked"
    _assert_evidence(world, alice, counter, [p1, p2])
    anomalies = world.ledger.anomalies(alice.wid)
    [anomaly] = [a for a in anomalies if a.kind == "double-spend"]
    assert anomaly.amount == 1_000
    # a clone that syncs after its twin presents another log for the same sync: a fork
    forks = [a.detail for a in anomalies if a.kind == "reconcile"]
    assert forks == (
        ["sync 0 was settled before with another log"] if order == "payers-first" else []
    )
    audit = assert_books(
        world, {bob.account: ACCOUNT, carol.account: ACCOUNT, alice.account: ACCOUNT - 5_000}
    )
    assert (se_balance(bob), se_balance(carol)) == (1_000, 1_000)  # both payees keep their money
    assert audit.suspense == 0
    assert audit.banks["Bank B"].float == se_balance(bob)
    assert audit.banks["Bank A"].float == se_balance(alice) + se_balance(carol)
    assert audit.banks["Bank A"].reserve == reserve_a - 1_000
    assert audit.banks["Bank A"].losses == 1_000
    # the payer and its clone are cut off, and a payee holding the new CRL refuses them offline
    for se in (alice.se, evil):
        with pytest.raises(WalletRevoked):
            world.sync(se, T0 + 300)
    dave = party(world, 0, "Bank B")
    world.sync(dave.se, T0 + 400)
    with pytest.raises(VerificationError) as info:
        dave.se.receive(evil.pay_to(dave.wid, 500, T0 + 410), T0 + 411)
    assert info.value.rejection is Rejection.REVOKED
    assert world.sync(carol.se, T0 + 500).settled == 0  # re-uploads change nothing
    assert_books(world)


def test_clone_pays_the_same_payee_twice_refused_offline(world: World, tmp_path: Path) -> None:
    alice = sealed_wallet(world, tmp_path / "alice", 5_000, "Bank A")
    evil, twin = (alice.clone(tmp_path / f"{n}") for n in "12")
    bob = party(world, 0, "Bank B")
    first = _pay_by_request(alice.se, bob, 1_000, T0 + 10)
    for second in (  # two clones' payments with the same counter, one-way and by request
        evil.pay_to(bob.wid, 1_000, T0 + 20),
        twin.pay(bob.se.request(1_000, T0 + 30), T0 + 30),
    ):
        assert m.parse_payment(second).counter == m.parse_payment(first).counter
        with pytest.raises(VerificationError) as info:
            bob.se.receive(second, T0 + 31)
        assert info.value.rejection is Rejection.DOUBLE_SPEND
    assert se_balance(bob) == 1_000
    res = world.sync(bob.se, T0 + 100)
    assert (res.settled, res.refused) == (1, [])
    audit = assert_books(world, {bob.account: ACCOUNT})
    assert audit.banks["Bank B"].float == 1_000 and audit.banks["Bank A"].float == 4_000


def test_rolled_back_state_file_reuses_a_counter_detected_at_settlement(
    world: World, tmp_path: Path
) -> None:
    alice = sealed_wallet(world, tmp_path / "alice", 5_000, "Bank A")
    backup = alice.state()  # the owner keeps a copy of the sealed file
    bob, carol = party(world, 0, "Bank B"), party(world, 0, "Bank B")
    p1 = _pay_by_request(alice.se, bob, 2_000, T0 + 10)
    alice.restore(backup)  # ... and restores it after paying
    rolled = reopen(alice)
    status = rolled.status(T0 + 20)
    assert (status.balance, status.counter) == (5_000, 0)  # the 2,000 are "back"
    p2 = _pay_by_request(rolled, carol, 2_000, T0 + 20)
    counter = m.parse_payment(p1).counter
    assert m.parse_payment(p2).counter == counter

    world.sync(bob.se, T0 + 100)
    world.sync(carol.se, T0 + 200)
    assert world.ledger.wallet_status(alice.wid) == "revoked"
    _assert_evidence(world, alice, counter, [p1, p2])
    assert [(a.kind, a.amount) for a in world.ledger.anomalies(alice.wid)] == [
        ("double-spend", 2_000)
    ]
    with pytest.raises(WalletRevoked):
        world.sync(rolled, T0 + 300)
    audit = assert_books(world, {bob.account: ACCOUNT, carol.account: ACCOUNT})
    assert (se_balance(bob), se_balance(carol)) == (2_000, 2_000)
    assert audit.banks["Bank B"].float == 4_000
    assert audit.banks["Bank A"].losses == 2_000


def test_rollback_past_a_sync_cannot_sync_and_its_reused_counter_surfaces(
    world: World, tmp_path: Path
) -> None:
    alice = sealed_wallet(world, tmp_path / "alice", 5_000, "Bank A")
    backup = alice.state()  # before any sync
    bob, carol, dave = (party(world, 0, "Bank B") for _ in range(3))
    p1 = _pay_by_request(alice.se, bob, 1_000, T0 + 10)
    world.sync(alice.se, T0 + 20)  # sync 0 acknowledged
    _pay_by_request(alice.se, dave, 500, T0 + 30)
    world.sync(alice.se, T0 + 40)  # sync 1 acknowledged
    books_before = assert_books(world)

    alice.restore(backup)
    rolled = reopen(alice)
    with pytest.raises(IncompleteLog):  # its report is for sync 0, two syncs ago
        world.sync(rolled, T0 + 50)
    assert world.ledger.audit() == books_before  # refused whole: nothing written
    # offline it still has its old (unexpired, unrevoked) certificate: a payee accepts
    p2 = _pay_by_request(rolled, carol, 1_000, T0 + 60)
    assert m.parse_payment(p2).counter == m.parse_payment(p1).counter
    world.sync(bob.se, T0 + 100)
    world.sync(carol.se, T0 + 200)  # the reused counter surfaces
    assert world.ledger.wallet_status(alice.wid) == "revoked"
    _assert_evidence(world, alice, m.parse_payment(p1).counter, [p1, p2])
    audit = assert_books(world, {bob.account: ACCOUNT, carol.account: ACCOUNT})
    assert (se_balance(bob), se_balance(carol)) == (1_000, 1_000)
    assert audit.banks["Bank A"].losses == 1_000
