"""Crash injection for the conservation test: at a secure element's save, inside a ledger
transaction, or after a ledger commit whose answer is then lost.

What "between any two persisted steps" means here:

- **Secure element.** An SE operation persists exactly once (``StateStore.save``: an atomic
  rename). ``FaultyStore`` crashes it either *before* the write (the new state is not on disk:
  the operation must roll back) or *after* it (the state is on disk, but the caller never gets
  the result: the device died before showing the QR code, the receipt, the voucher outcome).
  After either, the test reopens the SE from the file, as a restarted device would.
- **Ledger.** Every ledger operation is one database transaction (``db.transaction``).
  ``LedgerFaults`` raises before the k-th SQL statement of the next call (the process died
  mid-transaction: nothing may be committed) or lets the call commit and then loses its answer
  (the process died after COMMIT, before replying).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from offcash.se.software import SoftwareSecureElement
from offcash.se.storage import SealedFile

T = TypeVar("T")
PIN = "0000"


class InjectedCrash(Exception):
    """A crash injected by the test (never raised by offcash itself)."""


class FaultyStore:
    """A real ``SealedFile`` that can be told to crash its next save, before or after writing."""

    def __init__(self, inner: SealedFile, stats: Counter[str]) -> None:
        self.inner = inner
        self.mode: str | None = None
        self.stats = stats

    @classmethod
    def create(cls, path: Path, state: bytes, stats: Counter[str]) -> FaultyStore:
        return cls(SealedFile.create(path, PIN, state, scrypt_n=2**10), stats)

    def save(self, state: bytes) -> None:
        mode, self.mode = self.mode, None
        if mode == "before":
            self.stats["se-crash-before-save"] += 1
            raise InjectedCrash("SE crashed before persisting")
        self.inner.save(state)
        if mode == "after":
            self.stats["se-crash-after-save"] += 1
            raise InjectedCrash("SE crashed after persisting")

    def reopen(self) -> SoftwareSecureElement:
        """The SE as a restarted device sees it: loaded from the file on disk (which someone
        else may have written: the store then saves over what it read now, not before)."""
        self.inner, state = SealedFile.open(self.inner.path, PIN)
        return SoftwareSecureElement(state, self)


class LedgerFaults:
    """Raises ``InjectedCrash`` before the k-th SQL statement after ``arm(k)``."""

    def __init__(self, engine: Engine, stats: Counter[str]) -> None:
        self.countdown = 0
        self.stats = stats
        sa.event.listen(engine, "before_cursor_execute", self._before)

    def _before(self, *_: Any) -> None:
        if self.countdown > 0:
            self.countdown -= 1
            if self.countdown == 0:
                self.stats["ledger-crash-in-transaction"] += 1
                raise InjectedCrash("ledger crashed before COMMIT")

    def call(self, fault: int | str | None, fn: Callable[[], T]) -> T:
        """Run ``fn`` under ``fault``: None, k (crash at statement k, if it has that many) or
        ``"after-commit"`` (run it, then lose the answer)."""
        self.countdown = fault if isinstance(fault, int) else 0
        try:
            result = fn()
        finally:
            self.countdown = 0
        if fault == "after-commit":
            self.stats["ledger-crash-after-commit"] += 1
            raise InjectedCrash("ledger answer lost after COMMIT")
        return result
