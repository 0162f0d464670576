"""Typed errors of the settlement service (``offcash.ledger``).

Theory of operation: the ledger refuses with a ``LedgerError`` (a ``LocalError``: this side will
not act, e.g. an unknown account or an open claim window) or with a ``RemoteError`` subclass when
what a wallet uploaded is unacceptable (an incomplete log). Each class has a stable ``code`` that
the HTTP API turns into a problem type URI.
"""

from __future__ import annotations

from offcash.errors import LocalError, RemoteError


class LedgerError(LocalError):
    """The settlement service refuses or cannot act."""

    code = "ledger-error"


class NotFound(LedgerError):
    """A wallet, account, bank or record the request names does not exist."""

    code = "not-found"


class InsufficientBalance(LedgerError):
    """An account holds less than the amount to move out of it."""

    code = "insufficient-balance"


class LimitReached(LedgerError):
    """An amount, or the total it would bring the books to, beyond what the ledger accounts
    for (``books.MAX_TOTAL``)."""

    code = "limit-reached"


class WalletRevoked(LedgerError):
    """The wallet is revoked: it can no longer sync, fund or unload."""

    code = "wallet-revoked"


class ClaimNotReady(LedgerError):
    """A lost-device refund was asked for before the claim window closed, or twice."""

    code = "claim-not-ready"


class Unauthorized(LedgerError):
    """An operator call without a valid bearer token."""

    code = "unauthorized"


class Conflict(LedgerError):
    """The request conflicts with the ledger's state (e.g. a bank that already exists)."""

    code = "conflict"


class IncompleteLog(RemoteError):
    """The uploaded log entries do not chain to the digest the secure element signed, or the
    report's sync sequence does not follow the last acknowledged one."""

    code = "incomplete-log"


class UnloadRefused(RemoteError):
    """An SE-signed unload request asks for more than the ledger can account for from the
    wallet's signed history (or reuses a counter its last sync covered): nothing is paid, the
    request is kept as evidence and the wallet revoked."""

    code = "unload-refused"
