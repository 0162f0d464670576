"""Argument checks for secure element operations, before anything is signed, debited or logged.

Theory of operation: a secure element is driven by a wallet app it cannot trust to pass
well-formed values (a library user may hand it a ``str`` where a ``WalletId`` belongs). Every
operation of ``SoftwareSecureElement`` checks each argument here first, so a bad one raises
``TypeError`` (wrong type: ``bool`` is not an ``int``, ``str`` is not a ``WalletId``) or
``ValueError`` (out of range: a time beyond the wire's bound, a reference longer than a payee
decodes; ``MoneyError``, itself a ``ValueError``, for an amount that is not positive) and the
state is untouched. The bounds are the wire's (``offcash.protocol.messages``), so what passes
here is what a payee's strict decoder reads; the signers decode each payload again before
signing (``messages.readable_payload``) as the last line.
"""

from __future__ import annotations

from typing import Any

from offcash.domain.ids import NONCE_BYTES, WalletId
from offcash.errors import MoneyError

#: Bounds of the wire format (``offcash.protocol.messages``): times, references, names.
MAX_TIME = 2**40
MAX_REFERENCE = 140
MAX_PAYEE_NAME = 64
#: The largest unsigned integer offcash encodes (counters).
MAX_UINT = 2**63 - 1


def _int(value: Any, name: str) -> int:
    if type(value) is not int:
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    return value


def time(value: Any, name: str = "now") -> int:
    """A device time in seconds: an ``int`` in ``0..2**40``."""
    if not 0 <= _int(value, name) <= MAX_TIME:
        raise ValueError(f"{name} {value} is out of range 0..{MAX_TIME}")
    return int(value)


def amount(value: Any) -> int:
    """An amount in minor units: a positive ``int`` (``MoneyError`` if not positive)."""
    if type(value) is not int:
        raise TypeError(
            f"amount must be an int of minor units, not {type(value).__name__} {value!r}"
        )
    if not 0 < value <= MAX_UINT:
        raise MoneyError(f"amount must be a positive integer of minor units, not {value!r}")
    return value


def counter(value: Any) -> int:
    """A counter value: a non-negative ``int``."""
    if not 0 <= _int(value, "counter") <= MAX_UINT:
        raise ValueError(f"counter {value} is out of range 0..{MAX_UINT}")
    return int(value)


def wallet_id(value: Any, name: str = "payee") -> WalletId:
    """A ``WalletId`` (not its text or bytes: parse those with ``WalletId.parse``)."""
    if type(value) is not WalletId:
        raise TypeError(f"{name} must be a WalletId, not {type(value).__name__}")
    return value


def text(value: Any, name: str, max_len: int) -> str | None:
    """An optional text of at most ``max_len`` characters."""
    if value is None:
        return None
    if type(value) is not str:
        raise TypeError(f"{name} must be a str or None, not {type(value).__name__}")
    if len(value) > max_len:
        raise ValueError(f"{name} is longer than {max_len} characters")
    return value


def nonce(value: Any) -> bytes | None:
    """An optional request nonce of ``NONCE_BYTES`` bytes."""
    if value is None:
        return None
    if type(value) is not bytes:
        raise TypeError(f"nonce must be bytes or None, not {type(value).__name__}")
    if len(value) != NONCE_BYTES:
        raise ValueError(f"nonce must be {NONCE_BYTES} bytes, not {len(value)}")
    return value


def data(value: Any, name: str) -> bytes:
    """Encoded input (a request, payment, voucher, certificate...): ``bytes``. Its content is
    the peer's or the bank's, so the decoders judge it (a ``DecodeError`` names the field)."""
    if type(value) is not bytes:
        raise TypeError(f"{name} must be bytes, not {type(value).__name__}")
    return value


def data_list(value: Any, name: str, max_items: int = 1024) -> list[bytes]:
    """A list of encoded items (bank certificates, CRLs)."""
    if type(value) is not list:
        raise TypeError(f"{name} must be a list of bytes, not {type(value).__name__}")
    if len(value) > max_items:
        raise ValueError(f"{name} has more than {max_items} items")
    return [data(v, f"{name}[{i}]") for i, v in enumerate(value)]
