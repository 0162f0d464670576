"""The primitive layer: signature algorithms as a network parameter."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from offcash.crypto.algorithms import SignatureAlgorithm, algorithm_of, sign, verify


@pytest.mark.parametrize("alg", list(SignatureAlgorithm), ids=lambda a: a.short)
def test_sign_and_verify(alg: SignatureAlgorithm) -> None:
    key = alg.generate()
    assert algorithm_of(key) is alg and algorithm_of(key.public_key()) is alg
    sig = sign(key, b"data")
    assert len(sig) == alg.signature_size
    assert verify(key.public_key(), sig, b"data")
    assert not verify(key.public_key(), sig, b"other")
    assert not verify(key.public_key(), sig[:-1], b"data")
    assert not verify(key.public_key(), sig + b"\x00", b"data")
    assert not verify(key.public_key(), bytes(alg.signature_size), b"data")
    assert not verify(alg.generate().public_key(), sig, b"data")
    assert SignatureAlgorithm.from_name(alg.short) is alg
    assert SignatureAlgorithm.from_cose(alg.cose_id) is alg


def test_names_and_identifiers() -> None:
    assert [a.cose_id for a in SignatureAlgorithm] == [-7, -8, -48, -49]  # RFC 9053, RFC 9964
    assert [a.signature_size for a in SignatureAlgorithm] == [64, 64, 2420, 3309]  # FIPS 204
    assert SignatureAlgorithm.from_cose(-35) is None
    with pytest.raises(ValueError, match="unknown signature algorithm"):
        SignatureAlgorithm.from_name("rsa")


def test_unsupported_keys() -> None:
    for key in (
        ec.generate_private_key(ec.SECP384R1()),
        rsa.generate_private_key(public_exponent=65537, key_size=1024),
    ):
        with pytest.raises(ValueError, match="unsupported key"):
            algorithm_of(key)  # type: ignore[arg-type]


def test_high_s_and_out_of_range_ecdsa_refused() -> None:
    key = SignatureAlgorithm.P256.generate()
    sig = sign(key, b"data")
    n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    r = sig[:32]
    assert not verify(key.public_key(), r + n.to_bytes(32, "big"), b"data")
    assert not verify(key.public_key(), bytes(32) + sig[32:], b"data")
