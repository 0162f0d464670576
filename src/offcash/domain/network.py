"""Network parameters every participant of one offcash network shares.

Theory of operation: a network has one currency and one signature algorithm (crypto agility
means changing it is a parameter, not a redesign), a maximum age after which a payee no longer
accepts a payment offline (bounding how long payees must remember what they accepted), and the
clock skew tolerated between devices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from offcash.crypto.algorithms import SignatureAlgorithm
from offcash.domain.money import Currency
from offcash.encoding.fields import tstr, uint
from offcash.errors import DecodeError


@dataclass(frozen=True, slots=True)
class NetworkParams:
    """The parameters of one offcash network."""

    currency: str
    algorithm: SignatureAlgorithm = SignatureAlgorithm.P256
    max_payment_age: int = 7 * 24 * 3600
    clock_skew: int = 300

    def __post_init__(self) -> None:
        Currency.of(self.currency)

    def to_cbor(self) -> list[Any]:
        """The parameters as a CBOR array (how device states store them)."""
        return [self.currency, self.algorithm.short, self.max_payment_age, self.clock_skew]

    @classmethod
    def from_cbor(cls, value: Any, path: str) -> NetworkParams:
        """The parameters from ``to_cbor``'s array; ``DecodeError`` (at ``path``) if it is not
        one."""
        if type(value) is not list or len(value) != 4:
            raise DecodeError(path, "expected an array of 4 items")
        currency, alg, age, skew = value
        return cls(
            tstr(3)(currency, f"{path}.currency"),
            SignatureAlgorithm.from_name(tstr(16)(alg, f"{path}.algorithm")),
            uint()(age, f"{path}.max_payment_age"),
            uint()(skew, f"{path}.clock_skew"),
        )
