"""Signers: anything that signs bytes under a CA key, whether the key is in memory or in an HSM.

Theory of operation: the issuing side (``offcash.issuance``, ``offcash.crypto.pki``, the COSE
envelopes of vouchers and acknowledgements) only needs three things of a CA key: its algorithm,
its public key and a ``sign(data)`` that returns the signature in COSE form (ECDSA P-256 as the
fixed-size low-S ``r || s`` over SHA-256 of ``data``; Ed25519 as its 64 bytes). ``Signer`` is
that interface; ``KeySigner`` implements it over a ``cryptography`` private key held in memory,
``offcash.crypto.hsm.HsmSigner`` over a key that never leaves a PKCS#11 token. Every function
that signs accepts either a raw private key (as before) or a ``Signer`` (``as_signer``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa

from offcash.crypto import algorithms
from offcash.crypto.algorithms import PrivateKey, PublicKey, SignatureAlgorithm


@runtime_checkable
class Signer(Protocol):
    """A signing key, wherever it lives."""

    @property
    def algorithm(self) -> SignatureAlgorithm:
        """The key's signature algorithm."""
        ...

    def public_key(self) -> PublicKey:
        """The key's public half."""
        ...

    def sign(self, data: bytes) -> bytes:
        """The signature over ``data`` in COSE form (see the module docstring)."""
        ...


@runtime_checkable
class KeyMaker(Protocol):
    """A signer that can make a sibling key in the same keystore (an HSM token does)."""

    def new_key(self, label: str) -> Signer:
        """A new key of the same algorithm, labelled ``label``, in the same keystore."""
        ...


@dataclass(frozen=True)
class KeySigner:
    """A ``Signer`` over a private key held in memory."""

    key: PrivateKey

    @property
    def algorithm(self) -> SignatureAlgorithm:
        """The key's signature algorithm."""
        return algorithms.algorithm_of(self.key)

    def public_key(self) -> PublicKey:
        """The key's public half."""
        return self.key.public_key()

    def sign(self, data: bytes) -> bytes:
        """``algorithms.sign`` with this key."""
        return algorithms.sign(self.key, data)


#: The in-memory private key types (``algorithms.PrivateKey``), for ``isinstance``.
_RAW_KEYS = (
    ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | mldsa.MLDSA44PrivateKey
    | mldsa.MLDSA65PrivateKey
)


def as_signer(key: PrivateKey | Signer) -> Signer:
    """``key`` as a ``Signer`` (a raw private key is wrapped in a ``KeySigner``)."""
    if isinstance(key, _RAW_KEYS):
        return KeySigner(key)
    return key


def new_sibling(key: PrivateKey | Signer, label: str) -> PrivateKey | Signer:
    """A new key of ``key``'s algorithm in the same keystore: a token key for a token key, an
    in-memory key otherwise."""
    if isinstance(key, _RAW_KEYS | KeySigner):
        return algorithms.algorithm_of(
            key if not isinstance(key, KeySigner) else key.key
        ).generate()
    if isinstance(key, KeyMaker):
        return key.new_key(label)
    raise TypeError(f"{type(key).__name__} cannot make a sibling key")


#: What the issuing functions accept: a raw private key or any ``Signer``.
SigningKey = PrivateKey | Signer
