"""Network parameters every participant of one offcash network shares.

Theory of operation: a network has one currency and one signature algorithm (crypto agility
means changing it is a parameter, not a redesign), a maximum age after which a payee no longer
accepts a payment offline (bounding how long payees must remember what they accepted), and the
clock skew tolerated between devices.

Algorithm migration (docs/PROTOCOL.md, "Algorithm migration"): a network on a classical
algorithm (P-256, Ed25519) may move once to a post-quantum one (ML-DSA). Its parameters then
name the new ``algorithm`` and keep the old one as ``legacy`` with ``legacy_until``, the last
instant a certificate of the old algorithm can be valid (the migration time plus the wallet
certificate validity, since no old-algorithm certificate is issued after the migration): a
message signed under the old algorithm is accepted only if its time is at most that. The
reverse, moving from ML-DSA to a classical algorithm, is refused (``migrate``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from offcash.crypto.algorithms import SignatureAlgorithm
from offcash.domain.money import Currency
from offcash.encoding.fields import tstr, uint
from offcash.errors import DecodeError, Rejection, VerificationError


@dataclass(frozen=True, slots=True)
class NetworkParams:
    """The parameters of one offcash network."""

    currency: str
    algorithm: SignatureAlgorithm = SignatureAlgorithm.P256
    max_payment_age: int = 7 * 24 * 3600
    clock_skew: int = 300
    #: The algorithm the network migrated from (None: it never migrated).
    legacy: SignatureAlgorithm | None = None
    #: The last time a message signed under ``legacy`` is accepted (its certificates' end).
    legacy_until: int = 0

    def __post_init__(self) -> None:
        Currency.of(self.currency)
        if self.legacy is not None and (
            self.legacy.post_quantum or not self.algorithm.post_quantum
        ):
            raise ValueError("a network migrates only from a classical to a post-quantum algorithm")

    def accepts(self, algorithm: SignatureAlgorithm, at: int) -> bool:
        """Whether a wallet's signature under ``algorithm`` dated ``at`` is acceptable: the
        network's algorithm always, the legacy one until ``legacy_until`` (inclusive)."""
        return algorithm is self.algorithm or (algorithm is self.legacy and at <= self.legacy_until)

    def migrate(self, algorithm: SignatureAlgorithm, legacy_until: int) -> NetworkParams:
        """The parameters after moving to ``algorithm``, old-algorithm certificates valid until
        ``legacy_until`` at the latest. Only a classical network moves, and only to ML-DSA:
        anything else (a downgrade, a second migration) is ``ALGORITHM_NOT_ALLOWED``."""
        if self.algorithm.post_quantum or self.legacy is not None:
            raise VerificationError(
                Rejection.ALGORITHM_NOT_ALLOWED,
                f"the network is on {self.algorithm.short} and does not move again",
            )
        if not algorithm.post_quantum:
            raise VerificationError(
                Rejection.ALGORITHM_NOT_ALLOWED,
                f"a network migrates only to ML-DSA, not to {algorithm.short}",
            )
        return NetworkParams(
            self.currency,
            algorithm,
            self.max_payment_age,
            self.clock_skew,
            legacy=self.algorithm,
            legacy_until=legacy_until,
        )

    def to_cbor(self) -> list[Any]:
        """The parameters as a CBOR array (how device states store them): four items, six
        after a migration (the legacy algorithm and ``legacy_until``)."""
        base = [self.currency, self.algorithm.short, self.max_payment_age, self.clock_skew]
        if self.legacy is None:
            return base
        return [*base, self.legacy.short, self.legacy_until]

    @classmethod
    def from_cbor(cls, value: Any, path: str) -> NetworkParams:
        """The parameters from ``to_cbor``'s array; ``DecodeError`` (at ``path``) if it is not
        one."""
        if type(value) is not list or len(value) not in (4, 6):
            raise DecodeError(path, "expected an array of 4 or 6 items")
        currency, alg, age, skew = value[:4]
        legacy, until = None, 0
        if len(value) == 6:
            legacy = SignatureAlgorithm.from_name(tstr(16)(value[4], f"{path}.legacy"))
            until = uint()(value[5], f"{path}.legacy_until")
        params = cls(
            tstr(3)(currency, f"{path}.currency"),
            SignatureAlgorithm.from_name(tstr(16)(alg, f"{path}.algorithm")),
            uint()(age, f"{path}.max_payment_age"),
            uint()(skew, f"{path}.clock_skew"),
        )
        if legacy is None:
            return params
        try:
            return cls(params.currency, params.algorithm, age, skew, legacy, until)
        except ValueError as exc:
            raise DecodeError(path, str(exc)) from None
