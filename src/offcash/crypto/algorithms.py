"""Signature algorithms as a network parameter (crypto agility).

Theory of operation: a network picks one ``SignatureAlgorithm`` (ECDSA P-256 by default, what
secure elements implement; or Ed25519). This is
the primitive layer: generate a key, sign bytes, verify bytes. Signatures are in COSE form
(ECDSA as the fixed-size ``r || s``, RFC 9053 section 2.1), and nothing above this module
assumes a key or signature size. ML-DSA (FIPS 204) is the next member: ``cryptography`` signs
with ML-DSA keys but cannot yet put them in X.509 certificates, which the two-tier PKI needs.
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
    """Sign ``data``; ECDSA signatures come back as COSE's fixed-size ``r || s``."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(_P256_COORD, "big") + s.to_bytes(_P256_COORD, "big")
    return key.sign(data)


def verify(key: PublicKey, signature: bytes, data: bytes) -> bool:
    """Whether ``signature`` (COSE form) over ``data`` verifies under ``key``."""
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            if len(signature) != 2 * _P256_COORD:
                return False
            r = int.from_bytes(signature[:_P256_COORD], "big")
            s = int.from_bytes(signature[_P256_COORD:], "big")
            key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
        else:
            key.verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True
