"""The payer SE's memory of the requests it paid (issue 9, finding 7), and its refusal to pay
once it holds a CRL listing its own certificate (finding 8). Against each SE kind
(tests/se_kinds.py), except the two tests of the software SE's own constant and state format."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography import x509

from offcash.domain.ids import WalletId
from offcash.encoding import cbor
from offcash.errors import (
    Limit,
    LimitExceeded,
    Rejection,
    SecureElementError,
    SecureElementRevoked,
    VerificationError,
)
from offcash.protocol import messages as m
from offcash.se import paid
from offcash.se.interface import SecureElement
from offcash.se.paid import PaidRequests
from offcash.se.software import SoftwareSecureElement
from offcash.se.state import SEState

from harness import T0, PilotNetwork
from se_kinds import network_per_kind

__all__ = ["network_per_kind"]


def _wid(se: SecureElement) -> WalletId:
    wid = se.status(T0).wallet_id
    assert wid is not None
    return wid


def test_repeat_gets_the_same_bytes_across_restart_and_sync(network: PilotNetwork) -> None:
    ses = network.ses
    assert ses is not None
    a = network.wallet(1_000)
    b = network.wallet()
    req = b.request(300, T0, reference="table 4")
    first = a.pay(req, T0)
    assert a.pay(req, T0 + 1) == first
    network.sync(a, T0 + 2)  # the log entry is acknowledged and dropped; the memory is not
    a = ses.reopen(ses.directory_of(a))  # a restart
    assert a.pay(req, T0 + 3) == first
    assert a.status(T0).balance == 700 and a.status(T0).counter == 1


def test_same_nonce_other_terms_is_refused_and_other_payees_are_independent(
    network: PilotNetwork,
) -> None:
    a, b, c = network.wallet(1_000), network.wallet(), network.wallet()
    nonce = bytes(range(16))
    a.pay(b.request(100, T0, nonce=nonce), T0)
    for other in (
        m.PaymentRequest(_wid(b), 101, "EUR", nonce, T0),
        m.PaymentRequest(_wid(b), 100, "EUR", nonce, T0, reference="other"),
    ):
        with pytest.raises(VerificationError) as info:
            a.pay(other.encode(), T0 + 1)
        assert info.value.rejection is Rejection.NONCE_USED
    # the payee name is a display hint, not a term: the same request
    renamed = m.PaymentRequest(_wid(b), 100, "EUR", nonce, T0, payee_name="Shop")
    assert m.parse_payment(a.pay(renamed.encode(), T0 + 1)).counter == 1
    # the same nonce from another payee is another request
    c.receive(a.pay(c.request(100, T0, nonce=nonce), T0 + 2), T0 + 2)
    assert a.status(T0).balance == 800


def test_memory_is_bounded_and_refuses_rather_than_forgets(
    network_of_algorithm: PilotNetwork, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Software SE only: it lowers the software SE's bound (the kit does not check it)."""
    network = network_of_algorithm
    monkeypatch.setattr(paid, "MAX_PAID_REQUESTS", 3)
    monkeypatch.setattr("offcash.se.software.MAX_PAID_REQUESTS", 3)
    a, b = network.wallet(1_000), network.wallet()
    reqs = [b.request(10, T0 + i) for i in range(4)]
    for i in range(3):
        a.pay(reqs[i], T0 + i)
    with pytest.raises(LimitExceeded) as info:
        a.pay(reqs[3], T0 + 3)
    assert info.value.limit is Limit.MAX_PAID_REQUESTS
    assert a.pay_to(_wid(b), 10, T0 + 3)  # one-way payments need no memory
    age = network.params.max_payment_age + network.params.clock_skew
    network.sync(a, T0 + 3 + age)  # renew the certificate
    a.pay(b.request(10, T0 + 3 + age), T0 + 3 + age)  # the first has expired: room again
    assert a.status(T0).balance == 1_000 - 50


def test_state_of_version_1_reads_with_an_empty_memory(network_of_algorithm: PilotNetwork) -> None:
    """Software SE only: its state format's versions."""
    a = network_of_algorithm.wallet(1_000)
    value: Any = cbor.decode(a._s.encode(), max_bytes=1 << 26)  # type: ignore[attr-defined]
    assert value[0] == 5 and len(value) == 17
    old = cbor.encode([1, *value[1:12]])
    restored = SoftwareSecureElement(old)
    assert restored.status(T0).balance == 1_000
    with pytest.raises(SecureElementError, match="version"):
        SoftwareSecureElement(cbor.encode([6, *value[1:]]))
    assert SoftwareSecureElement(cbor.encode([3, *value[1:14]])).status(T0).balance == 1_000
    v4 = SoftwareSecureElement(cbor.encode([4, *value[1:15]]))  # no next or retired KEM key
    assert v4.status(T0).balance == 1_000 and v4._s.next_encryption_key is None
    with pytest.raises(SecureElementError):
        SoftwareSecureElement(cbor.encode([4, *value[1:]]))  # version 4 has 15 items
    with pytest.raises(SecureElementError):
        SoftwareSecureElement(cbor.encode([1, *value[1:]]))  # version 1 has 12 items
    assert PaidRequests.from_cbor([]).entries == {}


def test_se_holding_a_crl_that_lists_it_refuses_to_pay(network: PilotNetwork) -> None:
    ses = network.ses
    assert ses is not None
    a, b = network.wallet(1_000), network.wallet()
    req = b.request(100, T0)
    first = a.pay(req, T0)
    bank = network.bank()
    certificate = SEState.decode(ses.state_of(a)).certificate
    serial = x509.load_der_x509_certificate(certificate or b"").serial_number
    other_crl = bank.crl([(serial + 1, T0)], 2, T0 + 1)
    assert a.install_crls([other_crl], T0 + 1) is False
    a.pay_to(_wid(b), 1, T0 + 1)
    crl = bank.crl([(serial, T0)], 3, T0 + 2)
    assert a.install_crls([crl], T0 + 2) is True
    before = ses.state_of(a)
    for call in (
        lambda: a.pay_to(_wid(b), 1, T0 + 3),
        lambda: a.pay(b.request(5, T0 + 3), T0 + 3),
        lambda: a.unload(1, T0 + 3),
    ):
        with pytest.raises(SecureElementRevoked):
            call()
    assert ses.state_of(a) == before
    assert a.pay(req, T0 + 4) == first  # re-sending what it already signed is not paying
    older = bank.crl([], 1, T0 + 5)  # an older CRL (lower number) does not un-revoke it
    assert a.install_crls([older], T0 + 5) is True
    with pytest.raises(SecureElementRevoked):
        a.pay_to(_wid(b), 1, T0 + 6)
