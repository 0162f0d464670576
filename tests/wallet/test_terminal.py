"""A payee without a secure element: requests, verifies and keeps payments, cannot spend."""

from __future__ import annotations

import pytest

from offcash.crypto.trust import TrustStore
from offcash.domain.ids import WalletId
from offcash.errors import MoneyError, Rejection, VerificationError
from offcash.protocol.exchange import PayeeSide, PayerSide
from offcash.wallet.terminal import ReceiveOnlyTerminal

from harness import T0, PilotNetwork


def terminal(network: PilotNetwork) -> ReceiveOnlyTerminal:
    trust = TrustStore.create(network.central_bank.certificate_der, network.bank_ders)
    return ReceiveOnlyTerminal(WalletId.random(), network.params, trust)


def test_terminal_receives_by_request_and_one_way(network: PilotNetwork) -> None:
    shop, alice = terminal(network), network.wallet(9000)
    payee, payer = PayeeSide(shop), PayerSide(alice)
    payer.receive_request(payee.start(2500, T0, reference="order 17"))
    received = payee.receive_payment(payer.pay(T0 + 1), T0 + 2)
    assert received.receipt is None and not received.duplicate
    one_way = alice.pay_to(shop.wallet_id, 100, T0 + 3)
    assert shop.receive(one_way, T0 + 4).amount == 100
    assert shop.receive(one_way, T0 + 5).duplicate
    assert len(shop.payments_to_redeem()) == 2


def test_terminal_state_round_trips_and_keeps_replay_memory(p256: PilotNetwork) -> None:
    shop, alice = terminal(p256), p256.wallet(9000)
    payment = alice.pay_to(shop.wallet_id, 100, T0)
    shop.receive(payment, T0)
    restored = ReceiveOnlyTerminal.decode(shop.encode())
    assert restored.payments_to_redeem() == [payment]
    assert restored.receive(payment, T0 + 1).duplicate
    restored.redeemed({restored.receive(payment, T0 + 1).digest})
    assert restored.payments_to_redeem() == []


def test_terminal_refuses_payment_for_someone_else_and_bad_amounts(p256: PilotNetwork) -> None:
    shop, alice, bob = terminal(p256), p256.wallet(9000), p256.wallet(0)
    with pytest.raises(VerificationError) as err:
        shop.receive(alice.pay_to(bob.status(T0).wallet_id, 100, T0), T0)  # type: ignore[arg-type]
    assert err.value.rejection is Rejection.WRONG_PAYEE
    with pytest.raises(MoneyError):
        shop.request(0, T0)
