"""Every stateless rejection of ``offcash.verification``, table-driven, for both algorithms.

Each case builds one payment (or other message) that breaks exactly one rule and names the
``Rejection`` expected. The stateful rules (nonce outstanding, replay, double spend) are in
tests/protocol/test_payee.py and tests/se/test_software_se.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from offcash.crypto import pki
from offcash.crypto.algorithms import SignatureAlgorithm, algorithm_of
from offcash.domain.ids import WalletId
from offcash.domain.limits import DEFAULT_LIMITS, Limits
from offcash.encoding import cbor, cose
from offcash.errors import DecodeError, Rejection, VerificationError
from offcash.issuance import CentralBank
from offcash.protocol import messages as m
from offcash.verification import (
    verify_ack,
    verify_payment,
    verify_receipt,
    verify_report,
    verify_unload,
    verify_voucher,
)

from factories import (
    Signer,
    cose_parts,
    make_signer,
    malleated,
    payload_map,
    protected_map,
    resign,
    trust_of,
    with_payload,
)
from harness import T0, PilotNetwork

PAYEE = WalletId(bytes(range(12)))
NONCE = bytes(range(16))
DAY = 86400


@dataclass
class Case:
    """One payment presented to ``verify_payment`` and the keyword arguments to verify it with."""

    data: bytes
    kwargs: dict[str, Any] = field(default_factory=dict)


def _other(alg: SignatureAlgorithm) -> SignatureAlgorithm:
    return next(a for a in SignatureAlgorithm if a is not alg)


def _request(**overrides: Any) -> m.PaymentRequest:
    values: dict[str, Any] = {
        "payee": PAYEE,
        "amount": 100,
        "currency": "EUR",
        "nonce": NONCE,
        "time": T0,
    }
    values.update(overrides)
    return m.PaymentRequest(**values)


def _wallet_cert(
    net: PilotNetwork,
    *,
    issuer: x509.Name,
    signing_key: Any,
    subject_key: Any,
    wallet_id: WalletId,
    policy: bool = True,
    ca: bool = False,
) -> bytes:
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, str(wallet_id))]))
        .issuer_name(issuer)
        .public_key(subject_key.public_key())
        .serial_number(12345)
        .not_valid_before(dt.datetime.fromtimestamp(T0 - DAY, dt.UTC))
        .not_valid_after(dt.datetime.fromtimestamp(T0 + DAY, dt.UTC))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        )
    )
    if policy:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(pki.WALLET_POLICY_OID, pki.encode_policy(DEFAULT_LIMITS, 0)),
            critical=False,
        )
    return pki.der(builder.sign(signing_key, algorithm_of(signing_key).x509_hash()))


def _custom_signer(net: PilotNetwork, make_cert: Callable[[Any, WalletId], bytes]) -> Signer:
    key = net.params.algorithm.generate()
    wid = WalletId.random()
    return Signer(key, make_cert(key, wid), wid)


# --- the table ----------------------------------------------------------------------------


def alg_not_allowed(net: PilotNetwork, a: Signer) -> Case:
    params = dataclasses.replace(net.params, algorithm=_other(net.params.algorithm))
    return Case(a.payment(PAYEE), {"params": params})


def header_alg_differs_from_key(net: PilotNetwork, a: Signer) -> Case:
    other = _other(net.params.algorithm)
    data = a.payment(PAYEE)
    header = protected_map(data) | {cose.HEADER_ALG: other.cose_id}
    params = dataclasses.replace(net.params, algorithm=other)
    return Case(resign(data, a.key, protected=header), {"params": params})


def garbage_certificate(net: PilotNetwork, a: Signer) -> Case:
    data = a.payment(PAYEE)
    header = protected_map(data) | {cose.HEADER_X5CHAIN: b"\x30\x03\x02\x01\x01"}
    return Case(resign(data, a.key, protected=header))


def _issued_by_the_bank_with(net: PilotNetwork, **defect: bool) -> Case:
    """A payment whose certificate the real bank signed, with ``defect`` in its profile."""
    bank = net.banks[0]
    s = _custom_signer(
        net,
        lambda k, w: _wallet_cert(
            net,
            issuer=bank.certificate.subject,
            signing_key=bank.key,
            subject_key=k,
            wallet_id=w,
            **defect,
        ),
    )
    return Case(s.payment(PAYEE))


def certificate_without_policy(net: PilotNetwork, a: Signer) -> Case:
    return _issued_by_the_bank_with(net, policy=False)


def ca_certificate_as_signer(net: PilotNetwork, a: Signer) -> Case:
    return _issued_by_the_bank_with(net, ca=True)


def bank_the_root_never_certified(net: PilotNetwork, a: Signer) -> Case:
    rogue = CentralBank.create("Rogue Root", net.params.algorithm, T0 - DAY).certify_bank(
        "Rogue Bank", T0 - DAY
    )
    s = _custom_signer(
        net,
        lambda k, w: _wallet_cert(
            net, issuer=rogue.certificate.subject, signing_key=rogue.key, subject_key=k, wallet_id=w
        ),
    )
    return Case(s.payment(PAYEE))


def self_signed_wallet(net: PilotNetwork, a: Signer) -> Case:
    def cert(k: Any, w: WalletId) -> bytes:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, str(w))])
        return _wallet_cert(net, issuer=name, signing_key=k, subject_key=k, wallet_id=w)

    return Case(_custom_signer(net, cert).payment(PAYEE))


def rogue_bank_impersonating_a_known_one(net: PilotNetwork, a: Signer) -> Case:
    rogue = CentralBank.create("Rogue Root", net.params.algorithm, T0 - DAY).certify_bank(
        net.banks[0].name, T0 - DAY
    )
    s = _custom_signer(
        net,
        lambda k, w: _wallet_cert(
            net, issuer=rogue.certificate.subject, signing_key=rogue.key, subject_key=k, wallet_id=w
        ),
    )
    return Case(s.payment(PAYEE))


def certificate_signature_flipped(net: PilotNetwork, a: Signer) -> Case:
    data = a.payment(PAYEE)
    cert = bytearray(a.cert)
    cert[-2] ^= 0x01
    header = protected_map(data) | {cose.HEADER_X5CHAIN: bytes(cert)}
    return Case(resign(data, a.key, protected=header))


def cert_not_yet_valid(net: PilotNetwork, a: Signer) -> Case:
    # Issued after the payment's time by more than the certificate's backdating.
    return Case(make_signer(net, now=T0 + 3600).payment(PAYEE))


def cert_expired(net: PilotNetwork, a: Signer) -> Case:
    return Case(make_signer(net, now=T0 - 8 * DAY).payment(PAYEE))


def revoked(net: PilotNetwork, a: Signer) -> Case:
    serial = x509.load_der_x509_certificate(a.cert).serial_number
    crl = net.banks[0].crl([(serial, T0 - 60)], 1, T0 - 60)
    return Case(a.payment(PAYEE), {"trust": trust_of(net, [crl])})


def _tampered(**changes: Any) -> Callable[[PilotNetwork, Signer], Case]:
    keys = {"payee": 1, "amount": 2, "currency": 3, "counter": 4, "time": 5}

    def build(net: PilotNetwork, a: Signer) -> Case:
        data = a.payment(PAYEE)
        payload = payload_map(data)
        for name, value in changes.items():
            payload[keys[name]] = value.raw if isinstance(value, WalletId) else value
        return Case(with_payload(data, payload), {"payee": None})

    build.__name__ = "tampered_" + "_".join(changes)
    return build


def signature_flipped(net: PilotNetwork, a: Signer) -> Case:
    parts = cose_parts(a.payment(PAYEE))
    sig = bytearray(parts[3])
    sig[0] ^= 0x80
    parts[3] = bytes(sig)
    from factories import cose_join

    return Case(cose_join(parts))


def signature_truncated(net: PilotNetwork, a: Signer) -> Case:
    parts = cose_parts(a.payment(PAYEE))
    parts[3] = parts[3][:-1]
    from factories import cose_join

    return Case(cose_join(parts))


def from_the_future(net: PilotNetwork, a: Signer) -> Case:
    return Case(a.payment(PAYEE, time=T0 + net.params.clock_skew + 1))


def too_old(net: PilotNetwork, a: Signer) -> Case:
    return Case(a.payment(PAYEE), {"now": T0 + net.params.max_payment_age + 1})


def redirected_payment(net: PilotNetwork, a: Signer) -> Case:
    return Case(a.payment(WalletId.random()))


def request_for_another_payee(net: PilotNetwork, a: Signer) -> Case:
    req = _request(payee=WalletId.random())
    return Case(a.payment(PAYEE, nonce=NONCE), {"payee": None, "request": req})


def nonce_mismatch(net: PilotNetwork, a: Signer) -> Case:
    return Case(a.payment(PAYEE, nonce=bytes(16)), {"request": _request()})


def one_way_payment_for_a_request(net: PilotNetwork, a: Signer) -> Case:
    return Case(a.payment(PAYEE), {"request": _request()})


def amount_mismatch(net: PilotNetwork, a: Signer) -> Case:
    return Case(a.payment(PAYEE, nonce=NONCE, amount=99), {"request": _request()})


def currency_differs_from_request(net: PilotNetwork, a: Signer) -> Case:
    return Case(a.payment(PAYEE, nonce=NONCE), {"request": _request(currency="USD")})


def currency_differs_from_network(net: PilotNetwork, a: Signer) -> Case:
    return Case(a.payment(PAYEE, currency="USD"))


def zero_amount(net: PilotNetwork, a: Signer) -> Case:
    return Case(a.payment(PAYEE, amount=0))


def over_certified_max_payment(net: PilotNetwork, a: Signer) -> Case:
    return Case(a.payment(PAYEE, amount=DEFAULT_LIMITS.max_payment + 1))


def counter_beyond_certified_count(net: PilotNetwork, a: Signer) -> Case:
    return Case(a.payment(PAYEE, counter=DEFAULT_LIMITS.max_offline_payments + 1))


def counter_not_after_base(net: PilotNetwork, a: Signer) -> Case:
    return Case(make_signer(net, counter_base=7).payment(PAYEE, counter=7))


def counter_before_base(net: PilotNetwork, a: Signer) -> Case:
    return Case(make_signer(net, counter_base=7).payment(PAYEE, counter=3))


def longer_offline_than_certified(net: PilotNetwork, a: Signer) -> Case:
    limits = dataclasses.replace(DEFAULT_LIMITS, max_offline_seconds=3600)
    s = make_signer(net, limits=limits)
    return Case(s.payment(PAYEE, time=T0 + 3601), {"now": T0 + 3601})


def self_payment(net: PilotNetwork, a: Signer) -> Case:
    return Case(a.payment(a.wallet_id), {"payee": None})


REJECTIONS: list[tuple[Callable[[PilotNetwork, Signer], Case], Rejection]] = [
    (alg_not_allowed, Rejection.ALGORITHM_NOT_ALLOWED),
    (header_alg_differs_from_key, Rejection.ALGORITHM_NOT_ALLOWED),
    (garbage_certificate, Rejection.BAD_CERTIFICATE),
    (certificate_without_policy, Rejection.BAD_CERTIFICATE),
    (ca_certificate_as_signer, Rejection.BAD_CERTIFICATE),
    (bank_the_root_never_certified, Rejection.UNKNOWN_ISSUER),
    (self_signed_wallet, Rejection.UNKNOWN_ISSUER),
    (rogue_bank_impersonating_a_known_one, Rejection.BAD_CERTIFICATE_SIGNATURE),
    (certificate_signature_flipped, Rejection.BAD_CERTIFICATE_SIGNATURE),
    (cert_not_yet_valid, Rejection.CERT_NOT_YET_VALID),
    (cert_expired, Rejection.CERT_EXPIRED),
    (revoked, Rejection.REVOKED),
    (_tampered(amount=99), Rejection.BAD_SIGNATURE),
    (_tampered(amount=10_000), Rejection.BAD_SIGNATURE),
    (_tampered(payee=WalletId(bytes(12))), Rejection.BAD_SIGNATURE),
    (_tampered(currency="USD"), Rejection.BAD_SIGNATURE),
    (_tampered(counter=2), Rejection.BAD_SIGNATURE),
    (_tampered(time=T0 + 1), Rejection.BAD_SIGNATURE),
    (signature_flipped, Rejection.BAD_SIGNATURE),
    (signature_truncated, Rejection.BAD_SIGNATURE),
    (from_the_future, Rejection.FROM_THE_FUTURE),
    (too_old, Rejection.TOO_OLD),
    (redirected_payment, Rejection.WRONG_PAYEE),
    (request_for_another_payee, Rejection.WRONG_PAYEE),
    (nonce_mismatch, Rejection.NONCE_MISMATCH),
    (one_way_payment_for_a_request, Rejection.NONCE_MISMATCH),
    (amount_mismatch, Rejection.AMOUNT_MISMATCH),
    (currency_differs_from_request, Rejection.CURRENCY_MISMATCH),
    (currency_differs_from_network, Rejection.CURRENCY_MISMATCH),
    (zero_amount, Rejection.NON_POSITIVE_AMOUNT),
    (over_certified_max_payment, Rejection.PAYER_LIMIT_EXCEEDED),
    (counter_beyond_certified_count, Rejection.PAYER_LIMIT_EXCEEDED),
    (counter_not_after_base, Rejection.PAYER_LIMIT_EXCEEDED),
    (counter_before_base, Rejection.PAYER_LIMIT_EXCEEDED),
    (longer_offline_than_certified, Rejection.PAYER_LIMIT_EXCEEDED),
    (self_payment, Rejection.SELF_PAYMENT),
]


@pytest.fixture(scope="module")
def payer(network: PilotNetwork) -> Signer:
    return make_signer(network)


def _verify(net: PilotNetwork, case: Case) -> Any:
    kwargs: dict[str, Any] = {
        "trust": trust_of(net),
        "params": net.params,
        "now": T0,
        "payee": PAYEE,
        "request": None,
    }
    kwargs.update(case.kwargs)
    return verify_payment(case.data, **kwargs)


@pytest.mark.parametrize(
    ("build", "rejection"), REJECTIONS, ids=[b.__name__ for b, _ in REJECTIONS]
)
def test_payment_rejection(
    network: PilotNetwork,
    payer: Signer,
    build: Callable[[PilotNetwork, Signer], Case],
    rejection: Rejection,
) -> None:
    case = build(network, payer)
    with pytest.raises(VerificationError) as info:
        _verify(network, case)
    assert info.value.rejection is rejection, info.value


ACCEPTED: list[tuple[str, Callable[[PilotNetwork, Signer], Case]]] = [
    ("one_way", lambda n, a: Case(a.payment(PAYEE))),
    ("answers_request", lambda n, a: Case(a.payment(PAYEE, nonce=NONCE), {"request": _request()})),
    ("no_payee_given", lambda n, a: Case(a.payment(PAYEE), {"payee": None})),
    (
        "amount_at_max_payment",
        lambda n, a: Case(a.payment(PAYEE, amount=DEFAULT_LIMITS.max_payment)),
    ),
    (
        "counter_at_certified_count",
        lambda n, a: Case(a.payment(PAYEE, counter=DEFAULT_LIMITS.max_offline_payments)),
    ),
    ("time_at_clock_skew", lambda n, a: Case(a.payment(PAYEE, time=T0 + n.params.clock_skew))),
    (
        "time_at_max_age",
        lambda n, a: Case(a.payment(PAYEE), {"now": T0 + n.params.max_payment_age}),
    ),
    (
        "revoked_other_serial",
        lambda n, a: Case(
            a.payment(PAYEE), {"trust": trust_of(n, [n.banks[0].crl([(1, T0)], 1, T0)])}
        ),
    ),
    ("signed_by_other_bank", lambda n, a: Case(make_signer(n, bank=n.banks[1]).payment(PAYEE))),
]


@pytest.mark.parametrize("build", [b for _, b in ACCEPTED], ids=[n for n, _ in ACCEPTED])
def test_payment_accepted_at_the_bounds(
    network: PilotNetwork, payer: Signer, build: Callable[[PilotNetwork, Signer], Case]
) -> None:
    case = build(network, payer)
    verified = _verify(network, case)
    assert verified.payment.encoded == case.data
    assert verified.payer != PAYEE


def test_verified_payment_names_the_payer(network: PilotNetwork, payer: Signer) -> None:
    verified = _verify(network, Case(payer.payment(PAYEE, amount=250, counter=3)))
    assert verified.payer == payer.wallet_id
    assert verified.signer.der == payer.cert
    assert verified.signer.bank == network.banks[0].name
    assert (verified.payment.amount, verified.payment.counter) == (250, 3)


# --- kind and version are refused by the strict decoder ----------------------------------


def test_other_kind_is_refused_as_a_payment(network: PilotNetwork, payer: Signer) -> None:
    receipt = m.sign_receipt(payer.key, payer.cert, payment=bytes(32), time=T0)
    with pytest.raises(DecodeError) as info:
        _verify(network, Case(receipt))
    assert info.value.path == "payment.protected.kind"


def test_payment_signed_as_another_kind_is_refused(network: PilotNetwork, payer: Signer) -> None:
    """Relabelling a payment's kind (even re-signed) never makes it a receipt."""
    data = payer.payment(PAYEE)
    header = protected_map(data) | {cose.HEADER_KIND: int(cose.Kind.RECEIPT)}
    with pytest.raises(DecodeError) as info:
        m.parse_receipt(resign(data, payer.key, protected=header))
    assert info.value.path == "receipt.payload.3"  # a payment's fields are not a receipt's


@pytest.mark.parametrize("version", [0, 2])
def test_unsupported_version_is_refused(network: PilotNetwork, payer: Signer, version: int) -> None:
    data = payer.payment(PAYEE)
    header = protected_map(data) | {cose.HEADER_VERSION: version}
    with pytest.raises(DecodeError) as info:
        _verify(network, Case(resign(data, payer.key, protected=header)))
    assert info.value.path == "payment.protected.version"


def test_every_rejection_has_a_test() -> None:
    """Each ``Rejection`` member is raised by the core and named by some test under tests/.

    A message of another kind or version is refused earlier, by the strict decoder, as a
    ``DecodeError`` naming ``protected.kind`` / ``protected.version`` (tested above)."""
    tests = Path(__file__).parent
    text = "\n".join(p.read_text() for p in tests.rglob("test_*.py"))
    src = (tests.parent / "src" / "offcash").rglob("*.py")
    raised = "\n".join(p.read_text() for p in src if p.name != "errors.py")
    for member in Rejection:
        assert f"Rejection.{member.name}" in raised, f"{member} is never raised: remove it"
        assert f"Rejection.{member.name}" in text or repr(member) in text, f"no test for {member}"


# --- the other verifiers ------------------------------------------------------------------


def test_receipt_verifies_and_rejects(network: PilotNetwork, payer: Signer) -> None:
    trust, params = trust_of(network), network.params
    payee = make_signer(network)
    payment = m.parse_payment(payer.payment(payee.wallet_id))
    receipt = m.sign_receipt(payee.key, payee.cert, payment=payment.digest, time=T0)
    assert (
        verify_receipt(receipt, trust=trust, params=params, payment=payment).payment
        == payment.digest
    )
    forged = m.sign_receipt(payer.key, payer.cert, payment=payment.digest, time=T0)
    with pytest.raises(VerificationError) as info:
        verify_receipt(forged, trust=trust, params=params, payment=payment)
    assert info.value.rejection is Rejection.WRONG_PAYEE
    other = m.sign_receipt(payee.key, payee.cert, payment=bytes(32), time=T0)
    with pytest.raises(VerificationError) as info:
        verify_receipt(other, trust=trust, params=params, payment=payment)
    assert info.value.rejection is Rejection.NONCE_MISMATCH


@pytest.mark.parametrize(
    ("overrides", "rejection"),
    [
        ({"currency": "USD"}, Rejection.CURRENCY_MISMATCH),
        ({"amount": 0}, Rejection.NON_POSITIVE_AMOUNT),
        ({"time": T0 + 8 * DAY}, Rejection.CERT_EXPIRED),
    ],
)
def test_unload_rejections(
    network: PilotNetwork, payer: Signer, overrides: dict[str, Any], rejection: Rejection
) -> None:
    values = {"amount": 100, "currency": "EUR", "counter": 1, "time": T0} | overrides
    data = m.sign_unload(payer.key, payer.cert, **values)
    with pytest.raises(VerificationError) as info:
        verify_unload(data, trust=trust_of(network), params=network.params)
    assert info.value.rejection is rejection


def test_report_from_an_expired_certificate_still_verifies(network: PilotNetwork) -> None:
    """A wallet that stayed offline past its certificate can still sync (to renew it)."""
    signer = make_signer(network, now=T0 - 30 * DAY)
    data = signer.report(counter=0, balance=0)
    report, cert = verify_report(data, trust=trust_of(network), params=network.params)
    assert cert.wallet_id == signer.wallet_id and report.time == T0
    tampered = with_payload(data, payload_map(data) | {3: 1_000_000})
    with pytest.raises(VerificationError) as info:
        verify_report(tampered, trust=trust_of(network), params=network.params)
    assert info.value.rejection is Rejection.BAD_SIGNATURE


def _voucher(net: PilotNetwork, **overrides: Any) -> bytes:
    bank = overrides.pop("bank", net.banks[0])
    values: dict[str, Any] = {
        "wallet": PAYEE,
        "amount": 500,
        "currency": "EUR",
        "voucher_id": NONCE,
        "time": T0,
        "expires": T0 + DAY,
    } | overrides
    return m.sign_voucher(bank.key, bank.certificate_der, **values)


def _rogue_voucher(net: PilotNetwork) -> bytes:
    rogue = CentralBank.create("Rogue", net.params.algorithm, T0 - DAY).certify_bank(
        net.banks[0].name, T0 - DAY
    )
    return _voucher(net, bank=rogue)


def _tampered_voucher(net: PilotNetwork) -> bytes:
    data = _voucher(net)
    return with_payload(data, payload_map(data) | {2: 50_000})


VOUCHER_REJECTIONS: list[tuple[str, Callable[[PilotNetwork], bytes], Rejection, int]] = [
    ("other_bank", lambda n: _voucher(n, bank=n.banks[1]), Rejection.UNKNOWN_ISSUER, T0),
    ("bank_not_held", _rogue_voucher, Rejection.UNKNOWN_ISSUER, T0),
    ("wrong_wallet", lambda n: _voucher(n, wallet=WalletId(bytes(12))), Rejection.WRONG_WALLET, T0),
    ("currency", lambda n: _voucher(n, currency="USD"), Rejection.CURRENCY_MISMATCH, T0),
    ("zero_amount", lambda n: _voucher(n, amount=0), Rejection.NON_POSITIVE_AMOUNT, T0),
    ("expired", _voucher, Rejection.TOO_OLD, T0 + DAY + 1),
    ("tampered", _tampered_voucher, Rejection.BAD_SIGNATURE, T0),
]


@pytest.mark.parametrize(
    ("build", "rejection", "now"),
    [c[1:] for c in VOUCHER_REJECTIONS],
    ids=[c[0] for c in VOUCHER_REJECTIONS],
)
def test_voucher_rejections(
    network: PilotNetwork, build: Callable[[PilotNetwork], bytes], rejection: Rejection, now: int
) -> None:
    kwargs: dict[str, Any] = {
        "trust": trust_of(network),
        "params": network.params,
        "wallet": PAYEE,
        "bank": network.banks[0].name,
    }
    assert verify_voucher(_voucher(network), now=T0 + DAY, **kwargs).amount == 500
    with pytest.raises(VerificationError) as info:
        verify_voucher(build(network), now=now, **kwargs)
    assert info.value.rejection is rejection


def test_voucher_signed_with_another_algorithm(network: PilotNetwork) -> None:
    other = dataclasses.replace(network.params, algorithm=_other(network.params.algorithm))
    with pytest.raises(VerificationError) as info:
        verify_voucher(
            _voucher(network),
            trust=trust_of(network),
            params=other,
            wallet=PAYEE,
            bank=network.banks[0].name,
            now=T0,
        )
    assert info.value.rejection is Rejection.ALGORITHM_NOT_ALLOWED


def test_ack_rejections(network: PilotNetwork) -> None:
    def ack(bank: Any, wallet: WalletId) -> bytes:
        return m.sign_ack(
            bank.key,
            bank.certificate_der,
            wallet=wallet.raw,
            sync_seq=0,
            entries=0,
            log_digest=bytes(32),
            time=T0,
        )

    kwargs: dict[str, Any] = {
        "trust": trust_of(network),
        "params": network.params,
        "bank": network.banks[0].name,
    }
    assert verify_ack(ack(network.banks[0], PAYEE), wallet=PAYEE, **kwargs).sync_seq == 0
    for data, rejection in [
        (ack(network.banks[1], PAYEE), Rejection.UNKNOWN_ISSUER),
        (ack(network.banks[0], WalletId(bytes(12))), Rejection.WRONG_WALLET),
    ]:
        with pytest.raises(VerificationError) as info:
            verify_ack(data, wallet=PAYEE, **kwargs)
        assert info.value.rejection is rejection


def test_verification_reads_no_clock(network: PilotNetwork, payer: Signer) -> None:
    """The same payment is accepted or refused purely as a function of ``now``."""
    data = payer.payment(PAYEE)
    ok = _verify(network, Case(data, {"now": T0 + DAY}))
    assert ok.payment.time == T0
    with pytest.raises(VerificationError):
        _verify(network, Case(data, {"now": T0 - DAY}))
    limits = Limits(1, 1, 1, 1, 1)
    assert pki.decode_policy(pki.encode_policy(limits, 9)) == (limits, 9)
    assert cbor.decode(cose_parts(data)[0])[cose.HEADER_KIND] == cose.Kind.PAYMENT


# --- malleated signatures (issue 9, finding 1) ------------------------------------------------


def _signed_of_every_kind(
    net: PilotNetwork, payer: Signer
) -> list[tuple[str, bytes, Callable[[bytes], Any]]]:
    """One genuine message of each signed kind, with the verifier its reader runs."""
    trust, params = trust_of(net), net.params
    payee = make_signer(net)
    bank = net.banks[0]
    pay = payer.payment(payee.wallet_id)
    ack = m.sign_ack(
        bank.key,
        bank.certificate_der,
        wallet=PAYEE,
        sync_seq=0,
        entries=0,
        log_digest=bytes(32),
        time=T0,
    )
    wallet_kw: dict[str, Any] = {"trust": trust, "params": params}
    bank_kw = wallet_kw | {"wallet": PAYEE, "bank": bank.name}
    return [
        ("payment", pay, lambda d: verify_payment(d, now=T0, **wallet_kw)),
        (
            "receipt",
            m.sign_receipt(payee.key, payee.cert, payment=m.digest(pay), time=T0),
            lambda d: verify_receipt(d, payment=m.parse_payment(pay), **wallet_kw),
        ),
        (
            "unload",
            m.sign_unload(payer.key, payer.cert, amount=5, currency="EUR", counter=2, time=T0),
            lambda d: verify_unload(d, **wallet_kw),
        ),
        ("report", payer.report(), lambda d: verify_report(d, **wallet_kw)),
        ("voucher", _voucher(net), lambda d: verify_voucher(d, now=T0, **bank_kw)),
        ("ack", ack, lambda d: verify_ack(d, **bank_kw)),
    ]


def test_malleated_signature_is_refused_by_every_verifier_and_names_the_same_message(
    network: PilotNetwork, payer: Signer
) -> None:
    """The twin a relay makes without a key (ECDSA ``n - s``, Ed25519 ``S + L``) is refused
    with a typed reason by every verifier; and a message is named by what was signed, so even
    a twin that got through would be the same message (same digest), never a second one."""
    expected = (
        Rejection.NON_CANONICAL_SIGNATURE
        if network.params.algorithm is SignatureAlgorithm.P256
        else Rejection.BAD_SIGNATURE
    )
    for name, data, check in _signed_of_every_kind(network, payer):
        check(data)  # the genuine message verifies
        twin = malleated(data)
        assert twin != data
        assert m.digest(twin) == m.digest(data), name
        with pytest.raises(VerificationError) as info:
            check(twin)
        assert info.value.rejection is expected, name


def test_a_message_is_named_by_its_signed_content(network: PilotNetwork, payer: Signer) -> None:
    """The digest is SHA-256 of the COSE Sig_structure (computed here from the parts, not by
    the code under test): independent of the signature, different for any other content."""
    data = payer.payment(PAYEE)
    protected, _, payload, _ = cose_parts(data)
    tbs = cbor.encode(["Signature1", protected, b"", payload])
    assert m.digest(data) == hashlib.sha256(tbs).digest() == m.parse_payment(data).digest
    again = payer.payment(PAYEE)  # signed twice: a new ECDSA signature, the same content
    assert m.digest(again) == m.digest(data)
    assert m.digest(payer.payment(PAYEE, counter=2)) != m.digest(data)
    not_signed = b"\xa0"
    assert m.digest(not_signed) == hashlib.sha256(not_signed).digest()
