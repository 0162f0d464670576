"""The payer's memory of the requests it paid, so that one request is never paid twice.

Theory of operation: a payment request is named by its payee and nonce. When the secure element
pays one, it remembers ``(payee, nonce) -> (until, payment bytes)``; the same request again is
answered with the same payment bytes (nothing signed, debited or logged: it is the torn-transfer
re-send), and another request under the same ``(payee, nonce)`` (other amount, currency or
reference) is refused ``NONCE_USED``, since the payee consumed that nonce with the first payment
and would refuse a second one, which settlement would later release to it anyway. An entry is
kept until the request can no longer be paid: the SE refuses a request older than the network's
maximum payment age (plus clock skew), and ``until`` is at least that horizon, so an entry is
forgotten only once a repeat would be refused as too old. ``MAX_PAID_REQUESTS`` bounds the
memory: when it is full of live entries the SE refuses to pay by request (it never forgets a
live entry to make room). Paying stays O(1) in the memory's size: the expired entries are swept
at most once an hour of SE time (once the oldest has been expired that long), or when the memory
is full; an expired entry still held answers nothing (``payment_for`` checks its time).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from offcash.encoding.fields import bstr, uint
from offcash.errors import DecodeError

#: Requests remembered as paid at once (the same capacity as the log).
MAX_PAID_REQUESTS = 1024
#: How long (SE seconds) an expired entry may stay before a sweep drops it.
PRUNE_EVERY = 3600


@dataclass
class PaidRequests:
    """``(payee wallet id, nonce) -> (kept until, payment)`` (persisted with the SE state)."""

    entries: dict[tuple[bytes, bytes], tuple[int, bytes]] = field(default_factory=dict)
    #: The earliest ``until`` held (memory only: found again at first use after a restore).
    _oldest: int | None = field(default=None, init=False, repr=False, compare=False)

    def payment_for(self, payee: bytes, nonce: bytes, now: int) -> bytes | None:
        """The payment already made for this request, if still remembered at ``now``."""
        held = self.entries.get((payee, nonce))
        return None if held is None or held[0] < now else held[1]

    def full(self, now: int) -> bool:
        """Whether no entry could be added at ``now`` (after dropping the expired ones)."""
        if len(self.entries) < MAX_PAID_REQUESTS:  # the live entries are among those held
            return False
        return sum(1 for until, _ in self.entries.values() if until >= now) >= MAX_PAID_REQUESTS

    def remember(self, payee: bytes, nonce: bytes, until: int, payment: bytes, now: int) -> None:
        """Remember a paid request until ``until``. The expired entries are dropped once the
        oldest has been expired for ``PRUNE_EVERY`` seconds, or when the memory is full; an
        entry is changed or dropped by rebuilding the map, never in place (``se.journal``)."""
        oldest = self._oldest
        if oldest is None:
            oldest = min((u for u, _ in self.entries.values()), default=until)
        if oldest < now - PRUNE_EVERY or len(self.entries) >= MAX_PAID_REQUESTS:
            self.entries = {k: v for k, v in self.entries.items() if v[0] >= now}
            oldest = min((u for u, _ in self.entries.values()), default=until)
        elif (payee, nonce) in self.entries:
            self.entries = dict(self.entries)
        self.entries[(payee, nonce)] = (until, payment)
        self._oldest = min(oldest, until)

    def to_cbor(self) -> list[Any]:
        """A CBOR-ready form for persistence."""
        return [[p, n, u, m] for (p, n), (u, m) in self.entries.items()]

    @classmethod
    def from_cbor(cls, value: Any, path: str = "paid") -> PaidRequests:
        """The memory from ``to_cbor``'s form; ``DecodeError`` if it is not that form."""
        if type(value) is not list or len(value) > MAX_PAID_REQUESTS:
            raise DecodeError(path, f"expected an array of at most {MAX_PAID_REQUESTS} items")
        out = cls()
        for i, item in enumerate(value):
            where = f"{path}[{i}]"
            if type(item) is not list or len(item) != 4:
                raise DecodeError(where, "expected [payee, nonce, until, payment]")
            p, n, u, m = item
            key = (bstr(1, 64)(p, where), bstr(1, 64)(n, where))
            out.entries[key] = (uint()(u, where), bstr(1)(m, where))
        return out
