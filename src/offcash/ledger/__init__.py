"""The settlement service: the two-tier ledger, sync and redemption, double-spend detection.

``LedgerService.open(url)`` is the entry point; see docs/SETTLEMENT.md for the accounting rules.
"""

from offcash.ledger.service import LedgerService

__all__ = ["LedgerService"]
