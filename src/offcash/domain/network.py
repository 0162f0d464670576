"""Network parameters every participant of one offcash network shares.

Theory of operation: a network has one currency and one signature algorithm (crypto agility
means changing it is a parameter, not a redesign), a maximum age after which a payee no longer
accepts a payment offline (bounding how long payees must remember what they accepted), and the
clock skew tolerated between devices.
"""

from __future__ import annotations

from dataclasses import dataclass

from offcash.crypto.algorithms import SignatureAlgorithm
from offcash.domain.money import Currency


@dataclass(frozen=True, slots=True)
class NetworkParams:
    """The parameters of one offcash network."""

    currency: str
    algorithm: SignatureAlgorithm = SignatureAlgorithm.P256
    max_payment_age: int = 7 * 24 * 3600
    clock_skew: int = 300

    def __post_init__(self) -> None:
        Currency.of(self.currency)
