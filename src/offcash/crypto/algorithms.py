"""Signature algorithms as a network parameter (crypto agility).

Theory of operation: a network picks one ``SignatureAlgorithm`` (ECDSA P-256 by default, what
secure elements implement; or Ed25519). This is
the primitive layer: generate a key, sign bytes, verify bytes. Signatures are in COSE form
(ECDSA as the fixed-size ``r || s``, RFC 9053 section 2.1), and nothing above this module
assumes a key or signature size. Signatures are canonical: an ECDSA signature ``(r, s)`` has a
twin ``(r, n - s)`` that verifies too, so ``sign`` always gives the low form (``s <= n/2``) and
``verify`` refuses the high one; ``is_canonical`` lets a verifier name that refusal. Ed25519
needs no such rule: ``cryptography`` (OpenSSL) refuses ``S >= L``, the only twin an outsider can
make (tests/crypto/test_algorithms.py checks it). ML-DSA (FIPS 204) is the next member:
``cryptography`` signs with ML-DSA keys but cannot yet put them in X.509 certificates, which
the two-tier PKI needs.
"""

from __future__ import annotations

import enum

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

_P256_COORD = 32
#: The order n of the P-256 group, and the bound of a canonical (low) ``s``.
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_P256_HALF_ORDER = P256_ORDER // 2


def spki(key: PublicKey) -> bytes:
    """A public key as DER SubjectPublicKeyInfo (to compare keys by value)."""
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


class SignatureAlgorithm(enum.Enum):
    """A signature algorithm: its short name and its COSE algorithm identifier."""

    P256 = ("p256", -7)  # ES256 (RFC 9053)
    ED25519 = ("ed25519", -8)  # EdDSA with Ed25519 (RFC 9053)

    def __init__(self, short: str, cose_id: int) -> None:
        self.short = short
        self.cose_id = cose_id

    @classmethod
    def from_name(cls, name: str) -> SignatureAlgorithm:
        """The algorithm with this short name (``p256``, ``ed25519``)."""
        for alg in cls:
            if alg.short == name:
                return alg
        raise ValueError(
            f"unknown signature algorithm {name!r}; use one of {[a.short for a in cls]}"
        )

    @classmethod
    def from_cose(cls, cose_id: int) -> SignatureAlgorithm | None:
        """The algorithm with this COSE identifier, or None."""
        return _BY_COSE_ID.get(cose_id)

    def generate(self) -> PrivateKey:
        """A new private key for this algorithm."""
        if self is SignatureAlgorithm.P256:
            return ec.generate_private_key(ec.SECP256R1())
        return ed25519.Ed25519PrivateKey.generate()

    def x509_hash(self) -> hashes.SHA256 | None:
        """The hash to pass to ``cryptography``'s certificate and CRL builders."""
        return hashes.SHA256() if self is SignatureAlgorithm.P256 else None


_BY_COSE_ID = {alg.cose_id: alg for alg in SignatureAlgorithm}


def algorithm_of(key: PrivateKey | PublicKey) -> SignatureAlgorithm:
    """The algorithm a key belongs to; ``ValueError`` for keys offcash does not use."""
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if isinstance(key.curve, ec.SECP256R1):
            return SignatureAlgorithm.P256
    elif isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return SignatureAlgorithm.ED25519
    raise ValueError(f"unsupported key type {type(key).__name__}")


def sign(key: PrivateKey, data: bytes) -> bytes:
    """Sign ``data``; ECDSA signatures come back as COSE's fixed-size ``r || s``, with the
    canonical (low) ``s``."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        if s > _P256_HALF_ORDER:
            s = P256_ORDER - s
        return r.to_bytes(_P256_COORD, "big") + s.to_bytes(_P256_COORD, "big")
    return key.sign(data)


def is_canonical(algorithm: SignatureAlgorithm, signature: bytes) -> bool:
    """Whether ``signature`` is in the one form ``sign`` produces: for P-256, ``s <= n/2``.

    A signature that is not canonical never verifies (``verify``); a verifier asks this first
    to name the refusal. Ed25519 signatures have one form (``S < L``, which verification
    itself enforces)."""
    if algorithm is SignatureAlgorithm.P256 and len(signature) == 2 * _P256_COORD:
        return int.from_bytes(signature[_P256_COORD:], "big") <= _P256_HALF_ORDER
    return True


def verify(key: PublicKey, signature: bytes, data: bytes) -> bool:
    """Whether ``signature`` (COSE form) over ``data`` verifies under ``key``; a
    non-canonical (high-``s``) ECDSA signature does not."""
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            if len(signature) != 2 * _P256_COORD:
                return False
            r = int.from_bytes(signature[:_P256_COORD], "big")
            s = int.from_bytes(signature[_P256_COORD:], "big")
            if s > _P256_HALF_ORDER:
                return False
            key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
        else:
            key.verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True
