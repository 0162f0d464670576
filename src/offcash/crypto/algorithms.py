"""Signature algorithms as a network parameter (crypto agility).

Theory of operation: a network picks one ``SignatureAlgorithm``: ECDSA P-256 by default (what
secure elements implement), Ed25519, or the post-quantum ML-DSA-44 and ML-DSA-65 (FIPS 204,
pure mode with an empty context; COSE identifiers from RFC 9964, X.509 from RFC 9881). This is
the primitive layer: generate a key, sign bytes, verify bytes. Signatures are in COSE form
(ECDSA as the fixed-size ``r || s``, RFC 9053 section 2.1), and nothing above this module
assumes a key or signature size.
"""

from __future__ import annotations

import enum

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

PrivateKey = (
    ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | mldsa.MLDSA44PrivateKey
    | mldsa.MLDSA65PrivateKey
)
PublicKey = (
    ec.EllipticCurvePublicKey
    | ed25519.Ed25519PublicKey
    | mldsa.MLDSA44PublicKey
    | mldsa.MLDSA65PublicKey
)

_P256_COORD = 32


def spki(key: PublicKey) -> bytes:
    """A public key as DER SubjectPublicKeyInfo (to compare keys by value)."""
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


class SignatureAlgorithm(enum.Enum):
    """A signature algorithm: its short name, its COSE algorithm identifier and the size of
    its signatures."""

    P256 = ("p256", -7, 64)  # ES256 (RFC 9053)
    ED25519 = ("ed25519", -8, 64)  # EdDSA with Ed25519 (RFC 9053)
    ML_DSA_44 = ("ml-dsa-44", -48, 2420)  # ML-DSA-44 (FIPS 204; RFC 9964)
    ML_DSA_65 = ("ml-dsa-65", -49, 3309)  # ML-DSA-65 (FIPS 204; RFC 9964)

    def __init__(self, short: str, cose_id: int, signature_size: int) -> None:
        self.short = short
        self.cose_id = cose_id
        #: The exact size of a signature in COSE form, in bytes.
        self.signature_size = signature_size

    @classmethod
    def from_name(cls, name: str) -> SignatureAlgorithm:
        """The algorithm with this short name (``p256``, ``ed25519``, ``ml-dsa-44``,
        ``ml-dsa-65``)."""
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
        if self is SignatureAlgorithm.ML_DSA_44:
            return mldsa.MLDSA44PrivateKey.generate()
        if self is SignatureAlgorithm.ML_DSA_65:
            return mldsa.MLDSA65PrivateKey.generate()
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
    elif isinstance(key, mldsa.MLDSA44PrivateKey | mldsa.MLDSA44PublicKey):
        return SignatureAlgorithm.ML_DSA_44
    elif isinstance(key, mldsa.MLDSA65PrivateKey | mldsa.MLDSA65PublicKey):
        return SignatureAlgorithm.ML_DSA_65
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
