"""Identifiers: wallet ids and nonces.

Theory of operation: a ``WalletId`` is 12 random bytes a bank assigns at enrolment; it names a
payee on the wire and the subject of a wallet certificate. Its text form is lowercase base32
without padding (20 characters), the form shown to people and written in certificates.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass

from offcash.errors import DecodeError

WALLET_ID_BYTES = 12
NONCE_BYTES = 16

_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # RFC 4648
_BASE32_SET = frozenset(_BASE32)
#: Base32 digits to the digits ``int(text, 32)`` reads, so the text form decodes in one step.
_TO_INT_DIGITS = str.maketrans(_BASE32, "0123456789ABCDEFGHIJKLMNOPQRSTUV")
_TEXT_LENGTH = 20
#: The low bits of the last character beyond the id's 96 bits: zero in the canonical form.
_PAD_BITS = 5 * _TEXT_LENGTH - 8 * WALLET_ID_BYTES


@dataclass(frozen=True, slots=True)
class WalletId:
    """A wallet (or receive-only terminal) identity, 12 bytes."""

    raw: bytes

    def __post_init__(self) -> None:
        if type(self.raw) is not bytes or len(self.raw) != WALLET_ID_BYTES:
            raise DecodeError("wallet_id", f"must be {WALLET_ID_BYTES} bytes")

    @classmethod
    def random(cls) -> WalletId:
        """A fresh random wallet id."""
        return cls(os.urandom(WALLET_ID_BYTES))

    @classmethod
    def parse(cls, text: str) -> WalletId:
        """A wallet id from its 20-character base32 text form (either case, spaces around)."""
        cleaned = text.strip().upper() if isinstance(text, str) else ""
        if len(cleaned) != _TEXT_LENGTH or not _BASE32_SET.issuperset(cleaned):
            raise DecodeError("wallet_id", f"not a wallet id: {text!r}")
        value = int(cleaned.translate(_TO_INT_DIGITS), 32)
        if value & ((1 << _PAD_BITS) - 1):
            raise DecodeError("wallet_id", f"not a canonical wallet id: {text!r}")
        return cls((value >> _PAD_BITS).to_bytes(WALLET_ID_BYTES, "big"))

    def __str__(self) -> str:
        return base64.b32encode(self.raw).decode().rstrip("=").lower()


def new_nonce() -> bytes:
    """A fresh 16-byte random nonce."""
    return os.urandom(NONCE_BYTES)
