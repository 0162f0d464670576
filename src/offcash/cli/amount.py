"""``Amount``: how the CLI holds money in the results it prints or writes as JSON.

Theory of operation: a command returns one dict that is either rendered for people or written
with ``--json``. Money in it is an ``Amount``: an ``int`` of minor units (what ``--json`` writes,
``1250``, beside the result's ``currency``: the same representation as the HTTP API, see
docs/API.md) whose text form is the decimal a person reads (``12.50``), so the rendered text and
the JSON come from one value and cannot disagree.
"""

from __future__ import annotations

from offcash.domain.money import Money


class Amount(int):
    """Minor units of a currency with ``digits`` decimals; ``str()`` is the decimal."""

    digits: int

    def __new__(cls, minor: int, digits: int) -> Amount:
        self = super().__new__(cls, minor)
        self.digits = digits
        return self

    @classmethod
    def of(cls, money: Money) -> Amount:
        """The amount of ``money``."""
        return cls(money.minor, money.currency.digits)

    def __str__(self) -> str:
        if self.digits == 0:
            return int.__repr__(self)
        units, frac = divmod(abs(int(self)), 10**self.digits)
        sign = "-" if self < 0 else ""
        return f"{sign}{units}.{frac:0{self.digits}d}"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __repr__(self) -> str:
        return f"Amount({int(self)}, {self.digits})"
