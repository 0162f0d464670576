"""Refusals as status words, and back: the card's answer for each typed error of offcash.

Theory of operation: every refusal of the card applet is an offcash exception (or ``TypeError``
/ ``ValueError`` for a bad argument) raised by the software secure element inside it.
``status_word`` maps it to one status word (``SW_TABLE`` in docs/APDU.md) and ``details`` to the
fields the host needs to rebuild it (the limit's value and bound, the verification detail, the
decoder's path...), which the card keeps until the next command and returns to GET ERROR: an
error status word carries no response data (ISO 7816-4 5.6). ``rebuild`` is the host's inverse,
so an error crosses the APDU wall with its type and fields: a ``VerificationError`` keeps its
``Rejection`` (in SW2), a ``LimitExceeded`` its ``Limit`` (in SW2), value and bound. Both tables
are explicit and ordered most specific first (``SecureElementRevoked`` is a
``SecureElementError``, ``MoneyError`` a ``ValueError``).
"""

from __future__ import annotations

from typing import Any

from offcash.errors import (
    CannotDecrypt,
    DecodeError,
    InsufficientFunds,
    Limit,
    LimitExceeded,
    MoneyError,
    PinBlocked,
    Rejection,
    SecureElementError,
    SecureElementRevoked,
    VerificationError,
    WrongPin,
)
from offcash.se.card.apdu import SW

#: Proprietary status words of offcash refusals (SW1 69: command not allowed, state unchanged).
INSUFFICIENT_FUNDS = 0x69A0
LIMIT_BASE = 0x69A1  # + the Limit's index (69A1..69A7)
REVOKED = 0x69B0
CANNOT_DECRYPT = 0x69B1
MONEY = 0x69B2
BAD_TYPE = 0x69B3
BAD_VALUE = 0x69B4
REJECTION_BASE = 0x69C0  # + the Rejection's index (69C0..69D6)

LIMITS = list(Limit)
REJECTIONS = list(Rejection)


def status_word(exc: BaseException) -> int:
    """The status word the card answers for refusal ``exc``."""
    if isinstance(exc, InsufficientFunds):
        return INSUFFICIENT_FUNDS
    if isinstance(exc, LimitExceeded):
        return LIMIT_BASE + LIMITS.index(exc.limit)
    if isinstance(exc, VerificationError):
        return REJECTION_BASE + REJECTIONS.index(exc.rejection)
    if isinstance(exc, DecodeError):
        return SW.WRONG_DATA
    if isinstance(exc, CannotDecrypt):
        return CANNOT_DECRYPT
    if isinstance(exc, SecureElementRevoked):
        return REVOKED
    if isinstance(exc, SecureElementError):
        return SW.CONDITIONS
    if isinstance(exc, MoneyError):
        return MONEY
    if isinstance(exc, TypeError):
        return BAD_TYPE
    if isinstance(exc, ValueError):
        return BAD_VALUE
    return SW.UNKNOWN


def details(exc: BaseException) -> list[Any]:
    """The fields of ``exc`` the host needs besides its status word (GET ERROR's answer)."""
    if isinstance(exc, InsufficientFunds):
        return [exc.balance, exc.amount]
    if isinstance(exc, LimitExceeded):
        return [exc.value, exc.bound]
    if isinstance(exc, VerificationError):
        return [exc.detail]
    if isinstance(exc, DecodeError):
        return [exc.path, exc.reason]
    return [str(exc)]


def is_refusal(sw: int) -> bool:
    """Whether ``sw`` is one of the refusals ``rebuild`` turns into a typed error with
    ``details`` (fetched with GET ERROR)."""
    return (
        sw in (INSUFFICIENT_FUNDS, REVOKED, CANNOT_DECRYPT, MONEY, BAD_TYPE, BAD_VALUE)
        or sw in (SW.WRONG_DATA, SW.CONDITIONS, SW.UNKNOWN)
        or LIMIT_BASE <= sw < LIMIT_BASE + len(LIMITS)
        or REJECTION_BASE <= sw < REJECTION_BASE + len(REJECTIONS)
    )


def pin_error(sw: int) -> WrongPin | None:
    """The PIN error of a VERIFY (or PUK) status word: ``63Cx`` wrong with x tries left (none
    left: blocked), ``6983`` blocked; None for another status word."""
    if sw in (SW.BLOCKED, SW.WRONG_PIN):
        return PinBlocked("the PIN is blocked after too many wrong tries: unblock it with the PUK")
    if sw >> 4 == SW.WRONG_PIN >> 4:
        tries = sw & 0xF
        return WrongPin(
            f"wrong PIN: {tries} {'try' if tries == 1 else 'tries'} left before the card blocks it"
        )
    return None


def rebuild(sw: int, fields: list[Any]) -> Exception:
    """The typed error for refusal ``sw`` with the ``details`` the card returned."""
    try:
        return _rebuild(sw, fields)
    except (IndexError, TypeError, ValueError):
        return SecureElementError(f"the card refused with {sw:04X} and unreadable details")


def _rebuild(sw: int, f: list[Any]) -> Exception:
    if sw == INSUFFICIENT_FUNDS:
        return InsufficientFunds(_int(f[0]), _int(f[1]))
    if LIMIT_BASE <= sw < LIMIT_BASE + len(LIMITS):
        return LimitExceeded(LIMITS[sw - LIMIT_BASE], _int(f[0]), _int(f[1]))
    if REJECTION_BASE <= sw < REJECTION_BASE + len(REJECTIONS):
        return VerificationError(REJECTIONS[sw - REJECTION_BASE], _str(f[0]))
    if sw == SW.WRONG_DATA:
        return DecodeError(_str(f[0]), _str(f[1]))
    message = _str(f[0])
    simple: dict[int, type[Exception]] = {
        CANNOT_DECRYPT: CannotDecrypt,
        REVOKED: SecureElementRevoked,
        SW.CONDITIONS: SecureElementError,
        MONEY: MoneyError,
        BAD_TYPE: TypeError,
        BAD_VALUE: ValueError,
    }
    if sw in simple:
        return simple[sw](message)
    return SecureElementError(f"the card failed ({sw:04X}): {message}")


def _int(value: Any) -> int:
    if type(value) is not int:
        raise TypeError("expected an int")
    return value


def _str(value: Any) -> str:
    if type(value) is not str:
        raise TypeError("expected a text")
    return value
