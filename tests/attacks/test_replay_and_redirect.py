"""Replayed, redirected and relayed payments.

- Replay: the payee remembers ``(payer, counter)`` (and a request's nonce), so the same bytes
  again are a duplicate, credited once; settlement keys every spend by ``(payer, counter)``, so a
  payment uploaded again, by the payee, the payer or a terminal, moves money once.
- Redirect: the payee is inside the signed payload; any other payee refuses it
  (``WRONG_PAYEE``), offline and at settlement.
- Relay: a payment request is unsigned (a receive-only terminal has no key). A relay that passes
  a request on unchanged can only make the payer pay the party that issued it: the payment is
  bound to the wallet id in the request. A relay that rewrites the request is simply a payee
  asking for money under a false display name: the payer's wallet shows the wallet id it pays,
  and nothing cryptographic stops an owner who ignores it (docs/SECURITY.md, known limits).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from attackkit import (
    ACCOUNT,
    RogueSE,
    assert_books,
    party,
    se_balance,
    sealed_wallet,
)
from ledgerkit import World

from offcash.crypto.trust import TrustStore
from offcash.domain.ids import WalletId
from offcash.encoding import sealed
from offcash.errors import CannotDecrypt, Rejection, VerificationError
from offcash.protocol import messages as m
from offcash.protocol.exchange import PayeeSide, PayerSide
from offcash.wallet.terminal import ReceiveOnlyTerminal

from harness import T0, PilotNetwork


def _wid(net_se: object) -> WalletId:
    wid = net_se.status(T0).wallet_id  # type: ignore[attr-defined]
    assert wid is not None
    return wid


def _terminal(net: PilotNetwork) -> ReceiveOnlyTerminal:
    trust = TrustStore.create(net.central_bank.certificate_der, net.bank_ders)
    return ReceiveOnlyTerminal(WalletId.random(), net.params, trust)


# --- replay ---------------------------------------------------------------------------------


def test_replayed_payment_is_credited_once_offline(network: PilotNetwork) -> None:
    alice, bob, term = network.wallet(5_000), network.wallet(), _terminal(network)
    request = bob.request(1_000, T0)
    payments = [
        (bob, alice.pay(request, T0)),
        (bob, alice.pay_to(_wid(bob), 700, T0)),
        (term, alice.pay(term.request(300, T0), T0)),
        (term, alice.pay_to(term.wallet_id, 200, T0)),
    ]
    for payee, data in payments:
        assert payee.receive(data, T0 + 1).duplicate is False
        for i in range(3):
            assert payee.receive(data, T0 + 2 + i).duplicate is True
    network.sync(bob, T0 + 10)  # the payee's memory survives its sync
    assert bob.receive(payments[0][1], T0 + 11).duplicate is True
    # the same request paid again: alice's SE answers with the same payment, a duplicate
    assert alice.pay(request, T0 + 12) == payments[0][1]
    assert bob.receive(alice.pay(request, T0 + 12), T0 + 12).duplicate is True
    assert bob.status(T0 + 12).balance == 1_700
    assert [m.parse_payment(p).amount for p in term.payments_to_redeem()] == [300, 200]


def test_replayed_payment_settles_exactly_once(world: World) -> None:
    alice, bob = party(world, 5_000, "Bank A"), party(world, 0, "Bank B")
    shop = world.account("Bank B", 0)
    term = world.ledger.register_terminal(shop)
    to_bob = alice.se.pay_to(bob.wid, 1_000, T0 + 1)
    to_term = alice.se.pay_to(term, 300, T0 + 2)
    bob.se.receive(to_bob, T0 + 3)
    assert world.sync(bob.se, T0 + 10, apply=False).settled == 1  # the ack is lost...
    assert world.sync(bob.se, T0 + 11).settled == 0  # ...so the same upload comes again
    red = world.ledger.redeem(term, [to_term, to_term], T0 + 12)
    assert (red.settled, red.amount, red.duplicates) == (1, 300, 1)
    assert world.ledger.redeem(term, [to_term], T0 + 13).settled == 0
    assert world.sync(alice.se, T0 + 14).settled == 0  # the payer's copies: already settled
    res = world.ledger.redeem(term, [to_bob], T0 + 15)  # bob's payment at another payee
    assert [r.reason for r in res.refused] == ["WRONG_PAYEE"]
    audit = assert_books(world, {shop: 300, bob.account: ACCOUNT})
    assert audit.banks["Bank B"].float == se_balance(bob) == 1_000
    assert audit.banks["Bank A"].float == se_balance(alice) == 3_700
    assert audit.suspense == 0


def test_payment_replayed_into_a_broken_payees_log_is_counted_once(
    world: World, tmp_path: Path
) -> None:
    alice = party(world, 5_000, "Bank A")
    mallory = sealed_wallet(world, tmp_path / "mallory", 0, "Bank B")
    broken = RogueSE.extract(mallory)
    payment = alice.se.pay_to(mallory.wid, 1_000, T0 + 1)
    broken.accept(payment, T0 + 2)
    broken.accept(payment, T0 + 3)  # the same bytes again: a second credit
    res = broken.sync(world, T0 + 10)
    audit = assert_books(world)
    # either the ledger refuses to acknowledge the log, or what it acknowledges is backed
    assert res.ack is None or audit.banks["Bank B"].float == broken.balance


# --- redirect -------------------------------------------------------------------------------


def test_redirected_payment_refused_offline(network: PilotNetwork) -> None:
    alice, bob, carol, term = (
        network.wallet(5_000),
        network.wallet(),
        network.wallet(),
        _terminal(network),
    )
    carol.request(1_000, T0)  # carol even has a request outstanding for the same amount
    redirected = [
        alice.pay(bob.request(1_000, T0), T0),
        alice.pay_to(_wid(bob), 1_000, T0),
    ]
    for data in redirected:
        for device in (carol, term):
            with pytest.raises(VerificationError) as info:
                device.receive(data, T0 + 1)
            assert info.value.rejection is Rejection.WRONG_PAYEE
    assert carol.status(T0).balance == 0 and term.payments_to_redeem() == []
    for data in redirected:
        bob.receive(data, T0 + 2)
    assert bob.status(T0).balance == 2_000


def test_redirected_payment_refused_at_settlement(world: World, tmp_path: Path) -> None:
    alice, bob = party(world, 5_000, "Bank A"), party(world, 0, "Bank B")
    payment = alice.se.pay_to(bob.wid, 1_000, T0 + 1)
    shop = world.account("Bank B", 0)
    term = world.ledger.register_terminal(shop)
    red = world.ledger.redeem(term, [payment], T0 + 2)
    assert (red.settled, [r.reason for r in red.refused]) == (0, ["WRONG_PAYEE"])
    mallory = sealed_wallet(world, tmp_path / "mallory", 0, "Bank B")
    broken = RogueSE.extract(mallory)  # logs bob's payment as received by mallory
    broken.accept(payment, T0 + 3)
    res = broken.sync(world, T0 + 4)
    assert [r.reason for r in res.refused] == ["WRONG_PAYEE"] and res.settled == 0
    assert res.ack is None and world.ledger.wallet_status(mallory.wid) == "revoked"
    bob.se.receive(payment, T0 + 5)
    assert world.sync(bob.se, T0 + 6).settled == 1  # the addressee is paid, once
    audit = assert_books(world, {shop: 0, bob.account: ACCOUNT, mallory.account: ACCOUNT - 1_000})
    assert audit.banks["Bank B"].float == se_balance(bob) + broken.balance == 2_000


# --- relay ----------------------------------------------------------------------------------


def test_relayed_request_can_only_pay_the_party_that_issued_it(world: World) -> None:
    """Mallory relays bob's requests to alice, who pays them. Whatever mallory does with the
    payments, they are bob's: mallory's wallet and terminal refuse them, and one mallory
    withholds reaches bob anyway through alice's sync and the torn-payment rule."""
    alice, bob, mallory = (
        party(world, 5_000, "Bank A"),
        party(world, 0, "Bank B"),
        party(world, 0, "Bank B"),
    )
    mallory_shop = world.account("Bank B", 0)
    mallory_term = world.ledger.register_terminal(mallory_shop)
    payer = PayerSide(alice.se)
    shown = payer.receive_request(bob.se.request(1_000, T0 + 1, payee_name="Mallory's"))
    assert shown.payee == bob.wid  # the id alice's wallet shows; the name is only a hint
    delivered = payer.pay(T0 + 2, encrypt=False)  # sealed, mallory could not even read it:
    assert shown.encryption_key is not None
    with pytest.raises(CannotDecrypt):
        mallory.se.open_sealed(sealed.seal(delivered, shown.encryption_key))
    withheld = alice.se.pay(bob.se.request(400, T0 + 3), T0 + 3)
    for data in (delivered, withheld):
        assert m.parse_payment(data).payee == bob.wid
        with pytest.raises(VerificationError) as info:
            mallory.se.receive(data, T0 + 4)
        assert info.value.rejection is Rejection.WRONG_PAYEE
        red = world.ledger.redeem(mallory_term, [data], T0 + 5)
        assert [r.reason for r in red.refused] == ["WRONG_PAYEE"]
    bob.se.receive(delivered, T0 + 6)
    world.sync(bob.se, T0 + 10)
    world.sync(alice.se, T0 + 11)  # the withheld payment waits in suspense...
    age = world.ledger.params.max_payment_age + world.ledger.params.clock_skew
    assert world.ledger.release_torn(T0 + 4 + age) == 1  # ...and is released to bob's owner
    audit = assert_books(
        world, {bob.account: ACCOUNT + 400, mallory.account: ACCOUNT, mallory_shop: 0}
    )
    assert se_balance(bob) == 1_000 and se_balance(mallory) == 0
    assert audit.suspense == 0


def test_rewritten_request_shows_the_rewriters_wallet_id(network: PilotNetwork) -> None:
    """The known limit: a request is unsigned, so mallory can ask for money in bob's name.
    What the payer's wallet shows is the wallet id the payment is bound to, mallory's; the
    display name is unauthenticated. The payment then belongs to mallory, as signed."""
    alice, bob, mallory = network.wallet(5_000), network.wallet(), network.wallet()
    payee = PayeeSide(mallory)
    request = payee.start(1_000, T0, payee_name="Bob's Bakery")
    shown = PayerSide(alice).receive_request(request)
    assert shown.payee_name == "Bob's Bakery"  # anyone can write this
    assert shown.payee == _wid(mallory) != _wid(bob)  # the wallet id cannot be faked
    payer = PayerSide(alice)
    payer.receive_request(request)
    payment = payer.pay(T0)  # sealed for mallory's key, which the request carried
    with pytest.raises(CannotDecrypt):
        bob.open_sealed(payment)
    with pytest.raises(VerificationError):
        bob.receive(mallory.open_sealed(payment), T0)  # bob cannot be paid by it
    received = payee.receive_payment(payment, T0)
    assert received.receipt is not None
    assert payer.receive_receipt(received.receipt).payment == m.digest(mallory.open_sealed(payment))
    assert mallory.status(T0).balance == 1_000
