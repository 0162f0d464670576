"""The software SE's state as a base plus a journal of deltas, so persisting is O(1) in the log.

Theory of operation: ``SEState.encode`` writes the whole state, log included, so persisting it
after every operation costs time in proportion to the log (and to the payer's and payee's
memories, which grow with it). Between two full saves, an operation only *adds* to the four
collections that grow (the log's entries, the requests paid, the payee book's payments seen and
nonces paid) and *changes* a few small items (counters, certificate, trust anchors, CRLs,
outstanding requests, vouchers). ``Tracker`` remembers, after each persist, which collection
objects it saw and how long each was, and the encoding of each small item; ``delta`` then
writes a record holding only the small items whose encoding changed and the items added at the
end of each collection. Anything else (a collection replaced or shrunk: a sync dropping the log,
a sweep of expired entries, an overwritten key) makes ``delta`` answer None: the caller saves the
whole state instead. The collections' owners keep that rule: they only ever insert new keys in
place, and rebuild a collection to change or drop one (``PaidRequests.remember``,
``PayeeBook.record`` and ``prune``).

``replay`` applies records to a base state at the level of its CBOR array and re-encodes it once,
so the result is read by ``SEState.decode``, strictly, like any state. A record is
``[small, entries, paid, seen, book_paid]``: ``small`` maps a state array index to its new value
(index 10 stands for the book's outstanding requests and prune time, its items 0 and 3).
"""

from __future__ import annotations

import itertools
from typing import Any

from offcash.encoding import cbor
from offcash.errors import OffcashError, SecureElementError
from offcash.se.state import ITEMS_BY_VERSION, SEState

#: State array indexes a record may replace (10: the book's outstanding requests and prune time).
_SMALL = frozenset({1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 13, 14, 15, 16})
_MAX_STATE = 64 * 1024 * 1024


def _small(s: SEState) -> dict[int, Any]:
    """The small items of the state array, as ``SEState.encode`` writes them."""
    items = s.small_items()
    items[10] = [s.book.outstanding, s.book.pruned_at]
    return items


def _growing(s: SEState) -> tuple[list[Any], dict[Any, Any], dict[Any, Any], dict[Any, Any]]:
    return s.entries, s.paid.entries, s.book.seen, s.book.paid


def _tail(collection: Any, start: int) -> list[Any]:
    """The items of ``collection`` (a list or a dict) from position ``start`` on (a dict's
    items in insertion order), in time proportional to their number."""
    if isinstance(collection, list):
        return collection[start:]
    added = len(collection) - start
    return list(itertools.islice(reversed(collection.items()), added))[::-1]


class Tracker:
    """What was last persisted of one ``SEState``: see the module docstring."""

    def __init__(self, state: SEState) -> None:
        self._small = {i: cbor.encode(v) for i, v in _small(state).items()}
        self._seen = [(c, len(c)) for c in _growing(state)]
        self._pending: tuple[dict[int, bytes], list[tuple[Any, int]]] | None = None

    def delta(self, state: SEState) -> bytes | None:
        """The record that turns the last persisted state into ``state``, or None if only a
        full save can (call ``accepted`` once the record is persisted)."""
        growing = _growing(state)
        for (held, length), now in zip(self._seen, growing, strict=True):
            if now is not held or len(now) < length:
                return None
        entries, paid, seen, book_paid = (
            _tail(c, length) for c, (_, length) in zip(growing, self._seen, strict=True)
        )
        small = _small(state)
        encoded = {i: cbor.encode(v) for i, v in small.items()}
        changed = {i: v for i, v in small.items() if encoded[i] != self._small[i]}
        self._pending = encoded, [(c, len(c)) for c in growing]
        return cbor.encode(
            [
                changed,
                [e.encode() for e in entries],
                [[p, n, u, m] for (p, n), (u, m) in paid],
                [[p, c, d, t] for (p, c), (d, t) in seen],
                [[n, t] for n, t in book_paid],
            ]
        )

    def accepted(self) -> None:
        """The record ``delta`` last returned is persisted: it is now the baseline."""
        if self._pending is not None:
            self._small, self._seen = self._pending
            self._pending = None


def replay(base: bytes, records: list[bytes]) -> bytes:
    """The state ``base`` with ``records`` applied in order, encoded; ``SecureElementError`` if
    the base or a record is not of the form ``Tracker`` writes."""
    try:
        v: Any = cbor.decode(base, path="state", max_bytes=_MAX_STATE)
        # a base of an earlier version with the records its release appended (the file is
        # read, then saved whole in the current version at its first change)
        if type(v) is not list or not v or len(v) != ITEMS_BY_VERSION.get(v[0], -1):
            raise SecureElementError("a journal applies only to a state of a known version")
        book = v[10]
        if type(book) is not list or len(book) != 4:
            raise SecureElementError("the state's payee book is not [outstanding, paid, seen, at]")
        for raw in records:
            r: Any = cbor.decode(raw, path="journal", max_bytes=_MAX_STATE)
            if type(r) is not list or len(r) != 5 or type(r[0]) is not dict:
                raise SecureElementError("a journal record is not [small, four additions]")
            small, entries, paid, seen, book_paid = r
            for index, value in small.items():
                if index not in _SMALL or index >= len(v):
                    raise SecureElementError(f"a journal record sets state item {index!r}")
                if index == 10:
                    book[0], book[3] = value
                else:
                    v[index] = value
            v[9].extend(entries)
            v[12].extend(paid)
            book[2].extend(seen)
            book[1].update((n, t) for n, t in book_paid)
        return cbor.encode(v)
    except SecureElementError:
        raise
    except (OffcashError, AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:
        raise SecureElementError(f"secure element journal is unreadable: {exc}") from None
