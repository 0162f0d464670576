"""The v1 conformance vectors: every message kind, one case per verification rule and decode
error, the payee's memory, the transport forms and sealed payments (docs/PROTOCOL.md, section
"Test vectors", specifies the file format).

``build_cases(alg)`` writes what ``cases-<alg>.json`` holds, ``build_transports()``
``transports.json`` and ``build_sealed()`` ``sealed.json``. The expected outcome of every case
is written here by hand (``expect``), never computed by the code under test: ``check_case``
runs the code on the case and the generator refuses to write a file whose cases the code does
not meet, and tests/test_vectors.py runs ``check_case`` on every stored case again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Callable
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from offcash.crypto import pki
from offcash.crypto.algorithms import PrivateKey, SignatureAlgorithm, sign
from offcash.crypto.trust import TrustStore
from offcash.domain.ids import WalletId
from offcash.domain.limits import DEFAULT_LIMITS, Limits
from offcash.domain.network import NetworkParams
from offcash.encoding import cbor, cose, sealed
from offcash.errors import (
    CannotDecrypt,
    DecodeError,
    OffcashError,
    Rejection,
    TransportError,
    VerificationError,
)
from offcash.protocol import messages as m
from offcash.protocol.payee import PayeeBook
from offcash.se import log
from offcash.transports import qr, text
from offcash.verification import (
    verify_ack,
    verify_payment,
    verify_receipt,
    verify_report,
    verify_unload,
    verify_voucher,
)

TIME = 1_790_000_000
ISSUED = TIME - 3600  # the wallet certificates' issue time (notBefore is 300 s earlier)
NOT_BEFORE = ISSUED - 300
NOT_AFTER = ISSUED + 7 * 86400
NOW = TIME + 30
PAYER = WalletId(bytes.fromhex("0102030405060708090a0b0c"))
PAYEE = WalletId(bytes.fromhex("a1a2a3a4a5a6a7a8a9aaabac"))
OTHER = WalletId(bytes.fromhex("b1b2b3b4b5b6b7b8b9babbbc"))
NONCE = bytes(range(16))
VOUCHER_ID = bytes(range(16, 32))
AMOUNT = 1250
REFERENCE = "vector-1"
BANK_NAME = "offcash Vector Bank"
KIND, VERSION = cose.HEADER_KIND, cose.HEADER_VERSION
SIGNED_KINDS = {
    "payment": cose.Kind.PAYMENT,
    "receipt": cose.Kind.RECEIPT,
    "voucher": cose.Kind.LOAD_VOUCHER,
    "unload": cose.Kind.UNLOAD_REQUEST,
    "report": cose.Kind.SYNC_REPORT,
    "ack": cose.Kind.SYNC_ACK,
}

KeyFor = Callable[[SignatureAlgorithm, str], PrivateKey]


# --- DER editing (to make certificates no conforming issuer writes) ----------------------------


def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """Tag, content start and end of the DER item at ``pos`` (short or long length)."""
    length, start = data[pos + 1], pos + 2
    if length >= 0x80:
        size = length & 0x7F
        length, start = int.from_bytes(data[start : start + size], "big"), start + size
    return data[pos], start, start + length


def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def der_item(tag: int, content: bytes) -> bytes:
    """A DER item with the minimal length."""
    return bytes([tag]) + _len(len(content)) + content


def der_children(data: bytes) -> list[bytes]:
    """The items inside a constructed item's content."""
    out, pos = [], 0
    while pos < len(data):
        _, _, end = _tlv(data, pos)
        out.append(data[pos:end])
        pos = end
    return out


def content(item: bytes) -> bytes:
    """The content octets of a DER item."""
    _, start, end = _tlv(item, 0)
    return item[start:end]


def tbs_items(cert_der: bytes) -> tuple[list[bytes], bytes]:
    """The TBS's items and the outer signature algorithm item."""
    tbs, alg, _ = der_children(content(cert_der))
    return der_children(content(tbs)), alg


def resign(items: list[bytes], bank_key: PrivateKey, alg_item: bytes | None = None) -> bytes:
    """A certificate of these TBS items, signed by ``bank_key``."""
    tbs = der_item(0x30, b"".join(items))
    if alg_item is None:
        alg_item = items[2]
    if isinstance(bank_key, ec.EllipticCurvePrivateKey):
        signature = bank_key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    else:
        signature = bank_key.sign(tbs)
    return der_item(0x30, tbs + alg_item + der_item(0x03, b"\x00" + signature))


def replace_extensions(items: list[bytes], extensions: list[bytes]) -> list[bytes]:
    """The TBS items with the extensions replaced (items[-1] is [3] EXPLICIT Extensions)."""
    return [*items[:-1], der_item(0xA3, der_item(0x30, b"".join(extensions)))]


def extension_items(items: list[bytes]) -> list[bytes]:
    """The Extension items of a TBS."""
    return der_children(content(content(items[-1])))


# --- the vector world --------------------------------------------------------------------------


class World:
    """Keys, certificates and signers of one algorithm's vectors."""

    def __init__(self, alg: SignatureAlgorithm, key_for: KeyFor, certs: dict[str, bytes]):
        self.alg = alg
        self.key = {n: key_for(alg, n) for n in ("root", "bank", "payer", "payee", "rogue")}
        self.certs = certs
        self.params = NetworkParams("EUR", alg)
        self.bank_cert = x509.load_der_x509_certificate(certs["bank"])

    def wallet_cert(
        self,
        name: str,
        *,
        key: str = "payer",
        wallet: WalletId = PAYER,
        limits: Limits = DEFAULT_LIMITS,
        counter_base: int = 0,
        validity: int = 7 * 86400,
        serial: int = 2001,
    ) -> bytes:
        """Register (and return) a wallet certificate issued by the vector bank."""
        if name not in self.certs:
            cert = (
                x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, str(wallet))]))
                .issuer_name(self.bank_cert.subject)
                .public_key(self.key[key].public_key())
                .serial_number(serial)
                .not_valid_before(_utc(NOT_BEFORE))
                .not_valid_after(_utc(ISSUED + validity))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(
                    x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                    critical=True,
                )
                .add_extension(
                    x509.UnrecognizedExtension(
                        pki.WALLET_POLICY_OID, pki.encode_policy(limits, counter_base)
                    ),
                    critical=False,
                )
                .sign(self.key["bank"], self.alg.x509_hash())
            )
            self.certs[name] = pki.der(cert)
        return self.certs[name]

    def edited_cert(self, name: str, edit: Callable[[list[bytes]], list[bytes]]) -> bytes:
        """Register a variant of the payer's certificate: its TBS items edited, re-signed by
        the bank."""
        if name not in self.certs:
            items, alg_item = tbs_items(self.certs["payer"])
            self.certs[name] = resign(edit(items), self.key["bank"], alg_item)
        return self.certs[name]

    def protected(self, cert: bytes, kind: cose.Kind, alg: int | None = None) -> bytes:
        return cbor.encode(
            {
                cose.HEADER_ALG: self.alg.cose_id if alg is None else alg,
                cose.HEADER_X5CHAIN: cert,
                KIND: int(kind),
                VERSION: 1,
            }
        )

    def signed(
        self,
        payload: dict[int, Any] | bytes,
        *,
        kind: cose.Kind = cose.Kind.PAYMENT,
        signer: str = "payer",
        cert: bytes | None = None,
        protected: bytes | None = None,
    ) -> bytes:
        """A COSE_Sign1 over ``payload`` (a map or its bytes) signed with a vector key."""
        if cert is None:
            cert = self.certs["bank" if signer == "bank" else signer]
        if protected is None:
            protected = self.protected(cert, kind)
        raw = payload if isinstance(payload, bytes) else cbor.encode(payload)
        signature = sign(self.key[signer], cose.sig_structure(protected, raw))
        return sign1_bytes(protected, raw, signature)

    def payment(self, **changes: Any) -> bytes:
        """The reference payment with ``changes`` to its payload (None removes a field),
        signed by the payer (``cert=`` another certificate for the payer's key)."""
        cert = changes.pop("cert", None)
        return self.signed(payment_map(**changes), cert=cert)


def sign1_bytes(
    protected: bytes, payload: bytes, signature: bytes, unprotected: Any = None
) -> bytes:
    return cbor.encode(
        cbor2.CBORTag(
            18, [protected, {} if unprotected is None else unprotected, payload, signature]
        )
    )


def payment_map(**changes: Any) -> dict[int, Any]:
    names = {
        "payee": 1,
        "amount": 2,
        "currency": 3,
        "counter": 4,
        "time": 5,
        "nonce": 6,
        "reference": 7,
    }
    fields: dict[int, Any] = {
        1: PAYEE.raw,
        2: AMOUNT,
        3: "EUR",
        4: 1,
        5: TIME + 10,
        6: NONCE,
        7: REFERENCE,
    }
    for name, value in changes.items():
        key = names[name]
        if value is None:
            fields.pop(key)
        else:
            fields[key] = value.raw if isinstance(value, WalletId) else value
    return fields


def _utc(epoch: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


# --- cases ---------------------------------------------------------------------------------------


def accept() -> dict[str, str]:
    return {"outcome": "accept"}


def reject(rejection: str) -> dict[str, str]:
    return {"outcome": "rejection", "rejection": rejection}


def decode_error(path: str) -> dict[str, str]:
    return {"outcome": "decode_error", "path": path}


def network_of(params: NetworkParams) -> dict[str, Any]:
    """A case's ``network``; after a migration also ``legacy`` and ``legacy_until``."""
    out: dict[str, Any] = {
        "currency": params.currency,
        "algorithm": params.algorithm.short,
        "max_payment_age": params.max_payment_age,
        "clock_skew": params.clock_skew,
    }
    if params.legacy is not None:
        out |= {"legacy": params.legacy.short, "legacy_until": params.legacy_until}
    return out


def case(
    w: World,
    name: str,
    rule: str,
    function: str,
    data: bytes,
    expect: dict[str, str],
    *,
    trust: dict[str, Any] | None = None,
    network: NetworkParams | None = None,
    **inputs: Any,
) -> dict[str, Any]:
    """One case: a function, its exact inputs and the expected outcome."""
    out: dict[str, Any] = {"name": name, "rule": rule, "function": function, "input": data.hex()}
    out["trust"] = trust or {"root": "root", "banks": ["bank"], "crls": []}
    out["network"] = network_of(network or w.params)
    for key, value in inputs.items():
        shown = value
        if isinstance(value, bytes):
            shown = value.hex()
        elif isinstance(value, WalletId):
            shown = str(value)
        out[key] = shown
    out["expect"] = expect
    return out


def payment_case(
    w: World, name: str, rule: str, data: bytes, expect: dict[str, str], **kw: Any
) -> dict[str, Any]:
    kw.setdefault("now", NOW)
    kw.setdefault("payee", PAYEE)
    kw.setdefault("request", None)
    return case(w, name, rule, "verify_payment", data, expect, **kw)


def request_bytes(**changes: Any) -> bytes:
    fields: dict[str, Any] = {
        "payee": PAYEE,
        "amount": AMOUNT,
        "currency": "EUR",
        "nonce": NONCE,
        "time": TIME,
        "reference": REFERENCE,
        "payee_name": "Vector Shop",
    }
    return m.PaymentRequest(**(fields | changes)).encode()


def payment_cases(w: World) -> list[dict[str, Any]]:
    """One case per rule of section 5 (and the decode errors of rule 1)."""
    good = w.payment()
    env = cose.decode_sign1(good)
    cert = w.certs["payer"]
    req = request_bytes()
    one_way = w.payment(nonce=None, counter=2)
    pc = payment_case
    cases = [
        pc(w, "accepted_with_payee_and_request", "5", good, accept(), request=req),
        pc(w, "accepted_with_payee_only", "5", good, accept()),
        pc(w, "accepted_with_nothing_expected", "5", good, accept(), payee=None),
        pc(w, "one_way_accepted_with_payee", "5", one_way, accept()),
    ]
    # rule 1: decoding
    untagged = cbor.encode([env.protected, {}, env.payload, env.signature])
    wrong_tag = cbor.encode(cbor2.CBORTag(98, [env.protected, {}, env.payload, env.signature]))
    non_shortest = bytearray(good)
    non_shortest[1:2] = b"\x98\x04"  # array of 4 with a 1-byte length
    payload_nonshortest = cbor.encode(payment_map()).replace(
        b"\x02\x19\x04\xe2", b"\x02\x1a\x00\x00\x04\xe2"
    )
    unsorted = b"\xa7" + b"".join(
        cbor.encode(k) + cbor.encode(v) for k, v in sorted(payment_map().items(), reverse=True)
    )
    decode = [
        ("untagged_cose_sign1", untagged, "payment"),
        ("wrong_cbor_tag", wrong_tag, "payment"),
        ("trailing_byte", good + b"\x00", "payment"),
        ("non_shortest_length", bytes(non_shortest), "payment"),
        ("empty_input", b"", "payment"),
        (
            "unprotected_header_not_empty",
            sign1_bytes(env.protected, env.payload, env.signature, {4: b"k"}),
            "payment.unprotected",
        ),
        ("empty_signature", sign1_bytes(env.protected, env.payload, b""), "payment.signature"),
        (
            "unknown_alg",
            w.signed(payment_map(), protected=w.protected(cert, cose.Kind.PAYMENT, -999)),
            "payment.protected.alg",
        ),
        (
            "unknown_header_label",
            w.signed(
                payment_map(), protected=cbor.encode(cbor.decode(env.protected) | {4: b"kid"})
            ),
            "payment.protected.4",
        ),
        (
            "x5chain_as_array",
            w.signed(
                payment_map(), protected=cbor.encode(cbor.decode(env.protected) | {33: [cert]})
            ),
            "payment.protected.x5chain",
        ),
        (
            "version_2",
            w.signed(
                payment_map(), protected=cbor.encode(cbor.decode(env.protected) | {VERSION: 2})
            ),
            "payment.protected.version",
        ),
        (
            "kind_receipt_given_as_payment",
            w.signed(payment_map(), kind=cose.Kind.RECEIPT),
            "payment.protected.kind",
        ),
        ("payload_not_deterministic", w.signed(payload_nonshortest), "payment.payload"),
        ("payload_keys_unsorted", w.signed(unsorted), "payment.payload"),
        ("payload_unknown_field", w.signed(payment_map() | {8: 1}), "payment.payload.8"),
        ("payload_missing_amount", w.payment(amount=None), "payment.payload.amount"),
        ("amount_is_a_boolean", w.payment(amount=True), "payment.payload.amount"),
        ("amount_negative", w.payment(amount=-5), "payment.payload.amount"),
        ("amount_over_2_63", w.payment(amount=2**63), "payment.payload.amount"),
        ("time_over_2_40", w.payment(time=2**40 + 1), "payment.payload.time"),
        ("counter_over_2_63", w.payment(counter=2**63), "payment.payload.counter"),
        ("payee_11_bytes", w.payment(payee=PAYEE.raw[:11]), "payment.payload.payee"),
        ("nonce_15_bytes", w.payment(nonce=NONCE[:15]), "payment.payload.nonce"),
        ("currency_lowercase", w.payment(currency="eur"), "payment.payload.currency"),
        ("currency_not_iso_4217", w.payment(currency="EUX"), "payment.payload.currency"),
        ("reference_141_characters", w.payment(reference="é" * 141), "payment.payload.reference"),
        ("reference_is_bytes", w.payment(reference=b"vector-1"), "payment.payload.reference"),
    ]
    cases += [pc(w, n, "1", d, decode_error(p)) for n, d, p in decode]
    oversized = pc(w, "over_64_kib", "1", b"", decode_error("payment"))
    del oversized["input"]
    cases.append({"input_zeros": 64 * 1024 + 1} | oversized)  # 65,537 zero bytes
    cases.append(
        pc(w, "reference_140_characters_of_2_bytes", "1", w.payment(reference="é" * 140), accept())
    )
    # rule 2 and 8: algorithms
    other_alg = (
        SignatureAlgorithm.ED25519
        if w.alg is not SignatureAlgorithm.ED25519
        else SignatureAlgorithm.P256
    )
    cases.append(
        pc(
            w,
            "network_uses_another_algorithm",
            "2",
            good,
            reject("ALGORITHM_NOT_ALLOWED"),
            network=NetworkParams("EUR", other_alg),
        )
    )
    mislabelled = sign1_bytes(
        w.protected(cert, cose.Kind.PAYMENT, other_alg.cose_id), env.payload, env.signature
    )
    cases.append(
        pc(
            w,
            "header_alg_differs_from_key",
            "8",
            mislabelled,
            reject("ALGORITHM_NOT_ALLOWED"),
            network=NetworkParams("EUR", other_alg),
        )
    )
    sig = env.signature
    if w.alg is SignatureAlgorithm.P256:  # the high twin (r, n - s) of a canonical signature
        n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
        twin = sig[:32] + (n - int.from_bytes(sig[32:], "big")).to_bytes(32, "big")
        cases.append(
            pc(
                w,
                "signature_high_s",
                "8",
                sign1_bytes(env.protected, env.payload, twin),
                reject("NON_CANONICAL_SIGNATURE"),
            )
        )
    elif w.alg is SignatureAlgorithm.ED25519:  # S + L: the same point equation, S out of range
        order = 2**252 + 27742317777372353535851937790883648493
        twin = sig[:32] + (int.from_bytes(sig[32:], "little") + order).to_bytes(32, "little")
        cases.append(
            pc(
                w,
                "signature_s_plus_l",
                "8",
                sign1_bytes(env.protected, env.payload, twin),
                reject("BAD_SIGNATURE"),
            )
        )
    else:  # ML-DSA: a nonzero byte in the hint encoding's padding (FIPS 204 HintBitUnpack)
        omega, k = (80, 4) if w.alg is SignatureAlgorithm.ML_DSA_44 else (55, 6)
        if sig[-1] >= omega:
            raise AssertionError("the vector signature has no padding in its hint encoding")
        pad = len(sig) - k - 1  # the last of the omega hint positions, unused
        twin = sig[:pad] + b"\x01" + sig[pad + 1 :]
        cases.append(
            pc(
                w,
                "signature_hint_padding_not_zero",
                "8",
                sign1_bytes(env.protected, env.payload, twin),
                reject("BAD_SIGNATURE"),
            )
        )
    cases.append(
        pc(
            w,
            "signature_one_byte_short",
            "8",
            sign1_bytes(env.protected, env.payload, env.signature[:-1]),
            reject("BAD_SIGNATURE"),
        )
    )
    cases.append(
        pc(
            w,
            "signature_of_another_payload",
            "8",
            sign1_bytes(
                env.protected, cbor.encode(payment_map(amount=AMOUNT * 100)), env.signature
            ),
            reject("BAD_SIGNATURE"),
        )
    )
    # rules 3-7: the certificate
    cases += certificate_cases(w)
    # rule 9: time window (bounds inclusive)
    skew, age = w.params.clock_skew, w.params.max_payment_age
    cases += [
        pc(w, "time_at_now_plus_skew", "9", good, accept(), now=TIME + 10 - skew),
        pc(
            w,
            "time_after_now_plus_skew",
            "9",
            good,
            reject("FROM_THE_FUTURE"),
            now=TIME + 10 - skew - 1,
        ),
        pc(w, "time_at_now_minus_max_age", "9", good, accept(), now=TIME + 10 + age),
        pc(
            w,
            "time_before_now_minus_max_age",
            "9",
            good,
            reject("TOO_OLD"),
            now=TIME + 10 + age + 1,
        ),
    ]
    # rule 10-12
    cases += [
        pc(
            w,
            "currency_not_the_networks",
            "10",
            w.payment(currency="USD"),
            reject("CURRENCY_MISMATCH"),
        ),
        pc(w, "amount_zero", "10", w.payment(amount=0), reject("NON_POSITIVE_AMOUNT")),
        pc(
            w,
            "payee_is_the_payer",
            "10",
            w.payment(payee=PAYER),
            reject("SELF_PAYMENT"),
            payee=None,
        ),
        pc(w, "addressed_to_another_payee", "11", w.payment(payee=OTHER), reject("WRONG_PAYEE")),
        pc(
            w,
            "one_way_to_another_wallet_with_payee",
            "11",
            w.payment(payee=OTHER, nonce=None),
            reject("WRONG_PAYEE"),
        ),
        pc(
            w,
            "one_way_to_another_wallet_with_request",
            "12",
            w.payment(payee=OTHER, nonce=None),
            reject("NONCE_MISMATCH"),
            payee=None,
            request=req,
        ),
        pc(
            w,
            "one_way_to_another_wallet_with_nothing",
            "12",
            w.payment(payee=OTHER, nonce=None),
            accept(),
            payee=None,
        ),
        pc(w, "one_way_given_a_request", "12", one_way, reject("NONCE_MISMATCH"), request=req),
        pc(
            w,
            "another_nonce",
            "12",
            good,
            reject("NONCE_MISMATCH"),
            request=request_bytes(nonce=bytes(16)),
        ),
        pc(
            w,
            "request_for_another_payee",
            "12",
            good,
            reject("WRONG_PAYEE"),
            payee=None,
            request=request_bytes(payee=OTHER),
        ),
        pc(
            w,
            "request_for_another_amount",
            "12",
            good,
            reject("AMOUNT_MISMATCH"),
            request=request_bytes(amount=AMOUNT + 1),
        ),
        pc(
            w,
            "request_in_another_currency",
            "12",
            good,
            reject("CURRENCY_MISMATCH"),
            request=request_bytes(currency="USD"),
        ),
        pc(
            w,
            "reference_differs_from_the_request",
            "12",
            good,
            accept(),
            request=request_bytes(reference="other"),
        ),
        pc(w, "request_time_not_checked", "12", good, accept(), request=request_bytes(time=0)),
    ]
    # rule 13: certified limits
    long_lived = w.wallet_cert("payer_8_days", validity=8 * 86400, serial=2002)
    based = w.wallet_cert("payer_counter_base_7", counter_base=7, serial=2003)
    offline_end = NOT_BEFORE + DEFAULT_LIMITS.max_offline_seconds
    cases += [
        pc(
            w, "amount_at_max_payment", "13", w.payment(amount=DEFAULT_LIMITS.max_payment), accept()
        ),
        pc(
            w,
            "amount_over_max_payment",
            "13",
            w.payment(amount=DEFAULT_LIMITS.max_payment + 1),
            reject("PAYER_LIMIT_EXCEEDED"),
        ),
        pc(
            w,
            "counter_equal_to_base",
            "13",
            w.payment(counter=7, cert=based),
            reject("PAYER_LIMIT_EXCEEDED"),
        ),
        pc(
            w,
            "counter_base_plus_max_offline_payments",
            "13",
            w.payment(counter=7 + DEFAULT_LIMITS.max_offline_payments, cert=based),
            accept(),
        ),
        pc(
            w,
            "counter_over_base_plus_max_offline_payments",
            "13",
            w.payment(counter=8 + DEFAULT_LIMITS.max_offline_payments, cert=based),
            reject("PAYER_LIMIT_EXCEEDED"),
        ),
        pc(
            w,
            "time_at_end_of_offline_period",
            "13",
            w.payment(time=offline_end, cert=long_lived),
            accept(),
            now=offline_end,
        ),
        pc(
            w,
            "time_after_offline_period",
            "13",
            w.payment(time=offline_end + 1, cert=long_lived),
            reject("PAYER_LIMIT_EXCEEDED"),
            now=offline_end + 1,
        ),
    ]
    return cases


def ext(oid: str, value: bytes, critical: bool = False, explicit_false: bool = False) -> bytes:
    """An Extension item."""
    flag = b"\x01\x01\xff" if critical else (b"\x01\x01\x00" if explicit_false else b"")
    body = der_item(0x06, _oid(oid)) + flag + der_item(0x04, value)
    return der_item(0x30, body)


def _oid(dotted: str) -> bytes:
    from offcash.crypto.der import encode_oid

    return encode_oid(dotted)


BC, KU, POLICY = "2.5.29.19", "2.5.29.15", pki.WALLET_POLICY_OID.dotted_string
KEY_DIGEST = pki.ENCRYPTION_KEY_DIGEST_OID.dotted_string
#: An EncryptionKeyDigest's 32 bytes (a verifier does not check them against any key).
KEM = hashlib.sha256(b"offcash vector kem key").digest()
END_ENTITY, CA = b"\x30\x00", b"\x30\x03\x01\x01\xff"
DIGITAL_SIGNATURE = b"\x03\x02\x07\x80"


def policy(**changes: Any) -> bytes:
    value = cbor.decode(pki.encode_policy(DEFAULT_LIMITS, 0))
    for key, v in changes.items():
        k = int(key[1:])
        if v is None:
            value.pop(k)
        else:
            value[k] = v
    return cbor.encode(value)


def name(*attributes: bytes) -> bytes:
    """A Name with one RDN per attribute (each a ready AttributeTypeAndValue)."""
    return der_item(0x30, b"".join(der_item(0x31, a) for a in attributes))


def attribute(oid: str, tag: int, value: bytes) -> bytes:
    return der_item(0x30, der_item(0x06, _oid(oid)) + der_item(tag, value))


CN = "2.5.4.3"


def certificate_cases(w: World) -> list[dict[str, Any]]:
    """Rules 3 to 7: the payer's certificate, profile, strict DER, validity and CRLs."""
    pc = payment_case
    std = [
        ext(BC, END_ENTITY, True),
        ext(KU, DIGITAL_SIGNATURE, True),
        ext(POLICY, policy()),
    ]

    def with_exts(label: str, exts: list[bytes]) -> bytes:
        return w.edited_cert(label, lambda items: replace_extensions(items, exts))

    def with_subject(label: str, subject: bytes) -> bytes:
        return w.edited_cert(label, lambda items: [*items[:5], subject, *items[6:]])

    wid = str(PAYER).encode()
    items, _ = tbs_items(w.certs["payer"])
    forged_items = replace_extensions(items, [*std[:2], ext(POLICY, policy(k2=10**9))])
    forged = der_item(
        0x30,
        der_item(0x30, b"".join(forged_items))
        + der_children(content(w.certs["payer"]))[1]
        + der_children(content(w.certs["payer"]))[2],
    )
    w.certs.setdefault("payer_forged_policy", forged)
    w.certs.setdefault("payer_by_rogue_bank", resign(items, w.key["rogue"]))
    inner_alg = der_item(0x30, der_item(0x06, _oid("1.2.840.10045.4.3.3")))  # ecdsa-with-SHA384
    w.edited_cert("payer_inner_signature_algorithm_differs", lambda i: [*i[:2], inner_alg, *i[3:]])
    serial = items[1]
    w.edited_cert(
        "payer_serial_non_minimal_length", lambda i: [i[0], b"\x02\x81" + serial[1:], *i[2:]]
    )
    w.certs.setdefault("not_a_certificate", b"\x30\x03\x02\x01\x01")
    not_before, not_after = der_children(content(items[4]))
    year = content(not_after)[:2]
    w.edited_cert(
        "payer_generalized_time_before_2050",
        lambda i: [
            *i[:4],
            der_item(0x30, not_before + der_item(0x18, b"20" + content(not_after))),
            *i[5:],
        ],
    )
    w.edited_cert(
        "payer_utctime_without_seconds",
        lambda i: [
            *i[:4],
            der_item(0x30, not_before + der_item(0x17, content(not_after)[:10] + b"Z")),
            *i[5:],
        ],
    )
    assert year == b"26"
    variants: list[tuple[str, bytes, dict[str, str]]] = [
        (
            "payer_generalized_time_before_2050",
            w.certs["payer_generalized_time_before_2050"],
            reject("BAD_CERTIFICATE"),
        ),
        (
            "payer_utctime_without_seconds",
            w.certs["payer_utctime_without_seconds"],
            reject("BAD_CERTIFICATE"),
        ),
        ("not_a_certificate", w.certs["not_a_certificate"], reject("BAD_CERTIFICATE")),
        ("payer_forged_policy", forged, reject("BAD_CERTIFICATE_SIGNATURE")),
        (
            "payer_by_rogue_bank",
            w.certs["payer_by_rogue_bank"],
            reject("BAD_CERTIFICATE_SIGNATURE"),
        ),
        (
            "payer_inner_signature_algorithm_differs",
            w.certs["payer_inner_signature_algorithm_differs"],
            reject("BAD_CERTIFICATE"),
        ),
        (
            "payer_serial_non_minimal_length",
            w.certs["payer_serial_non_minimal_length"],
            reject("BAD_CERTIFICATE"),
        ),
        (
            "payer_ca",
            with_exts("payer_ca", [ext(BC, CA, True), *std[1:]]),
            reject("BAD_CERTIFICATE"),
        ),
        (
            "payer_no_basic_constraints",
            with_exts("payer_no_basic_constraints", std[1:]),
            reject("BAD_CERTIFICATE"),
        ),
        (
            "payer_basic_constraints_not_critical",
            with_exts("payer_basic_constraints_not_critical", [ext(BC, END_ENTITY), *std[1:]]),
            accept(),
        ),
        (
            "payer_no_key_usage",
            with_exts("payer_no_key_usage", [std[0], std[2]]),
            reject("BAD_CERTIFICATE"),
        ),
        (
            "payer_key_usage_without_digital_signature",
            with_exts(
                "payer_key_usage_without_digital_signature",
                [std[0], ext(KU, b"\x03\x02\x06\x40", True), std[2]],
            ),
            reject("BAD_CERTIFICATE"),
        ),
        (
            "payer_key_usage_with_other_bits",
            with_exts(
                "payer_key_usage_with_other_bits",
                [std[0], ext(KU, b"\x03\x02\x05\xa0", True), std[2]],
            ),
            accept(),
        ),
        (
            "payer_no_wallet_policy",
            with_exts("payer_no_wallet_policy", std[:2]),
            reject("BAD_CERTIFICATE"),
        ),
        (
            "payer_wallet_policy_critical",
            with_exts("payer_wallet_policy_critical", [*std[:2], ext(POLICY, policy(), True)]),
            accept(),
        ),
        (
            "payer_encryption_key_digest",
            with_exts("payer_encryption_key_digest", [*std, ext(KEY_DIGEST, b"\x04\x20" + KEM)]),
            accept(),
        ),
        (
            "payer_encryption_key_digest_critical",
            with_exts(
                "payer_encryption_key_digest_critical",
                [*std, ext(KEY_DIGEST, b"\x04\x20" + KEM, True)],
            ),
            accept(),
        ),
        (
            "payer_encryption_key_digest_31_bytes",
            with_exts(
                "payer_encryption_key_digest_31_bytes",
                [*std, ext(KEY_DIGEST, b"\x04\x1f" + KEM[:31])],
            ),
            reject("BAD_CERTIFICATE"),
        ),
        (
            "payer_encryption_key_digest_long_form_length",  # 04 81 20: not DER's length
            with_exts(
                "payer_encryption_key_digest_long_form_length",
                [*std, ext(KEY_DIGEST, b"\x04\x81\x20" + KEM)],
            ),
            reject("BAD_CERTIFICATE"),
        ),
        (
            "payer_encryption_key_digest_trailing_byte",
            with_exts(
                "payer_encryption_key_digest_trailing_byte",
                [*std, ext(KEY_DIGEST, b"\x04\x20" + KEM + b"\x00")],
            ),
            reject("BAD_CERTIFICATE"),
        ),
        (
            "payer_encryption_key_digest_not_an_octet_string",
            with_exts(
                "payer_encryption_key_digest_not_an_octet_string", [*std, ext(KEY_DIGEST, KEM)]
            ),
            reject("BAD_CERTIFICATE"),
        ),
        (
            "payer_wallet_policy_unknown_key",
            with_exts("payer_wallet_policy_unknown_key", [*std[:2], ext(POLICY, policy(k7=1))]),
            reject("BAD_CERTIFICATE"),
        ),
        (
            "payer_wallet_policy_missing_key",
            with_exts("payer_wallet_policy_missing_key", [*std[:2], ext(POLICY, policy(k6=None))]),
            reject("BAD_CERTIFICATE"),
        ),
        (
            "payer_wallet_policy_not_cbor",
            with_exts("payer_wallet_policy_not_cbor", [*std[:2], ext(POLICY, b"\xff")]),
            reject("BAD_CERTIFICATE"),
        ),
        (
            "payer_unknown_critical_extension",
            with_exts(
                "payer_unknown_critical_extension", [*std, ext("1.2.3.4", b"\x05\x00", True)]
            ),
            reject("BAD_CERTIFICATE"),
        ),
        (
            "payer_unknown_extension",
            with_exts("payer_unknown_extension", [*std, ext("1.2.3.4", b"\x05\x00")]),
            accept(),
        ),
        (
            "payer_criticality_explicit_false",
            with_exts(
                "payer_criticality_explicit_false",
                [*std[:2], ext(POLICY, policy(), explicit_false=True)],
            ),
            reject("BAD_CERTIFICATE"),
        ),
        (
            "payer_repeated_extension",
            with_exts("payer_repeated_extension", [*std, std[2]]),
            reject("BAD_CERTIFICATE"),
        ),
        (
            "payer_cn_uppercase",
            with_subject("payer_cn_uppercase", name(attribute(CN, 0x0C, wid.upper()))),
            reject("BAD_CERTIFICATE"),
        ),
        (
            "payer_cn_with_space",
            with_subject("payer_cn_with_space", name(attribute(CN, 0x0C, wid + b" "))),
            reject("BAD_CERTIFICATE"),
        ),
        (
            "payer_two_cns",
            with_subject("payer_two_cns", name(attribute(CN, 0x0C, wid), attribute(CN, 0x0C, wid))),
            reject("BAD_CERTIFICATE"),
        ),
        (
            "payer_cn_bmpstring",
            with_subject(
                "payer_cn_bmpstring", name(attribute(CN, 0x1E, str(PAYER).encode("utf-16-be")))
            ),
            reject("BAD_CERTIFICATE"),
        ),
        (
            "payer_cn_printablestring",
            with_subject("payer_cn_printablestring", name(attribute(CN, 0x13, wid))),
            accept(),
        ),
        (
            "payer_cn_and_organization",
            with_subject(
                "payer_cn_and_organization",
                name(attribute("2.5.4.10", 0x0C, b"Vector"), attribute(CN, 0x0C, wid)),
            ),
            accept(),
        ),
    ]
    structure = {  # rule 3: what strict DER parsing refuses; the other defects are rule 5's
        "not_a_certificate",
        "payer_inner_signature_algorithm_differs",
        "payer_serial_non_minimal_length",
        "payer_generalized_time_before_2050",
        "payer_utctime_without_seconds",
        "payer_criticality_explicit_false",
        "payer_repeated_extension",
    }

    def rule(label: str, expect: dict[str, str]) -> str:
        if expect.get("rejection") == "BAD_CERTIFICATE_SIGNATURE":
            return "4"
        return "3" if label in structure else "5"

    cases = [
        pc(w, f"certificate_{label}", rule(label, expect), w.payment(cert=cert), expect)
        for label, cert, expect in variants
    ]
    cases.append(
        pc(
            w,
            "bank_not_in_trust_store",
            "3",
            w.payment(),
            reject("UNKNOWN_ISSUER"),
            trust={"root": "root", "banks": [], "crls": []},
        )
    )
    # rule 6: validity, at the payment's time, bounds inclusive
    roomy = dataclasses.replace(DEFAULT_LIMITS, max_offline_seconds=30 * 86400)
    roomy_cert = w.wallet_cert("payer_30_days_offline", limits=roomy, serial=2004)
    cases += [
        pc(
            w,
            "time_before_not_before",
            "6",
            w.payment(time=NOT_BEFORE - 1),
            reject("CERT_NOT_YET_VALID"),
            now=NOT_BEFORE,
        ),
        pc(w, "time_at_not_before", "6", w.payment(time=NOT_BEFORE), accept(), now=NOT_BEFORE),
        pc(
            w,
            "time_at_not_after",
            "6",
            w.payment(time=NOT_AFTER, cert=roomy_cert),
            accept(),
            now=NOT_AFTER,
        ),
        pc(
            w,
            "time_after_not_after",
            "6",
            w.payment(time=NOT_AFTER + 1, cert=roomy_cert),
            reject("CERT_EXPIRED"),
            now=NOT_AFTER + 1,
        ),
        pc(
            w,
            "certificate_expired_now_but_not_at_payment_time",
            "6",
            w.payment(time=NOT_AFTER - 100, cert=roomy_cert),
            accept(),
            now=NOT_AFTER + 1000,
        ),
        pc(
            w,
            "unauthenticated_time_decides_before_the_signature",
            "6",
            sign1_bytes(
                cose.decode_sign1(w.payment()).protected,
                cbor.encode(payment_map(time=NOT_BEFORE - 1)),
                cose.decode_sign1(w.payment()).signature,
            ),
            reject("CERT_NOT_YET_VALID"),
            now=NOT_BEFORE,
        ),
    ]
    # rule 7: CRLs (the signature is checked when the CRL is installed; freshness is not)
    cases += [
        pc(
            w,
            "revoked_by_held_crl",
            "7",
            w.payment(),
            reject("REVOKED"),
            trust={"root": "root", "banks": ["bank"], "crls": ["crl_revoking_payer"]},
        ),
        pc(
            w,
            "revoked_by_stale_crl",
            "7",
            w.payment(),
            reject("REVOKED"),
            trust={"root": "root", "banks": ["bank"], "crls": ["crl_stale_revoking_payer"]},
        ),
        pc(
            w,
            "crl_of_others",
            "7",
            w.payment(),
            accept(),
            trust={"root": "root", "banks": ["bank"], "crls": ["crl_revoking_other"]},
        ),
    ]
    return cases


def crls(w: World) -> dict[str, bytes]:
    bank = w.bank_cert
    payer_serial = x509.load_der_x509_certificate(w.certs["payer"]).serial_number
    key = w.key["bank"]
    forged = pki.build_crl(w.key["rogue"], bank, [(payer_serial, TIME - 100)], 9, TIME - 50)
    return {
        "crl_revoking_payer": pki.der(
            pki.build_crl(key, bank, [(payer_serial, TIME - 100)], 2, TIME - 50)
        ),
        "crl_stale_revoking_payer": pki.der(
            pki.build_crl(key, bank, [(payer_serial, TIME - 9 * 86400)], 1, TIME - 9 * 86400)
        ),
        "crl_revoking_other": pki.der(pki.build_crl(key, bank, [(999, TIME - 100)], 3, TIME - 50)),
        "crl_by_rogue_key": pki.der(forged),
    }


def trust_cases(w: World) -> list[dict[str, Any]]:
    """Installing trust material (section "Trust anchors")."""
    root_bank = {"root": "root", "banks": ["root"], "crls": []}
    return [
        case(w, "trust_root_and_bank", "trust", "trust_store", b"", accept()),
        case(
            w,
            "trust_bank_not_issued_by_root",
            "trust",
            "trust_store",
            b"",
            reject("UNKNOWN_ISSUER"),
            trust={"root": "root", "banks": ["payer"], "crls": []},
        ),
        case(
            w,
            "trust_root_as_bank",
            "trust",
            "trust_store",
            b"",
            reject("BAD_CERTIFICATE"),
            trust=root_bank,
        ),
        case(
            w,
            "trust_wallet_as_root",
            "trust",
            "trust_store",
            b"",
            reject("BAD_CERTIFICATE"),
            trust={"root": "payer", "banks": [], "crls": []},
        ),
        case(
            w,
            "trust_crl_by_rogue_key",
            "trust",
            "trust_store",
            b"",
            reject("UNKNOWN_ISSUER"),
            trust={"root": "root", "banks": ["bank"], "crls": ["crl_by_rogue_key"]},
        ),
        case(
            w,
            "trust_crl_of_unknown_bank",
            "trust",
            "trust_store",
            b"",
            reject("UNKNOWN_ISSUER"),
            trust={"root": "root", "banks": [], "crls": ["crl_revoking_payer"]},
        ),
    ]


def messages(w: World) -> dict[str, dict[str, Any]]:
    """One valid message of every kind, with its fields."""
    payment = w.payment()
    digest = m.digest(payment)
    kem = sealed.KemKey(sealed.KemSuite.X25519, hashlib.sha256(b"offcash vector kem").digest())
    out: dict[str, dict[str, Any]] = {}

    def put(name: str, data: bytes, fields: dict[str, Any]) -> None:
        shown = {
            k: (str(v) if isinstance(v, WalletId) else v.hex() if isinstance(v, bytes) else v)
            for k, v in fields.items()
        }
        out[name] = {"fields": shown, "encoded": data.hex(), "digest": m.digest(data).hex()}

    req = {
        "payee": PAYEE,
        "amount": AMOUNT,
        "currency": "EUR",
        "nonce": NONCE,
        "time": TIME,
        "reference": REFERENCE,
        "payee_name": "Vector Shop",
    }
    put("request", m.PaymentRequest(**req).encode(), req)
    req_min = {"payee": PAYEE, "amount": AMOUNT, "currency": "EUR", "nonce": NONCE, "time": TIME}
    put("request_minimal", m.PaymentRequest(**req_min).encode(), req_min)
    req_key = req | {"encryption_key": kem.public()}
    put("request_with_encryption_key", m.PaymentRequest(**req_key).encode(), req_key)
    pay = {
        "payee": PAYEE,
        "amount": AMOUNT,
        "currency": "EUR",
        "counter": 1,
        "time": TIME + 10,
        "nonce": NONCE,
        "reference": REFERENCE,
    }
    put("payment", payment, pay)
    one_way = pay | {"counter": 2, "nonce": None, "reference": None}
    put(
        "payment_one_way",
        w.payment(counter=2, nonce=None, reference=None),
        {k: v for k, v in one_way.items() if v is not None},
    )
    rec = {"payment": digest, "time": TIME + 20}
    put("receipt", m.sign_receipt(w.key["payee"], w.certs["payee"], **rec), rec)
    vou = {
        "wallet": PAYER,
        "amount": 5000,
        "currency": "EUR",
        "voucher_id": VOUCHER_ID,
        "time": TIME - 1000,
        "expires": TIME + 86400,
    }
    put("voucher", m.sign_voucher(w.key["bank"], w.certs["bank"], **vou), vou)
    unl = {"amount": 100, "currency": "EUR", "counter": 3, "time": TIME + 40}
    put("unload", m.sign_unload(w.key["payer"], w.certs["payer"], **unl), unl)
    # the payer's log since enrolment: the voucher, the payment, the unload
    entries = [
        log.Entry(log.EntryType.LOADED, TIME - 900, 5000, bytes.fromhex(out["voucher"]["encoded"])),
        log.Entry(log.EntryType.SENT, TIME + 10, AMOUNT, payment),
        log.Entry(log.EntryType.UNLOADED, TIME + 40, 100, bytes.fromhex(out["unload"]["encoded"])),
    ]
    head = log.GENESIS
    chain = []
    for e, message in zip(entries, ("voucher", "payment", "unload"), strict=True):
        head = log.chain(head, e)
        encoded = e.encode()
        assert encoded.endswith(e.message)
        chain.append(
            {
                # the message by its name in "messages"; the entry's encoding is the prefix
                # given here followed by the message's bytes
                "fields": {"type": int(e.type), "time": e.time, "amount": e.amount},
                "message": message,
                "encoded_prefix": encoded[: -len(e.message)].hex(),
                "head": head.hex(),
            }
        )
    out["log"] = {"base": log.GENESIS.hex(), "entries": chain}
    rep = {
        "sync_seq": 0,
        "counter": 3,
        "balance": 5000 - AMOUNT - 100,
        "currency": "EUR",
        "entries": 3,
        "log_digest": head,
        "time": TIME + 50,
    }
    put("report", m.sign_report(w.key["payer"], w.certs["payer"], **rep), rep)
    ack = {"wallet": PAYER, "sync_seq": 0, "entries": 3, "log_digest": head, "time": TIME + 60}
    put("ack", m.sign_ack(w.key["bank"], w.certs["bank"], **ack), ack)
    return out


def other_cases(w: World, msgs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Receipts, vouchers, acknowledgements, unloads, reports and requests."""
    b = {n: bytes.fromhex(v["encoded"]) for n, v in msgs.items() if "encoded" in v}
    payment = b["payment"]
    digest = m.digest(payment)
    rc = {"payment": payment}
    by_payer = m.sign_receipt(w.key["payer"], w.certs["payer"], payment=digest, time=TIME + 20)
    other_digest = m.sign_receipt(
        w.key["payee"], w.certs["payee"], payment=bytes(32), time=TIME + 20
    )
    late = m.sign_receipt(w.key["payee"], w.certs["payee"], payment=digest, time=NOT_AFTER + 1)
    vk = {"now": NOW, "wallet": PAYER, "bank": BANK_NAME}

    def voucher(**changes: Any) -> bytes:
        fields = {
            "wallet": PAYER,
            "amount": 5000,
            "currency": "EUR",
            "voucher_id": VOUCHER_ID,
            "time": TIME - 1000,
            "expires": TIME + 86400,
        } | changes
        return m.sign_voucher(w.key["bank"], w.certs["bank"], **fields)

    ak = {"wallet": PAYER, "bank": BANK_NAME}
    ack_fields = msgs["ack"]["fields"]
    ack_other = m.sign_ack(
        w.key["bank"],
        w.certs["bank"],
        **{
            **{k: (bytes.fromhex(v) if k == "log_digest" else v) for k, v in ack_fields.items()},
            "wallet": OTHER,
        },
    )
    ack_by_wallet = w.signed(
        cbor.decode(cose.decode_sign1(b["ack"]).payload), kind=cose.Kind.SYNC_ACK
    )
    unload_zero = m.sign_unload(
        w.key["payer"], w.certs["payer"], amount=0, currency="EUR", counter=3, time=TIME + 40
    )
    unload_usd = m.sign_unload(
        w.key["payer"], w.certs["payer"], amount=100, currency="USD", counter=3, time=TIME + 40
    )
    # a report made after the certificate expired is still checked (at its notAfter)
    rep_fields = {
        k: (bytes.fromhex(v) if k == "log_digest" else v)
        for k, v in msgs["report"]["fields"].items()
    }
    late_report = m.sign_report(
        w.key["payer"], w.certs["payer"], **(rep_fields | {"time": NOT_AFTER + 86400})
    )
    early_report = m.sign_report(
        w.key["payer"], w.certs["payer"], **(rep_fields | {"time": NOT_BEFORE - 1})
    )
    return [
        case(w, "receipt_accepted", "receipt", "verify_receipt", b["receipt"], accept(), **rc),
        case(
            w,
            "receipt_signed_by_another_wallet",
            "receipt",
            "verify_receipt",
            by_payer,
            reject("WRONG_PAYEE"),
            **rc,
        ),
        case(
            w,
            "receipt_for_another_payment",
            "receipt",
            "verify_receipt",
            other_digest,
            reject("NONCE_MISMATCH"),
            **rc,
        ),
        case(
            w,
            "receipt_after_the_payee_certificate_expired",
            "receipt",
            "verify_receipt",
            late,
            reject("CERT_EXPIRED"),
            **rc,
        ),
        case(
            w,
            "receipt_given_a_payment",
            "receipt",
            "verify_receipt",
            payment,
            decode_error("receipt.protected.kind"),
            **rc,
        ),
        case(w, "voucher_accepted", "voucher", "verify_voucher", b["voucher"], accept(), **vk),
        case(
            w,
            "voucher_at_its_expiry",
            "voucher",
            "verify_voucher",
            b["voucher"],
            accept(),
            **(vk | {"now": TIME + 86400}),
        ),
        case(
            w,
            "voucher_expired",
            "voucher",
            "verify_voucher",
            b["voucher"],
            reject("TOO_OLD"),
            **(vk | {"now": TIME + 86401}),
        ),
        case(
            w,
            "voucher_for_another_wallet",
            "voucher",
            "verify_voucher",
            voucher(wallet=OTHER),
            reject("WRONG_WALLET"),
            **vk,
        ),
        case(
            w,
            "voucher_from_another_bank",
            "voucher",
            "verify_voucher",
            b["voucher"],
            reject("UNKNOWN_ISSUER"),
            **(vk | {"bank": "offcash Other Bank"}),
        ),
        case(
            w,
            "voucher_in_another_currency",
            "voucher",
            "verify_voucher",
            voucher(currency="USD"),
            reject("CURRENCY_MISMATCH"),
            **vk,
        ),
        case(
            w,
            "voucher_of_zero",
            "voucher",
            "verify_voucher",
            voucher(amount=0),
            reject("NON_POSITIVE_AMOUNT"),
            **vk,
        ),
        case(
            w,
            "voucher_signed_by_a_wallet",
            "voucher",
            "verify_voucher",
            w.signed(
                cbor.decode(cose.decode_sign1(b["voucher"]).payload), kind=cose.Kind.LOAD_VOUCHER
            ),
            reject("UNKNOWN_ISSUER"),
            **vk,
        ),
        case(w, "ack_accepted", "ack", "verify_ack", b["ack"], accept(), **ak),
        case(
            w,
            "ack_for_another_wallet",
            "ack",
            "verify_ack",
            ack_other,
            reject("WRONG_WALLET"),
            **ak,
        ),
        case(
            w,
            "ack_signed_by_a_wallet",
            "ack",
            "verify_ack",
            ack_by_wallet,
            reject("UNKNOWN_ISSUER"),
            **ak,
        ),
        case(w, "unload_accepted", "unload", "verify_unload", b["unload"], accept()),
        case(
            w,
            "unload_of_zero",
            "unload",
            "verify_unload",
            unload_zero,
            reject("NON_POSITIVE_AMOUNT"),
        ),
        case(
            w,
            "unload_in_another_currency",
            "unload",
            "verify_unload",
            unload_usd,
            reject("CURRENCY_MISMATCH"),
        ),
        case(w, "report_accepted", "report", "verify_report", b["report"], accept()),
        case(
            w, "report_after_certificate_expiry", "report", "verify_report", late_report, accept()
        ),
        case(
            w,
            "report_before_not_before",
            "report",
            "verify_report",
            early_report,
            reject("CERT_NOT_YET_VALID"),
        ),
        case(w, "request_decodes", "request", "parse_request", b["request"], accept()),
        case(
            w,
            "request_with_encryption_key_decodes",
            "request",
            "parse_request",
            b["request_with_encryption_key"],
            accept(),
        ),
        case(
            w,
            "request_kind_2",
            "request",
            "parse_request",
            cbor.encode(cbor.decode(b["request"]) | {0: 2}),
            decode_error("request.kind"),
        ),
        case(
            w,
            "request_payee_name_65",
            "request",
            "parse_request",
            request_bytes(payee_name="x" * 65),
            decode_error("request.payee_name"),
        ),
        case(
            w,
            "request_encryption_key_33_bytes",
            "request",
            "parse_request",
            cbor.encode(cbor.decode(b["request"]) | {9: bytes(33)}),
            decode_error("request.encryption_key"),
        ),
        case(
            w,
            "request_null_reference",
            "request",
            "parse_request",
            cbor.encode(cbor.decode(b["request"]) | {7: None}),
            decode_error("request.reference"),
        ),
    ]


def book_sequence(w: World) -> list[dict[str, Any]]:
    """The payee's memory (section 5, ``PayeeBook``): steps run in order on one book."""
    req = request_bytes()
    good = w.payment()
    twin = w.payment(reference="twin")  # same payer and counter, other content
    again_nonce = w.payment(counter=2)  # answers the same (now paid) request
    unknown = w.payment(counter=3, nonce=bytes(16))
    one_way = w.payment(counter=4, nonce=None)
    steps: list[dict[str, Any]] = [{"op": "add_request", "request": req.hex()}]
    for data, expect in (
        (good, accept()),
        (good, {"outcome": "duplicate"}),
        (twin, reject("DOUBLE_SPEND")),
        (again_nonce, reject("NONCE_USED")),
        (unknown, reject("UNKNOWN_NONCE")),
        (one_way, accept()),
        (one_way, {"outcome": "duplicate"}),
    ):
        steps.append(
            {
                "op": "receive",
                "payment": data.hex(),
                "payee": str(PAYEE),
                "now": NOW,
                "expect": expect,
            }
        )
    return steps


def eviction_sequence(w: World) -> list[dict[str, Any]]:
    """At most 32 outstanding requests: the 33rd evicts the oldest, whose payment is then
    answered ``UNKNOWN_NONCE``."""
    steps: list[dict[str, Any]] = []
    for i in range(33):
        steps.append({"op": "add_request", "request": request_bytes(nonce=bytes([i]) * 16).hex()})
    for i, expect in ((0, reject("UNKNOWN_NONCE")), (1, accept())):
        data = w.payment(nonce=bytes([i]) * 16, counter=10 + i)
        steps.append(
            {
                "op": "receive",
                "payment": data.hex(),
                "payee": str(PAYEE),
                "now": NOW,
                "expect": expect,
            }
        )
    return steps


# --- checking a case against the code ------------------------------------------------------------


def _params(net: dict[str, Any]) -> NetworkParams:
    legacy = net.get("legacy")
    return NetworkParams(
        net["currency"],
        SignatureAlgorithm.from_name(net["algorithm"]),
        net["max_payment_age"],
        net["clock_skew"],
        None if legacy is None else SignatureAlgorithm.from_name(legacy),
        net.get("legacy_until", 0),
    )


def _trust(vector: dict[str, Any], names: dict[str, Any]) -> TrustStore:
    der = {**vector["certificates"], **vector["crls"]}
    return TrustStore.create(
        bytes.fromhex(der[names["root"]]),
        [bytes.fromhex(der[n]) for n in names["banks"]],
        [bytes.fromhex(der[n]) for n in names["crls"]],
    )


def _opt(value: str | None, convert: Callable[[bytes], Any] = lambda b: b) -> Any:
    return None if value is None else convert(bytes.fromhex(value))


def _run(c: dict[str, Any], vector: dict[str, Any]) -> Any:
    if "input_zeros" in c:
        data = bytes(c["input_zeros"])
    elif "input_message" in c:
        data = bytes.fromhex(vector["messages"][c["input_message"]]["encoded"])
    else:
        data = bytes.fromhex(c["input"])
    params = _params(c["network"])
    fn = c["function"]
    if fn == "parse_request":
        return m.parse_request(data)
    trust = _trust(vector, c["trust"])
    if fn == "trust_store":
        return trust
    if fn == "verify_payment":
        return verify_payment(
            data,
            trust=trust,
            params=params,
            now=c["now"],
            payee=None if c["payee"] is None else WalletId.parse(c["payee"]),
            request=_opt(c["request"], m.parse_request),
        )
    if fn == "verify_receipt":
        payment = m.parse_payment(bytes.fromhex(c["payment"]))
        return verify_receipt(data, trust=trust, params=params, payment=payment)
    if fn == "verify_voucher":
        wallet = WalletId.parse(c["wallet"])
        return verify_voucher(
            data, trust=trust, params=params, wallet=wallet, bank=c["bank"], now=c["now"]
        )
    if fn == "verify_ack":
        wallet = WalletId.parse(c["wallet"])
        return verify_ack(data, trust=trust, params=params, wallet=wallet, bank=c["bank"])
    if fn == "verify_unload":
        return verify_unload(data, trust=trust, params=params)
    if fn == "verify_report":
        return verify_report(data, trust=trust, params=params)
    raise ValueError(f"unknown function {fn}")


def outcome(run: Callable[[], Any]) -> dict[str, str]:
    """What the code does: accept, a rejection or a decode error."""
    try:
        run()
    except VerificationError as exc:
        return reject(exc.rejection.name)
    except DecodeError as exc:
        return decode_error(exc.path)
    return accept()


def check_case(c: dict[str, Any], vector: dict[str, Any]) -> dict[str, str]:
    """The outcome the code gives for case ``c`` of ``vector`` (compare with ``c["expect"]``)."""
    return outcome(lambda: _run(c, vector))


def run_sequence(steps: list[dict[str, Any]], vector: dict[str, Any]) -> list[dict[str, str]]:
    """The outcome of every ``receive`` step of a payee-memory sequence."""
    trust = _trust(vector, {"root": "root", "banks": ["bank"], "crls": []})
    params = _params(vector["network"])
    book = PayeeBook()
    results = []
    for step in steps:
        if step["op"] == "add_request":
            raw = bytes.fromhex(step["request"])
            book.add_request(m.parse_request(raw), raw)
            continue
        holder: list[Any] = []

        def receive(step: dict[str, Any] = step, holder: list[Any] = holder) -> None:
            verified, duplicate = book.verify(
                bytes.fromhex(step["payment"]),
                trust=trust,
                params=params,
                payee=WalletId.parse(step["payee"]),
                now=step["now"],
            )
            holder.append(duplicate)
            if not duplicate:
                book.record(verified, step["now"])

        result = outcome(receive)
        if holder and holder[0]:
            result = {"outcome": "duplicate"}
        results.append(result)
    return results


def build_cases(
    alg: SignatureAlgorithm, key_for: KeyFor, certs: dict[str, bytes]
) -> dict[str, Any]:
    """The ``cases-<alg>.json`` vector; ``certs`` holds root, bank, payer and payee. Every
    algorithm gets every case: the rules, the certificate profile and the decode errors."""
    w = World(alg, key_for, dict(certs))
    msgs = messages(w)
    cases = payment_cases(w) + other_cases(w, msgs)
    revocations = crls(w)
    by_hex = {v["encoded"]: n for n, v in msgs.items() if "encoded" in v}
    for c in cases:
        if c.get("input") in by_hex:  # a message of "messages", by name
            c["input_message"] = by_hex[c.pop("input")]
    vector: dict[str, Any] = {
        "description": f"offcash v1 conformance cases, {alg.short}; docs/PROTOCOL.md section 10",
        "algorithm": alg.short,
        "network": network_of(w.params),
        "keys": {n: _private_hex(k) for n, k in w.key.items()},
        "wallets": {"payer": str(PAYER), "payee": str(PAYEE), "other": str(OTHER)},
        "bank_name": BANK_NAME,
        "certificates": {k: v.hex() for k, v in w.certs.items()},
        "crls": {k: v.hex() for k, v in revocations.items()},
        "messages": msgs,
        "cases": cases + trust_cases(w),
        "payee_memory": {"sequence": book_sequence(w), "eviction": eviction_sequence(w)},
    }
    _check(vector)
    return vector


def _check(vector: dict[str, Any]) -> None:
    wrong = [
        (c["name"], c["expect"], got)
        for c in vector["cases"]
        if (got := check_case(c, vector)) != c["expect"]
    ]
    for label, steps in vector["payee_memory"].items():
        expected = [s["expect"] for s in steps if s["op"] == "receive"]
        got = run_sequence(steps, vector)
        if got != expected:
            wrong.append((label, expected, got))
    if wrong:
        raise AssertionError("the code disagrees with these cases:\n" + "\n".join(map(str, wrong)))


def _private_hex(key: PrivateKey) -> str:
    from cryptography.hazmat.primitives import serialization

    if isinstance(key, ec.EllipticCurvePrivateKey):
        return f"{key.private_numbers().private_value:064x}"
    return key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    ).hex()


# --- transports and sealed payments --------------------------------------------------------------


def _transport_outcome(run: Callable[[], bytes]) -> dict[str, str]:
    try:
        return {"outcome": "accept", "message": run().hex()}
    except TransportError as exc:
        return {"outcome": "error", "error": type(exc).__name__}


def build_transports(small: bytes, large: bytes) -> dict[str, Any]:
    """Text and QR forms of ``small`` (an Ed25519 payment) and the frame layout of ``large``
    (an ML-DSA-44 payment), with reader cases."""
    b45 = text.encode_text(small, "base45")
    b64 = text.encode_text(small, "base64url")
    body45, body64 = b45[4:], b64[7:]
    text_cases = [
        ("base45", b45, "accept"),
        ("base64url", b64, "accept"),
        (
            "base45_surrounding_whitespace_and_line_breaks",
            f" \n{b45[:40]}\n{b45[40:80]}\r\n\t{b45[80:]} \n",
            "accept",
        ),
        (
            "base64url_wrapped_with_spaces",
            f"OC1B64:{body64[:30]} {body64[30:60]}\n  {body64[60:]}",
            "accept",
        ),
        ("base45_inner_space_removed_is_other_bytes", "OC1:" + body45.replace(" ", "", 1), "any"),
        ("lowercase_prefix", "oc1:" + body45, "TextFormError"),
        ("base45_lowercase_body", "OC1:" + body45.lower(), "TextFormError"),
        (
            "base45_truncated_to_impossible_length",
            "OC1:" + body45[:-2] if len(body45) % 3 == 0 else "OC1:" + body45[:-1],
            "TextFormError",
        ),
        ("base45_group_over_65535", "OC1:GGW", "TextFormError"),
        ("base64url_padding", b64 + "=" * (-len(body64) % 4 or 4), "TextFormError"),
        ("base64url_non_canonical_trailing_bits", "OC1B64:AB", "TextFormError"),
        ("empty_body", "OC1:", "TextFormError"),
        ("byte_order_mark", "\ufeff" + b45, "accept"),
    ]
    texts = []
    for label, value, expect in text_cases:
        got = _transport_outcome(lambda value=value: text.decode_text(value))
        if expect == "accept":
            assert got == {"outcome": "accept", "message": small.hex()}, label
        elif expect != "any":
            assert got == {"outcome": "error", "error": expect}, (label, got)
            texts.append({"name": label, "text": value, "expect": got})
            continue
        else:
            continue
        texts.append({"name": label, "text": value, "expect": {"outcome": "accept"}})
    one = qr.encode_frames(small)
    five = qr.encode_frames(small, budget=100)
    frames = {
        "message": small.hex(),
        "default_budget": {"budget": qr.FRAME_BUDGET, "frames": [f.hex() for f in one]},
        "budget_100": {"budget": 100, "frames": [f.hex() for f in five]},
    }
    big = qr.encode_frames(large)
    frames["ml_dsa_44_payment_layout"] = {
        "message_size": len(large),
        "message_sha256": hashlib.sha256(large).hexdigest(),
        "budget": qr.FRAME_BUDGET,
        "headers": [f[: qr.HEADER_SIZE].hex() for f in big],
        "chunk_sizes": [len(f) - qr.HEADER_SIZE for f in big],
    }
    bad_magic = b"XC" + five[0][2:]
    other = qr.encode_frames(small[:-1] + bytes([small[-1] ^ 1]), budget=100)
    conflicting = five[1][:-1] + bytes([five[1][-1] ^ 1])
    corrupt = [*five[:2], conflicting, *five[3:]] if len(five) > 2 else five
    corrupt = [five[0], five[1][:-1] + bytes([five[1][-1] ^ 1]), *five[2:]]
    frame_cases = [
        ("in_order", five, "accept"),
        ("reversed_with_repeats", [*reversed(five), five[0], five[2]], "accept"),
        ("missing_frame_2", [f for i, f in enumerate(five) if i != 1], "MissingFrames"),
        ("bad_magic", [bad_magic, *five[1:]], "MalformedFrame"),
        ("version_2", [five[0][:2] + b"\x02" + five[0][3:], *five[1:]], "MalformedFrame"),
        ("number_0", [five[0][:3] + b"\x00" + five[0][4:], *five[1:]], "MalformedFrame"),
        ("number_over_total", [five[0][:3] + b"\x09" + five[0][4:], *five[1:]], "MalformedFrame"),
        ("header_only", [five[0][: qr.HEADER_SIZE], *five[1:]], "MalformedFrame"),
        ("frames_of_two_messages", [five[0], *other[1:]], "MixedFrames"),
        ("conflicting_frame", [*five, conflicting], "ConflictingFrames"),
        ("chunk_altered", corrupt, "CorruptMessage"),
        ("no_frames", [], "NoFrames"),
    ]
    frame_vectors = []
    for label, fs, expect in frame_cases:
        got = _transport_outcome(lambda fs=fs: qr.decode_frames(fs))
        want = (
            {"outcome": "accept", "message": small.hex()}
            if expect == "accept"
            else {"outcome": "error", "error": expect}
        )
        assert got == want, (label, got)
        frame_vectors.append(
            {
                "name": label,
                "frames": [f.hex() for f in fs],
                "expect": {"outcome": "accept"} if expect == "accept" else want,
            }
        )
    return {
        "description": "offcash v1 transport forms (docs/TRANSPORTS.md)",
        "message": small.hex(),
        "text": {"base45": b45, "base64url": b64, "cases": texts},
        "qr": frames | {"cases": frame_vectors},
    }


def build_sealed(plaintext: bytes, kem_payee: Callable[[bytes], dict[str, str]]) -> dict[str, Any]:
    """Sealed payments of both suites: the recipient's secret, the sealed bytes, the plaintext
    (HPKE encryption is randomized: the reader checks that the bytes open to the plaintext),
    the size the plaintext is padded to, and for one-way payments the payee's CSR carrying the
    recipient's public key and the certificate binding its SHA-256 (``kem_payee``: under the
    Ed25519 vector root and bank), with the directory keys a payer seals for or refuses. The
    padding cases are sealed here from padded plaintexts built by hand (``_seal_padded``),
    the right one included, which must equal what ``sealed.seal`` pads."""
    out: dict[str, Any] = {
        "description": "offcash v1 sealed payments (docs/PROTOCOL.md section 9)",
        "plaintext": plaintext.hex(),
        "encryption_key_oid": pki.ENCRYPTION_KEY_OID.dotted_string,
        "encryption_key_digest_oid": pki.ENCRYPTION_KEY_DIGEST_OID.dotted_string,
        "suites": {},
    }
    for suite in sealed.KemSuite:
        secret = hashlib.sha512(f"offcash vector kem {suite.short}".encode()).digest()
        size = 32 if suite is sealed.KemSuite.X25519 else 96
        secret = (secret + hashlib.sha512(secret).digest())[:size]
        key = sealed.KemKey(suite, secret)
        other = sealed.KemKey(suite, bytes(reversed(secret)))
        box = sealed.seal(plaintext, key.public())
        assert key.open(box) == plaintext
        block = _SEALED_BLOCK[suite]
        head = 1 + 3 + len(plaintext) + 3  # [ bstr(payment) bstr(padding) ], 3-byte heads
        padded = cbor.encode([plaintext, bytes(block - head)])
        assert len(padded) == block and len(cbor.decode(box).value[2]) == block + 16
        wrong = cbor.encode([plaintext, bytes(block - head - 1) + b"\x01"])
        padding_cases = [
            ("padded_by_hand", padded, {"outcome": "accept"}),
            ("padding_not_zero", wrong, _decode_error("sealed.plaintext.padding")),
            (
                "padded_to_the_next_size",
                cbor.encode([plaintext, bytes(_SEALED_NEXT[suite] - head)]),
                _decode_error("sealed.plaintext.padding"),
            ),
            (
                "trailing_byte_after_the_padding",
                cbor.encode([plaintext, bytes(block - head - 1)]) + b"\x00",
                _decode_error("sealed.plaintext"),
            ),
            ("not_padded", plaintext, _decode_error("sealed.ciphertext")),
        ]
        tag, body = cbor.decode(box).tag, cbor.decode(box).value
        altered = bytearray(box)
        altered[-1] ^= 1
        header_changed = cbor.encode(
            cbor2.CBORTag(
                tag,
                [
                    cbor.encode({1: 41 if suite is not sealed.KemSuite.X25519 else -65600}),
                    body[1],
                    body[2],
                ],
            )
        )
        cases = [
            ("opens", box, {"outcome": "accept"}),
            ("ciphertext_altered", bytes(altered), {"outcome": "error", "error": "CannotDecrypt"}),
            (
                "another_recipient",
                sealed.seal(plaintext, other.public()),
                {"outcome": "error", "error": "CannotDecrypt"},
            ),
            (
                "protected_header_of_the_other_suite",
                header_changed,
                {"outcome": "decode_error", "path": "sealed.unprotected.ek"},
            ),
            (
                "unknown_alg",
                cbor.encode(cbor2.CBORTag(tag, [cbor.encode({1: 99}), body[1], body[2]])),
                {"outcome": "decode_error", "path": "sealed.protected.alg"},
            ),
            (
                "kid_in_unprotected",
                cbor.encode(cbor2.CBORTag(tag, [body[0], body[1] | {4: b"payee"}, body[2]])),
                {"outcome": "decode_error", "path": "sealed.unprotected"},
            ),
            (
                "ek_label_not_an_integer",  # -4.0 (a float64 key): equal to -4 in Python only
                cbor2.dumps(cbor2.CBORTag(tag, [body[0], {-4.0: body[1][-4]}, body[2]])),
                {"outcome": "decode_error", "path": "sealed"},  # offcash CBOR has no floats
            ),
            (
                "tag_18",
                cbor.encode(cbor2.CBORTag(18, body)),
                {"outcome": "decode_error", "path": "sealed"},
            ),
        ] + [(name, _seal_padded(data, key), expect) for name, data, expect in padding_cases]
        checked = []
        for label, data, expect in cases:
            got = sealed_outcome(key, data, plaintext)
            assert got == expect, (suite, label, got)
            checked.append({"name": label, "sealed": data.hex(), "expect": expect})
        out["suites"][suite.short] = {
            "cose_alg": suite.cose_id,
            "padded_size": block,
            "recipient_secret": secret.hex(),
            "recipient_public": key.public().hex(),
            "recipient_public_digest": pki.key_digest(key.public()).hex(),
            **kem_payee(key.public()),
            "directory_keys": _directory_keys(key.public(), other.public()),
            "cases": checked,
        }
    return out


def _directory_keys(certified: bytes, other: bytes) -> list[dict[str, Any]]:
    """The keys a one-way payer may find in its payee directory beside the payee's
    certificate (which binds ``certified``'s digest): it seals for the certified key only, and
    refuses the others (docs/PROTOCOL.md section 4, one-way mode)."""
    altered = certified[:-1] + bytes([certified[-1] ^ 1])
    cases = [
        ("certified", certified, {"outcome": "accept"}),
        ("another_recipients_key", other, {"outcome": "refuse"}),
        ("last_byte_altered", altered, {"outcome": "refuse"}),
        ("truncated", certified[:-1], {"outcome": "refuse"}),
    ]
    digest = pki.key_digest(certified)
    out = []
    for name, key, expect in cases:
        assert (pki.key_digest(key) == digest) == (expect["outcome"] == "accept"), name
        out.append({"name": name, "key": key.hex(), "expect": expect})
    return out


#: The padded plaintext's smallest and next sizes per suite (docs/PROTOCOL.md section 9).
_SEALED_BLOCK = {sealed.KemSuite.X25519: 1_938, sealed.KemSuite.MLKEM768_X25519: 1_846}
_SEALED_NEXT = {sealed.KemSuite.X25519: 8_938, sealed.KemSuite.MLKEM768_X25519: 7_846}


def _decode_error(path: str) -> dict[str, str]:
    return {"outcome": "decode_error", "path": path}


def _seal_padded(padded: bytes, key: sealed.KemKey) -> bytes:
    """``padded`` sealed for ``key`` as the exact HPKE plaintext, the COSE_Encrypt0 and its
    Enc_structure (as HPKE info) built here."""
    protected = cbor.encode({1: key.suite.cose_id})
    info = cbor.encode(["Encrypt0", protected, b""])
    public = sealed._public_key(key.suite, key.public())
    out = key.suite.hpke().encrypt(padded, public, info=info)
    ek, ciphertext = out[: key.suite.ek_size], out[key.suite.ek_size :]
    return cbor.encode(cbor2.CBORTag(16, [protected, {-4: ek}, ciphertext]))


def sealed_outcome(key: sealed.KemKey, data: bytes, plaintext: bytes) -> dict[str, str]:
    """What opening ``data`` with ``key`` gives."""
    try:
        opened = key.open(data)
    except CannotDecrypt:
        return {"outcome": "error", "error": "CannotDecrypt"}
    except DecodeError as exc:
        return {"outcome": "decode_error", "path": exc.path}
    return {"outcome": "accept"} if opened == plaintext else {"outcome": "wrong_plaintext"}


_ = (OffcashError, Rejection)
