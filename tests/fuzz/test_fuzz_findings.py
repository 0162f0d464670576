"""Regression tests for what the fuzzers found (docs/RELIABILITY.md, "Fuzzing").

Fixed: a bank certificate or CRL with a malformed name raised ``KeyError`` (cryptography parses
names lazily); a secure element's state and a terminal's state with a field of the wrong type (or a
map where an array belongs) raised ``TypeError``/``ValueError``/``KeyError``, not a typed
error; unknown routes, wrong methods, out-of-range integers and clock headers made the HTTP
service answer a plain JSON 404/405 or a 500. Open (ledger, strict xfail): totals beyond SQL
BIGINT; an unknown account's balance.
"""

from __future__ import annotations

from pathlib import Path

import cbor2
import pytest
from fastapi.testclient import TestClient

from offcash.api.app import create_app
from offcash.crypto.trust import TrustStore
from offcash.encoding import cbor
from offcash.errors import (
    DecodeError,
    OffcashError,
    Rejection,
    SecureElementError,
    VerificationError,
)
from offcash.ledger import LedgerService
from offcash.ledger.errors import NotFound
from offcash.se.software import SoftwareSecureElement
from offcash.wallet.terminal import ReceiveOnlyTerminal

from fuzzkit import corpus
from harness import T0, PilotNetwork


def _state_with(index: int, value: object, inner: int | None = None) -> bytes:
    state = cbor2.loads(corpus().seeds["se_state"][0])
    if inner is None:
        state[index] = value
    else:
        state[index][inner] = value
    return cbor.encode(state)


@pytest.mark.parametrize(
    ("index", "value", "inner"),
    [
        (8, None, None),  # log base not bytes: TypeError in the log chain
        (1, b"\x30\x03\x02\x01", None),  # truncated private key: ValueError from cryptography
        (1, [1], None),  # key not bytes: TypeError
        (4, [[1]], None),  # a bank certificate that is a list
        (10, [{}, {}, [[[1], 1, b"", 0]], 0], None),  # unhashable payer in the payee book
        (11, {b"v": "x"}, None),  # voucher expiry not an integer
        (7, "1", 0),  # balance as text
        (2, 5, 0),  # currency not text
        (9, [None], None),  # a log entry that is not bytes
    ],
)
def test_malformed_se_state_is_a_secure_element_error(
    index: int, value: object, inner: int | None
) -> None:
    with pytest.raises(SecureElementError):
        SoftwareSecureElement(_state_with(index, value, inner))


def test_se_key_of_another_algorithm_is_refused() -> None:
    from offcash.crypto.algorithms import SignatureAlgorithm

    ed = cbor2.loads(corpus(SignatureAlgorithm.ED25519).seeds["se_state"][0])
    with pytest.raises(SecureElementError, match="algorithm"):
        SoftwareSecureElement(_state_with(1, ed[1]))


@pytest.mark.parametrize(
    ("index", "value"),
    [(4, [["t", b"x"]]), (4, [[1, None]]), (3, [{}, {}, [[b"p", 1, b"short", 0]], 0])],
)
def test_malformed_terminal_state_is_a_decode_error(index: int, value: object) -> None:
    """Found by atheris: ``d2 a0`` (a map, not an array) raised ``KeyError``."""
    state = cbor2.loads(corpus().seeds["terminal"][0])
    state[index] = value
    with pytest.raises(DecodeError):
        ReceiveOnlyTerminal.decode(cbor.encode(state))


@pytest.mark.parametrize("data", [b"\xa0", b"\xa1\x01\x80", b"\x80", b"\x85\x00\x00\x00\x00\x00"])
def test_terminal_state_of_another_shape_is_a_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        ReceiveOnlyTerminal.decode(data)


@pytest.fixture
def http(tmp_path: Path, p256: PilotNetwork) -> TestClient:
    ledger = LedgerService.open(f"sqlite:///{tmp_path}/api.db")
    ledger.install(p256.params, p256.central_bank, p256.banks)
    app = create_app(ledger, "t", clock=lambda: T0, accept_client_time=True)
    return TestClient(app, raise_server_exceptions=False, headers={"Authorization": "Bearer t"})


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "status"),
    [
        ("GET", "/nowhere", {}, 404),
        ("DELETE", "/v1/sync", {}, 405),
        ("POST", "/v1/banks/Bank%20A/issue", {"json": {"amount": 2**70}}, 422),
        ("POST", "/v1/banks/Bank%20A/issue", {"json": {"amount": 5},
                                              "headers": {"X-Offcash-Time": str(2**70)}}, 422),
        ("GET", "/v1/trust", {"headers": {"X-Offcash-Time": "-1"}}, 422),
        ("POST", "/v1/sync", {"content": b"{", "headers": {"Content-Type": "application/json"}},
         400),
    ],
)  # fmt: skip
def test_http_edge_cases_are_problem_documents(
    http: TestClient, method: str, url: str, kwargs: dict[str, object], status: int
) -> None:
    r = http.request(method, url, **kwargs)  # type: ignore[arg-type]
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["status"] == status
    if status == 405:
        assert "POST" in r.headers["allow"]


@pytest.fixture
def ledger(tmp_path: Path, p256: PilotNetwork) -> LedgerService:
    service = LedgerService.open(f"sqlite:///{tmp_path}/ledger.db")
    service.install(p256.params, p256.central_bank, p256.banks)
    return service


def test_ledger_totals_beyond_bigint_are_refused(ledger: LedgerService) -> None:
    ledger.issue("Bank A", 2**63 - 1, T0)
    try:
        ledger.issue("Bank A", 2**63 - 1, T0)
    except OffcashError:
        return  # refused: the books stay auditable
    ledger.audit()


def test_balance_of_unknown_account_is_not_found(ledger: LedgerService) -> None:
    with pytest.raises(NotFound):
        ledger.balance("c-does-not-exist")


def _bad_name_tag(der: bytes) -> bytes:
    """``der`` with the "Bank A" common name's string tag (UTF8String) made unknown (0x5d)."""
    cn = b"\x06\x03\x55\x04\x03\x0c\x06Bank A"
    assert der.count(cn) == 1
    return der.replace(cn, cn[:5] + b"\x5d" + cn[6:])


def test_bank_certificate_with_a_malformed_name_is_refused(p256: PilotNetwork) -> None:
    """Found by atheris (verify_ack): cryptography parses names lazily and raised ``KeyError``
    from ``bank_certificate``."""
    trust = TrustStore.create(p256.central_bank.certificate_der, p256.bank_ders)
    with pytest.raises(VerificationError):
        trust.bank_certificate(_bad_name_tag(p256.bank_ders[0]))
    crl = p256.bank("Bank A").crl([], 1, T0)
    assert trust.knows_issuer_of(crl)
    assert not trust.knows_issuer_of(_bad_name_tag(crl))


def test_sync_report_with_an_unparsable_certificate_is_refused(p256: PilotNetwork) -> None:
    """Found by atheris (verify_report): a certificate whose version field is 42 raised
    cryptography's ``InvalidVersion`` (not a ``ValueError``) while the report's expiry bound was
    read, before the certificate went through the trust store."""
    from offcash.verification import verify_report

    report = corpus().messages["report"]
    version_v3 = bytes.fromhex("a003020102")
    assert version_v3 in report
    trust = TrustStore.create(p256.central_bank.certificate_der, p256.bank_ders)
    with pytest.raises(VerificationError) as refused:
        verify_report(
            report.replace(version_v3, bytes.fromhex("a00302012a")), trust=trust, params=p256.params
        )
    assert refused.value.rejection is Rejection.BAD_CERTIFICATE
