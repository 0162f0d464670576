"""Wallets: the owner's side of a secure element, and receive-only terminals.

``Wallet`` pairs a secure element with a ``Settlement`` (the in-process ``LedgerService`` or
the HTTP ``offcash.api.Client``: both implement it) for the online steps: enrol, fund, unload,
sync. ``ReceiveOnlyTerminal`` is a payee without a secure element. See docs/LIBRARY.md.
"""

from offcash.wallet.facade import RevokedAtSync, Wallet
from offcash.wallet.settlement import (
    AnomalyAnswer,
    AuditAnswer,
    BankPositionAnswer,
    EnrollmentAnswer,
    NetworkInfo,
    Operations,
    RedeemAnswer,
    RefusalAnswer,
    Settlement,
    SyncAnswer,
    TrustAnswer,
)
from offcash.wallet.terminal import ReceiveOnlyTerminal

__all__ = [
    "AnomalyAnswer",
    "AuditAnswer",
    "BankPositionAnswer",
    "EnrollmentAnswer",
    "NetworkInfo",
    "Operations",
    "ReceiveOnlyTerminal",
    "RedeemAnswer",
    "RefusalAnswer",
    "RevokedAtSync",
    "Settlement",
    "SyncAnswer",
    "TrustAnswer",
    "Wallet",
]
