"""Every refusal crosses the APDU wall as the same typed error, with the same fields.

The oracle is the software SE: each scenario runs on a ``SoftwareSecureElement`` and on a card
(``CardFactory``: the applet behind a real socket, the APDU codec and the status words), and
both must raise the same exception type with the same attributes (a ``VerificationError``'s
``Rejection``, a ``LimitExceeded``'s limit, value and bound...)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from offcash.card.kind import CardFactory
from offcash.domain.ids import WalletId
from offcash.domain.limits import DEFAULT_LIMITS
from offcash.encoding import sealed
from offcash.errors import (
    CannotDecrypt,
    DecodeError,
    InsufficientFunds,
    Limit,
    LimitExceeded,
    MoneyError,
    Rejection,
    SecureElementError,
    SecureElementRevoked,
    VerificationError,
)
from offcash.protocol import messages as m
from offcash.se.card import refusal
from offcash.se.card.host import CardSecureElement
from offcash.se.card.wire import Ins
from offcash.se.interface import SecureElement

from harness import T0, PilotNetwork

LIMITS = dataclasses.replace(DEFAULT_LIMITS, max_balance=5_000, max_payment=1_000)


@pytest.fixture
def factory() -> Iterator[CardFactory]:
    f = CardFactory()
    yield f
    f.close()


class Twins:
    """The same wallet scenario on a software SE and on a card."""

    def __init__(self, net: PilotNetwork, factory: CardFactory, folder: Path) -> None:
        self.net = net
        card = factory.create(folder / "card", net.params, net.central_bank.certificate_der)
        self.certs: dict[str, bytes] = {}
        self.ses: dict[str, SecureElement] = {}
        for kind, se in (("software", net.new_se()), ("card", card)):
            cert = net.bank().certify_wallet(se.csr(), WalletId.random(), LIMITS, 0, T0)
            se.enroll(cert, net.bank_ders, [], T0)
            self.certs[kind], self.ses[kind] = cert, se

    def wid(self, kind: str) -> WalletId:
        wid = self.ses[kind].status(T0).wallet_id
        assert wid is not None
        return wid

    def voucher(self, kind: str, amount: int) -> bytes:
        return self.net.bank().voucher(self.wid(kind), amount, "EUR", T0)

    def fund(self, amount: int) -> None:
        for kind, se in self.ses.items():
            se.load(self.voucher(kind, amount), T0)

    def same_refusal(self, run: Callable[[str, SecureElement], object]) -> BaseException:
        """``run`` on both SEs; both must raise alike. Returns the card's exception."""
        raised: dict[str, BaseException] = {}
        for kind, se in self.ses.items():
            with pytest.raises(Exception) as e:
                run(kind, se)
            raised[kind] = e.value
        soft, card = raised["software"], raised["card"]
        assert type(card) is type(soft), (soft, card)
        assert _fields(card) == _fields(soft)
        return card


def _fields(exc: BaseException) -> dict[str, Any]:
    return {k: v for k, v in vars(exc).items() if not k.startswith("_")}


@pytest.fixture
def twins(network: PilotNetwork, factory: CardFactory, tmp_path: Path) -> Twins:
    return Twins(network, factory, tmp_path)


def test_insufficient_funds(twins: Twins) -> None:
    twins.fund(500)
    exc = twins.same_refusal(lambda k, se: se.pay_to(WalletId(b"\x01" * 12), 600, T0))
    assert isinstance(exc, InsufficientFunds) and (exc.balance, exc.amount) == (500, 600)


def test_limits(twins: Twins) -> None:
    twins.fund(4_000)
    exc = twins.same_refusal(lambda k, se: se.pay_to(WalletId(b"\x01" * 12), 1_001, T0))
    assert isinstance(exc, LimitExceeded) and exc.limit is Limit.MAX_PAYMENT
    assert (exc.value, exc.bound) == (1_001, 1_000)
    exc = twins.same_refusal(lambda k, se: se.load(twins.voucher(k, 1_001), T0))
    assert isinstance(exc, LimitExceeded) and exc.limit is Limit.MAX_BALANCE
    assert (exc.value, exc.bound) == (5_001, 5_000)
    exc = twins.same_refusal(lambda k, se: se.request(1_001, T0))
    assert isinstance(exc, LimitExceeded) and exc.limit is Limit.MAX_BALANCE


def test_verification_errors_keep_their_rejection(twins: Twins) -> None:
    vouchers = {k: twins.voucher(k, 100) for k in twins.ses}
    for kind, se in twins.ses.items():
        se.load(vouchers[kind], T0)
    exc = twins.same_refusal(lambda k, se: se.load(vouchers[k], T0))
    assert isinstance(exc, VerificationError) and exc.rejection is Rejection.REPLAYED
    exc = twins.same_refusal(lambda k, se: se.pay_to(twins.wid(k), 10, T0))
    assert isinstance(exc, VerificationError) and exc.rejection is Rejection.SELF_PAYMENT
    other = twins.voucher("software", 10)  # for the software wallet: the card is WRONG_WALLET
    for kind, se in twins.ses.items():
        with pytest.raises(VerificationError) as e:
            se.load(other if kind == "card" else twins.voucher("card", 10), T0)
        assert e.value.rejection is Rejection.WRONG_WALLET


def test_decode_errors_keep_their_path(twins: Twins) -> None:
    exc = twins.same_refusal(lambda k, se: se.receive(b"\xa1\x01", T0))
    assert isinstance(exc, DecodeError) and exc.path
    exc = twins.same_refusal(lambda k, se: se.open_sealed(b"not sealed"))
    assert isinstance(exc, DecodeError)


def test_cannot_decrypt(twins: Twins) -> None:
    stranger = twins.net.wallet(0).request(10, T0)  # sealed for another wallet's key
    key = m.parse_request(stranger).encryption_key
    assert key is not None
    data = sealed.seal(b"hello", key)
    exc = twins.same_refusal(lambda k, se: se.open_sealed(data))
    assert isinstance(exc, CannotDecrypt)


def test_revoked_and_not_enrolled(twins: Twins, network: PilotNetwork) -> None:
    twins.fund(500)
    for kind, se in twins.ses.items():
        serial = x509.load_der_x509_certificate(twins.certs[kind]).serial_number
        assert se.install_crls([network.bank().crl([(serial, T0)], 7, T0)], T0)
    exc = twins.same_refusal(lambda k, se: se.unload(10, T0))
    assert isinstance(exc, SecureElementRevoked)
    fresh_card = twins.ses["card"]
    assert isinstance(fresh_card, CardSecureElement)
    assert len(fresh_card.trust.crl_ders()) == 1  # the host's copy was refreshed


def test_not_enrolled(network: PilotNetwork, factory: CardFactory, tmp_path: Path) -> None:
    card = factory.create(tmp_path / "c", network.params, network.central_bank.certificate_der)
    for se in (network.new_se(), card):
        with pytest.raises(SecureElementError, match="not enrolled"):
            se.request(10, T0)


def test_bad_arguments_are_refused_on_the_host_like_the_software_se(twins: Twins) -> None:
    exc = twins.same_refusal(lambda k, se: se.pay_to("alice", 10, T0))  # type: ignore[arg-type]
    assert type(exc) is TypeError
    exc = twins.same_refusal(lambda k, se: se.request(0, T0))
    assert type(exc) is MoneyError
    exc = twins.same_refusal(lambda k, se: se.request(10, T0, nonce=b"short"))
    assert type(exc) is ValueError
    exc = twins.same_refusal(lambda k, se: se.status(True))  # type: ignore[arg-type]
    assert type(exc) is TypeError


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ([b"\x01" * 12, 0, T0, None], MoneyError),
        ([b"\x01" * 12, "10", T0, None], TypeError),
        ([b"\x01" * 12, 10, 2**41, None], ValueError),
        ([b"\x01" * 3, 10, T0, None], DecodeError),  # not a wallet id
        (["payee", 10, T0, None], TypeError),
        ([b"\x01" * 12, 10, T0], DecodeError),  # three arguments, not four
    ],
)
def test_the_card_checks_arguments_again(
    twins: Twins, args: list[Any], error: type[Exception]
) -> None:
    card = twins.ses["card"]
    assert isinstance(card, CardSecureElement)
    with pytest.raises(error) as e:
        card._call(Ins.PAY_TO, args)  # past the host's checks, straight to the card
    assert type(e.value) is error


def test_every_limit_and_rejection_has_its_own_status_word() -> None:
    for limit in Limit:
        sw = refusal.status_word(LimitExceeded(limit, 2, 1))
        back = refusal.rebuild(sw, refusal.details(LimitExceeded(limit, 2, 1)))
        assert isinstance(back, LimitExceeded) and (back.limit, back.value, back.bound) == (
            limit,
            2,
            1,
        )
    for rejection in Rejection:
        sw = refusal.status_word(VerificationError(rejection, "why"))
        back = refusal.rebuild(sw, ["why"])
        assert isinstance(back, VerificationError)
        assert (back.rejection, back.detail) == (rejection, "why")
    words = [refusal.status_word(LimitExceeded(x, 2, 1)) for x in Limit] + [
        refusal.status_word(VerificationError(r)) for r in Rejection
    ]
    assert len(set(words)) == len(words) and all(refusal.is_refusal(w) for w in words)
