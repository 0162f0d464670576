"""Challenge-response: a card proves it holds a wallet's certified key, before it gets the PIN.

Theory of operation: the host sends a fresh random challenge of ``CHALLENGE_SIZE`` bytes
(INTERNAL AUTHENTICATE, docs/APDU.md); the card signs ``CONTEXT || challenge`` with its
wallet key and the host checks the signature under the key of the wallet certificate it
expects (``certificate_key``). A new challenge each time: an answer recorded once is worth
nothing for the next challenge.

The signed bytes can never be another offcash message, so the answer is no signing oracle:
every COSE_Sign1 signature (payments, receipts, requests, reports...) covers a
``Sig_structure``, which starts ``84 6A "Signature1"``; an X.509 certificate, CRL or CSR
signature covers a DER SEQUENCE (``30``); the key-rollover handover covers
``"offcash key rollover v1\\0" || SPKI`` (``offcash.crypto.pki.ROLLOVER_CONTEXT``). ``CONTEXT``
starts with none of these and neither NUL-terminated context is a prefix of the other; the
signer refuses a challenge of any other length, so it signs exactly 63 bytes of that form.
"""

from __future__ import annotations

from cryptography import x509

from offcash.crypto.algorithms import PrivateKey, PublicKey, algorithm_of, sign, verify
from offcash.errors import DecodeError

#: What the card signs before the host's challenge (domain separation, see above).
CONTEXT = b"offcash card authentication v1\x00"
#: The challenge's size in bytes: 256 random bits, never repeated in practice.
CHALLENGE_SIZE = 32


def signed_bytes(challenge: bytes) -> bytes:
    """The bytes signed for ``challenge``; ``ValueError`` if it is not ``CHALLENGE_SIZE``
    bytes."""
    if type(challenge) is not bytes or len(challenge) != CHALLENGE_SIZE:
        raise ValueError(f"a challenge is {CHALLENGE_SIZE} bytes")
    return CONTEXT + challenge


def sign_challenge(key: PrivateKey, challenge: bytes) -> bytes:
    """``key``'s answer to ``challenge`` (a signature of ``CONTEXT || challenge``)."""
    return sign(key, signed_bytes(challenge))


def verify_challenge(key: PublicKey, challenge: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is ``key``'s answer to ``challenge``."""
    return verify(key, signature, signed_bytes(challenge))


def certificate_key(certificate: bytes) -> PublicKey:
    """The public key of a wallet certificate (DER); ``DecodeError`` if it is not a
    certificate holding a key of an offcash algorithm. Its validity is not checked: the
    caller got the certificate from where it keeps its own wallets' certificates."""
    try:
        key = x509.load_der_x509_certificate(certificate).public_key()
        algorithm_of(key)  # type: ignore[arg-type]
    except (ValueError, TypeError) as exc:
        raise DecodeError("certificate", f"no wallet certificate: {exc}") from None
    return key  # type: ignore[return-value]
