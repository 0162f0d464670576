"""Offline limits a bank sets for a wallet (Polaris handbook, section 5.5.11).

Theory of operation: ``Limits`` is the bank's policy, certified inside the wallet certificate
(see ``offcash.crypto.pki``) so that the payer's secure element enforces it, a payee can check
the parts visible in one payment (single payment, payment count since the sync), and settlement
can check all of it afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

from offcash.errors import Limit, LimitExceeded


@dataclass(frozen=True, slots=True)
class Limits:
    """The bank's offline limits for one wallet; amounts in minor units, time in seconds."""

    max_balance: int
    max_payment: int
    max_offline_payments: int
    max_offline_value: int
    max_offline_seconds: int

    def check(self, limit: Limit, value: int) -> None:
        """Raise ``LimitExceeded`` if ``value`` is over the bound for ``limit``."""
        bound = self.bound(limit)
        if value > bound:
            raise LimitExceeded(limit, value, bound)

    def bound(self, limit: Limit) -> int:
        """The bound this policy sets for ``limit``."""
        return int(getattr(self, _FIELD[limit]))


#: The ``Limits`` field that holds each limit's bound.
_FIELD = {limit: limit.name.lower() for limit in Limit}


#: A retail default in the spirit of published pilots: 300.00 held, 100.00 a payment,
#: 50 payments or 500.00 sent, 7 days between syncs.
DEFAULT_LIMITS = Limits(
    max_balance=30_000,
    max_payment=10_000,
    max_offline_payments=50,
    max_offline_value=50_000,
    max_offline_seconds=7 * 24 * 3600,
)
