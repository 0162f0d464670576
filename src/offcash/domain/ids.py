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
        """A wallet id from its 20-character base32 text form."""
        cleaned = text.strip().upper() if isinstance(text, str) else ""
        try:
            raw = base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
        except (ValueError, TypeError) as exc:
            raise DecodeError("wallet_id", f"not a wallet id: {text!r}") from exc
        if base64.b32encode(raw).decode().rstrip("=") != cleaned:
            raise DecodeError("wallet_id", f"not a canonical wallet id: {text!r}")
        return cls(raw)

    def __str__(self) -> str:
        return base64.b32encode(self.raw).decode().rstrip("=").lower()


def new_nonce() -> bytes:
    """A fresh 16-byte random nonce."""
    return os.urandom(NONCE_BYTES)
