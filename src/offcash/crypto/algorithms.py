"""Signature algorithms as a network parameter (crypto agility).

Theory of operation: a network picks one ``SignatureAlgorithm``: ECDSA P-256 by default (what
secure elements implement), Ed25519, or the post-quantum ML-DSA-44 and ML-DSA-65 (FIPS 204,
pure mode with an empty context; COSE identifiers from RFC 9964, X.509 from RFC 9881). This is
the primitive layer: generate a key, sign bytes, verify bytes. Signatures are in COSE form
(ECDSA as the fixed-size ``r || s``, RFC 9053 section 2.1), and nothing above this module
assumes a key or signature size. Signatures are canonical: an ECDSA signature ``(r, s)`` has a
twin ``(r, n - s)`` that verifies too, so ``sign`` always gives the low form (``s <= n/2``) and
``verify`` refuses the high one; ``is_canonical`` lets a verifier name that refusal. Ed25519
needs no such rule: ``cryptography`` (OpenSSL) refuses ``S >= L``, the only twin an outsider can
make (tests/crypto/test_algorithms.py checks it). Nor does ML-DSA: FIPS 204's signature decoding
refuses every encoding but the one its signer writes (the hint positions must be strictly
increasing, the padding zero), and it is strongly unforgeable, so no second valid signature of a
message can be made without the key. In any case a message is named by what was signed, never
by its signature bytes (``offcash.protocol.messages.digest``).
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
#: The order n of the P-256 group, and the bound of a canonical (low) ``s``.
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_P256_HALF_ORDER = P256_ORDER // 2
#: One ECDSA-with-SHA-256 parameter object, shared (it holds no state).
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


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
        #: Whether it resists a quantum computer (ML-DSA), so that the network's other
        #: public-key cryptography (payment encryption) should too.
        self.post_quantum = short.startswith("ml-dsa")

    @classmethod
    def from_name(cls, name: str) -> SignatureAlgorithm:
        """The algorithm with this short name (``p256``, ``ed25519``, ``ml-dsa-44``,
        ``ml-dsa-65``)."""
        for alg in cls:
            if alg.short == name:
                return alg
        raise ValueError(
            f"unknown signature algorithm {name!r}; use one of {', '.join(a.short for a in cls)}"
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
    """Sign ``data``; ECDSA signatures come back as COSE's fixed-size ``r || s``, with the
    canonical (low) ``s``."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(data, _ECDSA_SHA256))
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
            key.verify(encode_dss_signature(r, s), data, _ECDSA_SHA256)
        else:
            key.verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True
