"""Money as an integer of minor units with its ISO 4217 currency.

Theory of operation: an amount is never a float. ``Money`` holds ``minor`` (an ``int`` of the
currency's minor units, e.g. cents) and a ``Currency``. Parsing ``"12.50"`` and formatting back
is exact because both go through ``decimal``-free integer arithmetic on the digit string.
Arithmetic between two currencies raises ``MoneyError``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from offcash.errors import MoneyError

# ISO 4217 codes with their number of minor-unit digits. Extend as pilots need.
_MINOR_DIGITS: dict[str, int] = {
    "EUR": 2,
    "USD": 2,
    "GBP": 2,
    "SEK": 2,
    "NOK": 2,
    "DKK": 2,
    "CHF": 2,
    "CAD": 2,
    "AUD": 2,
    "NZD": 2,
    "INR": 2,
    "CNY": 2,
    "HKD": 2,
    "SGD": 2,
    "BRL": 2,
    "ZAR": 2,
    "NGN": 2,
    "KES": 2,
    "GHS": 2,
    "MXN": 2,
    "THB": 2,
    "PHP": 2,
    "MYR": 2,
    "IDR": 2,
    "PLN": 2,
    "CZK": 2,
    "HUF": 2,
    "TRY": 2,
    "ILS": 2,
    "AED": 2,
    "SAR": 2,
    "EGP": 2,
    "JPY": 0,
    "KRW": 0,
    "CLP": 0,
    "ISK": 0,
    "VND": 0,
    "XOF": 0,
    "XAF": 0,
    "UGX": 0,
    "BHD": 3,
    "KWD": 3,
    "OMR": 3,
    "JOD": 3,
    "TND": 3,
    "XTS": 2,
}

#: ASCII digits only (``\d`` would admit other scripts' digits), and a bounded integer part so
#: ``int()`` never meets its 4300-digit limit (a ``ValueError``, not a ``MoneyError``).
_AMOUNT = re.compile(r"^(?P<units>[0-9]{1,40})(?:\.(?P<frac>[0-9]+))?$")
#: Largest amount representable on the wire (CBOR unsigned 64-bit).
MAX_MINOR = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Currency:
    """An ISO 4217 currency: its alphabetic code and number of minor-unit digits."""

    code: str
    digits: int

    @classmethod
    def of(cls, code: str) -> Currency:
        """The currency with this ISO 4217 code; ``MoneyError`` if offcash does not know it."""
        upper = code.upper() if isinstance(code, str) else ""
        if upper not in _MINOR_DIGITS:
            raise MoneyError(f"unknown ISO 4217 currency code: {code!r}")
        return cls(upper, _MINOR_DIGITS[upper])

    def __str__(self) -> str:
        return self.code


def is_known_currency(code: str) -> bool:
    """Whether ``code`` is an ISO 4217 code offcash knows."""
    return code in _MINOR_DIGITS


@dataclass(frozen=True, slots=True, order=False)
class Money:
    """A non-negative amount of one currency, in integer minor units."""

    minor: int
    currency: Currency

    def __post_init__(self) -> None:
        if type(self.minor) is not int:
            raise MoneyError(f"amount must be an integer of minor units, not {type(self.minor)}")
        if not 0 <= self.minor <= MAX_MINOR:
            raise MoneyError(f"amount out of range: {self.minor}")

    @classmethod
    def parse(cls, text: str, currency: str | Currency) -> Money:
        """Parse a decimal string such as ``"12.50"`` exactly; too many decimals is an error."""
        cur = currency if isinstance(currency, Currency) else Currency.of(currency)
        match = _AMOUNT.match(text.strip()) if isinstance(text, str) else None
        if match is None:
            raise MoneyError(f"not an amount: {text!r} (expected digits like 12.50)")
        frac = match["frac"] or ""
        if len(frac) > cur.digits:
            raise MoneyError(f"{text!r} has more than {cur.digits} decimals for {cur.code}")
        minor = int(match["units"]) * 10**cur.digits + int(frac.ljust(cur.digits, "0") or "0")
        if minor > MAX_MINOR:
            raise MoneyError(f"{text!r} is more than the largest amount, {cls(MAX_MINOR, cur)}")
        return cls(minor, cur)

    @classmethod
    def of(cls, minor: int, currency: str) -> Money:
        """Money from minor units and a currency code."""
        return cls(minor, Currency.of(currency))

    def format(self) -> str:
        """The amount as a decimal string without currency, e.g. ``"12.50"``."""
        if self.currency.digits == 0:
            return str(self.minor)
        units, frac = divmod(self.minor, 10**self.currency.digits)
        return f"{units}.{frac:0{self.currency.digits}d}"

    def __str__(self) -> str:
        return f"{self.format()} {self.currency.code}"

    def _same(self, other: Money) -> None:
        if self.currency != other.currency:
            raise MoneyError(f"mixed currencies: {self.currency} and {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        if other.minor > self.minor:
            raise MoneyError(f"{self} minus {other} would be negative")
        return Money(self.minor - other.minor, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.minor < other.minor

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.minor <= other.minor
