"""The checked-in test vectors (tests/vectors/*.json, made by scripts/make_vectors.py) are what
the code produces: byte for byte for Ed25519; for P-256 (randomized ECDSA) every encoding the
signer chooses is reproduced and the stored signatures verify."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import cwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from offcash.crypto.algorithms import SignatureAlgorithm, verify
from offcash.crypto.trust import TrustStore
from offcash.domain.network import NetworkParams
from offcash.encoding import cbor, cose
from offcash.errors import Rejection, VerificationError
from offcash.protocol import messages as m
from offcash.verification import verify_payment, verify_receipt

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "tests" / "vectors"
sys.path.insert(0, str(ROOT / "scripts"))
import make_vectors  # noqa: E402


def _load(alg: SignatureAlgorithm) -> dict[str, Any]:
    return json.loads((VECTORS / f"payment-{alg.short}.json").read_text())


def _certs(vector: dict[str, Any]) -> dict[str, bytes]:
    return {k: bytes.fromhex(v) for k, v in vector["certificates"].items()}


def _context(vector: dict[str, Any]) -> tuple[TrustStore, NetworkParams]:
    certs = _certs(vector)
    net = vector["network"]
    params = NetworkParams(
        net["currency"],
        SignatureAlgorithm.from_name(vector["algorithm"]),
        net["max_payment_age"],
        net["clock_skew"],
    )
    return TrustStore.create(certs["root"], [certs["bank"]]), params


def test_ed25519_vector_is_reproduced_byte_for_byte() -> None:
    stored = (VECTORS / "payment-ed25519.json").read_text()
    assert make_vectors.dump(make_vectors.build(SignatureAlgorithm.ED25519)) == stored


def test_p256_vector_encodings_are_reproduced() -> None:
    vector = _load(SignatureAlgorithm.P256)
    fresh = make_vectors.build(SignatureAlgorithm.P256, _certs(vector))
    assert fresh["keys"] == vector["keys"]
    assert fresh["request"] == vector["request"]
    for part in ("fields", "protected", "payload", "to_be_signed"):
        assert fresh["payment"][part] == vector["payment"][part], part
    # the payment is named by what was signed, so its digest, and the receipt's payload that
    # names it, are reproduced although the ECDSA signature is random
    assert fresh["payment"]["digest"] == vector["payment"]["digest"]
    assert fresh["receipt"]["fields"] == vector["receipt"]["fields"]
    for part in ("protected", "payload", "to_be_signed"):
        assert fresh["receipt"][part] == vector["receipt"][part], part
    stored = m.parse_payment(bytes.fromhex(vector["payment"]["encoded"]))
    assert (
        m.sign_receipt(
            make_vectors.key_for(SignatureAlgorithm.P256, "payee"),
            _certs(vector)["payee"],
            payment=stored.digest,
            time=vector["receipt"]["fields"]["time"],
        )[:-64]
        == bytes.fromhex(vector["receipt"]["encoded"])[:-64]
    )
    stored_tbs = cose.sig_structure(
        bytes.fromhex(vector["receipt"]["protected"]), bytes.fromhex(vector["receipt"]["payload"])
    )
    assert stored_tbs.hex() == vector["receipt"]["to_be_signed"]
    # the certificates hold the fixed keys
    for name in ("root", "bank", "payer", "payee"):
        public = x509.load_der_x509_certificate(_certs(vector)[name]).public_key()
        key = make_vectors.key_for(SignatureAlgorithm.P256, name)
        spki = serialization.PublicFormat.SubjectPublicKeyInfo
        assert public.public_bytes(
            serialization.Encoding.DER, spki
        ) == key.public_key().public_bytes(serialization.Encoding.DER, spki)


@pytest.mark.parametrize("alg", list(SignatureAlgorithm), ids=lambda a: a.short)
def test_vector_verifies_and_re_encodes(alg: SignatureAlgorithm) -> None:
    vector = _load(alg)
    trust, params = _context(vector)
    data = bytes.fromhex(vector["payment"]["encoded"])
    request = m.parse_request(bytes.fromhex(vector["request"]["encoded"]))
    assert request.encode().hex() == vector["request"]["encoded"]
    verified = verify_payment(
        data,
        trust=trust,
        params=params,
        now=vector["payment"]["verify_at"],
        payee=request.payee,
        request=request,
    )
    p = verified.payment
    assert str(verified.payer) == vector["payer"] and str(p.payee) == vector["payee"]
    assert (p.amount, p.counter, p.nonce.hex()) == (  # type: ignore[union-attr]
        vector["payment"]["fields"]["amount"],
        1,
        vector["payment"]["fields"]["nonce"],
    )
    env = p.envelope
    assert env.to_be_signed().hex() == vector["payment"]["to_be_signed"]
    assert env.signature.hex() == vector["payment"]["signature"]
    assert m.digest(data).hex() == vector["payment"]["digest"]
    assert (
        hashlib.sha256(bytes.fromhex(vector["payment"]["to_be_signed"])).hexdigest()
        == (vector["payment"]["digest"])
    )
    if alg is SignatureAlgorithm.P256:  # canonical: s <= n/2
        assert int(vector["payment"]["signature"][64:], 16) <= make_vectors.P256_ORDER // 2
    # decoding and re-encoding reproduces every byte
    assert cbor.encode(cbor.decode(data)) == data
    assert cbor.encode(cbor.decode(env.protected)) == env.protected
    assert cbor.encode(cbor.decode(env.payload)) == env.payload
    receipt = bytes.fromhex(vector["receipt"]["encoded"])
    assert (
        verify_receipt(receipt, trust=trust, params=params, payment=p).time
        == vector["receipt"]["fields"]["time"]
    )
    # and an independent COSE implementation agrees
    public = x509.load_der_x509_certificate(env.certificate_der).public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key = cwt.COSEKey.from_pem(pem, alg="ES256" if alg is SignatureAlgorithm.P256 else "EdDSA")
    assert cwt.COSE.new().decode(data, key) == env.payload
    assert verify(public, env.signature, env.to_be_signed())  # type: ignore[arg-type]


@pytest.mark.parametrize("alg", list(SignatureAlgorithm), ids=lambda a: a.short)
def test_negative_vectors(alg: SignatureAlgorithm) -> None:
    vector = _load(alg)
    trust, params = _context(vector)
    payee = m.parse_request(bytes.fromhex(vector["request"]["encoded"])).payee
    assert {c["name"] for c in vector["negative"]} >= {"tampered_amount", "flipped_signature_bit"}
    for case in vector["negative"]:
        with pytest.raises(VerificationError) as info:
            verify_payment(
                bytes.fromhex(case["encoded"]),
                trust=trust,
                params=params,
                now=case["verify_at"],
                payee=payee,
            )
        assert info.value.rejection is Rejection[case["rejection"]], case["name"]


def test_vector_files_are_the_only_ones() -> None:
    names = sorted(p.name for p in VECTORS.glob("*.json"))
    assert names == [
        f"payment-{a.short}.json" for a in sorted(SignatureAlgorithm, key=lambda a: a.short)
    ]
