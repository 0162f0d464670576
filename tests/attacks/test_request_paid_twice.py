"""One request paid twice (issue 9, finding 7).

A payer's app asked twice to pay the same request (the owner taps again after a torn transfer,
a script re-runs ``wallet pay``) used to make the SE sign a second payment with a new counter:
the payee refused it (``NONCE_USED``), but the payer had been debited and ``release-torn`` later
paid it into the payee's account. Now the SE remembers each request it paid, by
``(payee, nonce)``, for as long as the request can be paid (``offcash.se.paid``): the same
request again gets the same payment bytes (the torn-transfer re-send), another request under
the same ``(payee, nonce)`` is refused ``NONCE_USED`` with nothing debited.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from attackkit import ACCOUNT, assert_books, party, reopen, se_balance, sealed_wallet
from ledgerkit import World

from offcash.errors import Rejection, VerificationError
from offcash.protocol import messages as m

from harness import T0


def test_the_same_request_paid_again_is_the_same_payment(world: World, tmp_path: Path) -> None:
    alice = sealed_wallet(world, tmp_path / "alice", 5_000, "Bank A")
    bob = party(world, 0, "Bank B")
    request = bob.se.request(1_000, T0 + 1)
    first = alice.se.pay(request, T0 + 2)  # the transfer is torn: bob never gets it
    assert alice.se.pay(request, T0 + 3) == first  # the owner taps "pay" again
    assert reopen(alice).pay(request, T0 + 4) == first  # after a restart
    assert bob.se.receive(alice.se.pay(request, T0 + 5), T0 + 5).duplicate is False
    assert bob.se.receive(alice.se.pay(request, T0 + 6), T0 + 6).duplicate is True
    assert se_balance(alice) == 4_000 and alice.se.status(T0).log_entries == 2  # load, one SENT

    # another request under the same (payee, nonce): refused, nothing signed or debited
    r = m.parse_request(request)
    other = m.PaymentRequest(r.payee, 2_000, r.currency, r.nonce, r.time).encode()
    before = alice.state()
    with pytest.raises(VerificationError) as info:
        alice.se.pay(other, T0 + 7)
    assert info.value.rejection is Rejection.NONCE_USED
    assert alice.state() == before

    # settlement: one payment, nothing torn, nothing released; the memory survives the sync
    assert world.sync(alice.se, T0 + 10).ack is not None
    assert alice.se.pay(request, T0 + 11) == first
    assert world.sync(bob.se, T0 + 20).refused == []
    assert world.sync(alice.se, T0 + 30).settled == 0  # the repeat added nothing to her log
    age = world.ledger.params.max_payment_age + world.ledger.params.clock_skew
    assert world.ledger.release_torn(T0 + 40 + age) == 0
    audit = assert_books(world, {bob.account: ACCOUNT, alice.account: ACCOUNT - 5_000})
    assert audit.banks["Bank A"].float == se_balance(alice) == 4_000
    assert audit.banks["Bank B"].float == se_balance(bob) == 1_000
    assert world.ledger.wallet_status(alice.wid) == "active"


def test_a_torn_payment_paid_again_is_released_once(world: World) -> None:
    """The payee never receives the payment (nor its re-send): ``release-torn`` pays its owner
    exactly once, however often the payer was asked."""
    alice, bob = party(world, 5_000, "Bank A"), party(world, 0, "Bank B")
    request = bob.se.request(1_000, T0 + 1)
    payments = {alice.se.pay(request, T0 + 2 + i) for i in range(3)}
    assert len(payments) == 1
    world.sync(alice.se, T0 + 10)
    age = world.ledger.params.max_payment_age + world.ledger.params.clock_skew
    assert world.ledger.release_torn(T0 + 20 + age) == 1
    assert_books(world, {bob.account: ACCOUNT + 1_000, alice.account: ACCOUNT - 5_000})
    assert se_balance(alice) == 4_000


def test_a_request_too_old_to_be_accepted_is_not_paid(world: World) -> None:
    """Once a remembered request expires, paying it again would be a new payment the payee can
    no longer accept: the SE refuses it as too old (and one from the future too)."""
    alice, bob = party(world, 5_000, "Bank A"), party(world, 0, "Bank B")
    params = world.ledger.params
    request = bob.se.request(1_000, T0 + 1)
    first = alice.se.pay(request, T0 + 2)
    late = T0 + 2 + params.max_payment_age + params.clock_skew
    assert alice.se.pay(request, late) == first  # still remembered at the horizon
    with pytest.raises(VerificationError) as info:
        alice.se.pay(request, late + 1)
    assert info.value.rejection is Rejection.TOO_OLD
    future = m.PaymentRequest(bob.wid, 10, "EUR", bytes(16), T0 + params.clock_skew + 1)
    with pytest.raises(VerificationError) as info:
        alice.se.pay(future.encode(), T0)
    assert info.value.rejection is Rejection.FROM_THE_FUTURE
    assert se_balance(alice) == 4_000
