"""The sans-I/O exchange driven by a payer/payee pair wired together in memory, against each
secure element kind (the per-kind ``network`` and ``p256`` of tests/se_kinds.py)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from offcash.errors import ProtocolStateError, Rejection, VerificationError
from offcash.protocol.exchange import PayeeSide, PayerSide, State
from offcash.se.interface import SecureElement

from harness import T0, PilotNetwork
from se_kinds import network_per_kind, p256_per_kind

__all__ = ["network_per_kind", "p256_per_kind"]


@dataclass
class ExchangePair:
    """A payer and a payee side connected in memory, with a switch to drop the next message."""

    payer: PayerSide
    payee: PayeeSide

    def run(
        self, amount: int, now: int, *, drop_payment: bool = False, drop_receipt: bool = False
    ) -> None:
        request = self.payee.start(amount, now)
        self.payer.receive_request(request)
        payment = self.payer.pay(now + 1)
        if drop_payment:
            return
        received = self.payee.receive_payment(payment, now + 2)
        if not drop_receipt:
            assert received.receipt is not None
            self.payer.receive_receipt(received.receipt)


def pair(payer: SecureElement, payee: SecureElement) -> ExchangePair:
    return ExchangePair(PayerSide(payer), PayeeSide(payee))


def test_full_exchange_moves_money_and_ends_done(network: PilotNetwork) -> None:
    alice, bob = network.wallet(5000), network.wallet(0, bank="Bank B")
    p = pair(alice, bob)
    p.run(1200, T0)
    assert (p.payer.state, p.payee.state) == (State.DONE, State.DONE)
    assert alice.status(T0).balance == 3800
    assert bob.status(T0).balance == 1200
    assert p.payer.receipt is not None


def test_torn_transfer_resend_is_accepted_exactly_once(network: PilotNetwork) -> None:
    alice, bob = network.wallet(5000), network.wallet(0)
    p = pair(alice, bob)
    p.run(700, T0, drop_payment=True)  # the payment never reached the payee
    assert alice.status(T0).balance == 4300 and bob.status(T0).balance == 0
    first = p.payee.receive_payment(p.payer.resend(), T0 + 5)
    second = p.payee.receive_payment(p.payer.resend(), T0 + 6)  # receipt lost, payer retries
    assert (first.duplicate, second.duplicate) == (False, True)
    assert bob.status(T0).balance == 700
    assert second.receipt is not None
    p.payer.receive_receipt(second.receipt)
    assert p.payer.state is State.DONE


def test_receipt_for_another_payment_is_refused(p256: PilotNetwork) -> None:
    alice, bob = p256.wallet(5000), p256.wallet(0)
    p1, p2 = pair(alice, bob), pair(alice, bob)
    p1.run(100, T0, drop_receipt=True)
    p2.run(200, T0, drop_receipt=True)
    other = p2.payee.received
    assert other is not None and other.receipt is not None
    with pytest.raises(VerificationError) as err:
        p1.payer.receive_receipt(other.receipt)
    assert err.value.rejection is Rejection.NONCE_MISMATCH
    assert p1.payer.state is State.AWAITING_RECEIPT


@pytest.mark.parametrize(
    "misuse",
    [
        lambda p: p.payer.pay(T0),
        lambda p: p.payer.resend(),
        lambda p: p.payee.receive_payment(b"x", T0),
        lambda p: p.payer.receive_receipt(b"x"),
    ],
    ids=["pay-before-request", "resend-before-pay", "payment-before-request", "receipt-before-pay"],
)
def test_out_of_order_calls_are_local_errors(p256: PilotNetwork, misuse) -> None:  # type: ignore[no-untyped-def]
    p = pair(p256.wallet(1000), p256.wallet(0))
    with pytest.raises(ProtocolStateError):
        misuse(p)


def test_rejected_payment_leaves_payee_waiting(p256: PilotNetwork) -> None:
    alice, bob, carol = p256.wallet(5000), p256.wallet(0), p256.wallet(0)
    p = pair(alice, bob)
    p.payee.start(300, T0)
    stray = alice.pay_to(carol.status(T0).wallet_id, 300, T0)  # type: ignore[arg-type]
    with pytest.raises(VerificationError) as err:
        p.payee.receive_payment(stray, T0 + 1)
    assert err.value.rejection is Rejection.WRONG_PAYEE
    assert p.payee.state is State.AWAITING_PAYMENT
