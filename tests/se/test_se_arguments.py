"""Every secure element operation checks its arguments before it signs, debits or logs
(issue 9, finding 10): a bad one is a ``TypeError`` or ``ValueError`` and the SE's state is byte
for byte what it was. Against each SE kind (tests/se_kinds.py: the persisted state, as
``read_state`` gives it); for the software SE also its state in memory and its store's saves."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from offcash.domain.ids import WalletId
from offcash.domain.limits import DEFAULT_LIMITS
from offcash.errors import DecodeError, MoneyError
from offcash.protocol import messages as m
from offcash.se.interface import SecureElement
from offcash.se.software import SoftwareSecureElement

from factories import make_signer
from harness import T0, PilotNetwork
from se_kinds import network_per_kind

__all__ = ["network_per_kind"]

PAYEE = WalletId(bytes(range(12)))


class MemoryStore:
    """A ``StateStore`` that counts its saves."""

    def __init__(self) -> None:
        self.state, self.saves = b"", 0

    def save(self, state: bytes) -> None:
        self.state, self.saves = state, self.saves + 1


def _state(se: SecureElement) -> bytes:
    """The software SE's whole in-memory state, encoded (what it would persist next)."""
    assert isinstance(se, SoftwareSecureElement)
    return se._s.encode()


Call = Callable[[SecureElement, bytes], object]

#: (name, call given the SE and a genuine request for it to pay, expected error)
BAD: list[tuple[str, Call, type[Exception]]] = [
    ("pay_to str payee", lambda s, r: s.pay_to(str(PAYEE), 10, T0), TypeError),
    ("pay_to bytes payee", lambda s, r: s.pay_to(PAYEE.raw, 10, T0), TypeError),
    ("pay_to None payee", lambda s, r: s.pay_to(None, 10, T0), TypeError),
    ("pay_to float amount", lambda s, r: s.pay_to(PAYEE, 10.0, T0), TypeError),
    ("pay_to bool amount", lambda s, r: s.pay_to(PAYEE, True, T0), TypeError),
    ("pay_to zero amount", lambda s, r: s.pay_to(PAYEE, 0, T0), MoneyError),
    ("pay_to huge amount", lambda s, r: s.pay_to(PAYEE, 2**64, T0), ValueError),
    ("pay_to bool time", lambda s, r: s.pay_to(PAYEE, 10, True), TypeError),
    ("pay_to negative time", lambda s, r: s.pay_to(PAYEE, 10, -1), ValueError),
    ("pay_to time past the wire", lambda s, r: s.pay_to(PAYEE, 10, 2**40 + 1), ValueError),
    ("pay_to long reference", lambda s, r: s.pay_to(PAYEE, 10, T0, "r" * 141), ValueError),
    ("pay_to bytes reference", lambda s, r: s.pay_to(PAYEE, 10, T0, b"r"), TypeError),
    ("pay str request", lambda s, r: s.pay(r.hex(), T0), TypeError),
    ("pay bytearray request", lambda s, r: s.pay(bytearray(r), T0), TypeError),
    ("pay garbage request", lambda s, r: s.pay(b"\x00", T0), DecodeError),
    ("pay float time", lambda s, r: s.pay(r, T0 + 0.5), TypeError),
    ("request bool amount", lambda s, r: s.request(False, T0), TypeError),
    ("request long reference", lambda s, r: s.request(5, T0, "r" * 141), ValueError),
    ("request long name", lambda s, r: s.request(5, T0, None, "n" * 65), ValueError),
    ("request int name", lambda s, r: s.request(5, T0, None, 7), TypeError),
    ("request short nonce", lambda s, r: s.request(5, T0, nonce=b"n"), ValueError),
    ("request str nonce", lambda s, r: s.request(5, T0, nonce="n" * 16), TypeError),
    ("request str time", lambda s, r: s.request(5, "now"), TypeError),
    ("receive str payment", lambda s, r: s.receive("payment", T0), TypeError),
    ("receive None time", lambda s, r: s.receive(r, None), TypeError),
    ("load str voucher", lambda s, r: s.load("voucher", T0), TypeError),
    ("unload float", lambda s, r: s.unload(1.5, T0), TypeError),
    ("unload negative", lambda s, r: s.unload(-5, T0), MoneyError),
    ("sent_payment str", lambda s, r: s.sent_payment("1"), TypeError),
    ("sent_payment negative", lambda s, r: s.sent_payment(-1), ValueError),
    ("sync_upload bool", lambda s, r: s.sync_upload(True), TypeError),
    ("apply_sync str ack", lambda s, r: s.apply_sync("ack", b"c", [], [], T0), TypeError),
    ("install_crls bytes", lambda s, r: s.install_crls(b"crl", T0), TypeError),
    ("install_crls str item", lambda s, r: s.install_crls(["crl"], T0), TypeError),
    ("status str time", lambda s, r: s.status("now"), TypeError),
]


@pytest.mark.parametrize(("call", "error"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_argument_is_refused_with_the_state_unchanged(
    network: PilotNetwork, call: Call, error: type[Exception]
) -> None:
    ses = network.ses
    assert ses is not None
    se = network.wallet(1_000)
    payee = network.wallet()
    request = payee.request(100, T0)
    se.receive(network.wallet(500).pay_to(se.status(T0).wallet_id, 200, T0), T0)  # type: ignore[arg-type]
    before, status = ses.state_of(se), se.status(T0)
    with pytest.raises(error):
        call(se, request)
    assert ses.state_of(se) == before and se.status(T0) == status
    se = ses.reopen(ses.directory_of(se))  # a restart shows no change either
    assert se.status(T0) == status
    # and it still works: the genuine request is paid once
    payment = se.pay(request, T0 + 1)
    assert payee.receive(payment, T0 + 1).amount == 100
    assert se.status(T0).balance == 1_100


@pytest.mark.parametrize(("call", "error"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_argument_leaves_the_software_se_in_memory_and_its_store_unchanged(
    network_of_algorithm: PilotNetwork, call: Call, error: type[Exception]
) -> None:
    """Software SE only: its state in memory, and its store, which is not even written."""
    network = network_of_algorithm
    store = MemoryStore()
    state = SoftwareSecureElement.new_state(network.params, network.central_bank.certificate_der)
    se = network.wallet(1_000, se=SoftwareSecureElement(state, store))
    payee = network.wallet()
    request = payee.request(100, T0)
    se.receive(network.wallet(500).pay_to(se.status(T0).wallet_id, 200, T0), T0)  # type: ignore[arg-type]
    before, persisted, saves = _state(se), store.state, store.saves
    with pytest.raises(error):
        call(se, request)
    assert _state(se) == before
    assert (store.state, store.saves) == (persisted, saves)
    # and it still works: the genuine request is paid once
    payment = se.pay(request, T0 + 1)
    assert payee.receive(payment, T0 + 1).amount == 100
    assert se.status(T0).balance == 1_100


def test_bad_arguments_to_enroll_leave_a_new_se_unenrolled(network: PilotNetwork) -> None:
    ses = network.ses
    assert ses is not None
    se = network.new_se()
    cert = network.bank().certify_wallet(se.csr(), WalletId.random(), DEFAULT_LIMITS, 0, T0)
    before = ses.state_of(se)
    for args in (
        (cert.hex(), network.bank_ders, [], T0),
        (cert, tuple(network.bank_ders), [], T0),
        (cert, network.bank_ders, [], float(T0)),
    ):
        with pytest.raises(TypeError):
            se.enroll(*args)  # type: ignore[arg-type]
        assert ses.state_of(se) == before
    se.enroll(cert, network.bank_ders, [], T0)
    assert se.status(T0).wallet_id is not None


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"payee": "aaaaaaaaaaaaaaaaaaaa"}, ValueError),  # a text payee: no decoder reads it
        ({"amount": True}, ValueError),
        ({"amount": -1}, ValueError),
        ({"reference": "r" * 141}, ValueError),
        ({"nonce": b"short"}, ValueError),
        ({"currency": "XXX"}, ValueError),
        ({"time": 1.5}, TypeError),  # no message carries a float: the encoder refuses it
        ({"amount": object()}, TypeError),
    ],
    ids=repr,
)
def test_signers_refuse_a_payload_the_payee_cannot_read(
    network_of_algorithm: PilotNetwork, change: dict[str, Any], error: type[Exception]
) -> None:
    """The last line, for every signer (SE, bank, a library user): ``sign_payment`` decodes the
    payload with the payee's decoder before it signs."""
    signer = make_signer(network_of_algorithm)
    values: dict[str, Any] = {
        "payee": PAYEE,
        "amount": 10,
        "currency": "EUR",
        "counter": 1,
        "time": T0,
        "nonce": None,
        "reference": None,
    } | change
    with pytest.raises(error):
        m.sign_payment(signer.key, signer.cert, **values)


def test_signers_refuse_a_header_no_verifier_reads(network_of_algorithm: PilotNetwork) -> None:
    """A certificate over the header's bound (16 KiB) would make every payment unreadable."""
    signer = make_signer(network_of_algorithm)
    with pytest.raises(ValueError, match="header"):
        m.sign_receipt(signer.key, signer.cert + bytes(16384), payment=bytes(32), time=T0)
    with pytest.raises(TypeError):
        m.sign_receipt(signer.key, "cert", payment=bytes(32), time=T0)  # type: ignore[arg-type]
