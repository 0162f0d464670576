"""The primitive layer: signature algorithms as a network parameter."""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from offcash.crypto.algorithms import (
    P256_ORDER,
    SignatureAlgorithm,
    algorithm_of,
    is_canonical,
    sign,
    verify,
)


@pytest.mark.parametrize("alg", list(SignatureAlgorithm), ids=lambda a: a.short)
def test_sign_and_verify(alg: SignatureAlgorithm) -> None:
    key = alg.generate()
    assert algorithm_of(key) is alg and algorithm_of(key.public_key()) is alg
    sig = sign(key, b"data")
    assert len(sig) == 64  # P-256 r||s and Ed25519 both 64 bytes; nothing above assumes it
    assert verify(key.public_key(), sig, b"data")
    assert not verify(key.public_key(), sig, b"other")
    assert not verify(key.public_key(), sig[:-1], b"data")
    assert not verify(key.public_key(), sig + b"\x00", b"data")
    assert not verify(key.public_key(), bytes(64), b"data")
    assert not verify(alg.generate().public_key(), sig, b"data")
    assert SignatureAlgorithm.from_name(alg.short) is alg
    assert SignatureAlgorithm.from_cose(alg.cose_id) is alg


def test_names_and_identifiers() -> None:
    assert (SignatureAlgorithm.P256.cose_id, SignatureAlgorithm.ED25519.cose_id) == (-7, -8)
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


# --- canonical signatures (issue 9, finding 1: malleability) -------------------------------

#: The order of the Ed25519 group (RFC 8032), written out here rather than imported.
ED25519_L = 2**252 + 27742317777372353535851937790883648493


def _high_s_twin(sig: bytes) -> bytes:
    """``(r, n - s)``: the other valid ECDSA signature over the same data (anyone can make it)."""
    r, s = sig[:32], int.from_bytes(sig[32:], "big")
    return r + (P256_ORDER - s).to_bytes(32, "big")


def test_p256_signatures_are_low_s_and_the_high_s_twin_is_refused() -> None:
    key = SignatureAlgorithm.P256.generate()
    for i in range(40):  # a random signature has a high s half the time: each is normalized
        data = b"data %d" % i
        sig = sign(key, data)
        assert int.from_bytes(sig[32:], "big") <= P256_ORDER // 2
        assert is_canonical(SignatureAlgorithm.P256, sig)
        twin = _high_s_twin(sig)
        # the twin is a real signature: the library's own ECDSA check (not ours) accepts it
        r, s = int.from_bytes(twin[:32], "big"), int.from_bytes(twin[32:], "big")
        key.public_key().verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
        assert not is_canonical(SignatureAlgorithm.P256, twin)
        assert not verify(key.public_key(), twin, data)
        assert verify(key.public_key(), sig, data)


def test_ed25519_s_plus_l_twin_is_refused() -> None:
    """An Ed25519 signature is ``R || S`` with ``S`` little-endian; ``S + L`` satisfies the
    verification equation too, and only the ``S < L`` check (RFC 8032 5.1.7) refuses it."""
    key = SignatureAlgorithm.ED25519.generate()
    sig = sign(key, b"data")
    s = int.from_bytes(sig[32:], "little")
    twin = sig[:32] + (s + ED25519_L).to_bytes(32, "little")
    assert twin != sig and verify(key.public_key(), sig, b"data")
    assert not verify(key.public_key(), twin, b"data")
    with pytest.raises(InvalidSignature):  # cryptography itself refuses it, not our code
        key.public_key().verify(twin, b"data")
