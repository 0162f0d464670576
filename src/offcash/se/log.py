"""The secure element's log of operations since the last sync, chained by a digest.

Theory of operation: every balance change appends an ``Entry`` (what happened, when, and the
signed message that proves it). The log's head digest chains the entries:
``head = SHA-256(previous_head || entry.encode())``, starting from the head the bank last
acknowledged. The SE signs ``(entries, head)`` in its sync report, so the settlement service can
tell a complete upload from an incomplete or altered one, and the SE drops exactly the entries
the bank's acknowledgement names.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from offcash.encoding import cbor
from offcash.encoding.fields import bstr, int_in, uint
from offcash.errors import DecodeError

GENESIS = bytes(32)


class EntryType(enum.IntEnum):
    """What a log entry records."""

    SENT = 1  # a payment this SE signed (debit)
    RECEIVED = 2  # a payment this SE accepted (credit)
    LOADED = 3  # a load voucher this SE applied (credit)
    UNLOADED = 4  # an unload request this SE signed (debit)


_TYPE = int_in(frozenset(int(t) for t in EntryType))
_ARRAY_OF_4 = cbor.head(4, 4)


@dataclass(frozen=True, slots=True)
class Entry:
    """One log entry: its type, the SE's time, the amount and the signed message."""

    type: EntryType
    time: int
    amount: int
    message: bytes

    def encode(self) -> bytes:
        """Deterministic CBOR ``[type, time, amount, message]`` (three unsigned integers and a
        byte string, written by concatenation)."""
        return b"".join(
            (
                _ARRAY_OF_4,
                cbor.head(0, self.type),
                cbor.head(0, self.time),
                cbor.head(0, self.amount),
                cbor.byte_string(self.message),
            )
        )

    @classmethod
    def decode(cls, data: bytes, path: str = "entry") -> Entry:
        """Decode an entry strictly."""
        value: Any = cbor.decode(data, path=path)
        if type(value) is not list or len(value) != 4:
            raise DecodeError(path, "expected [type, time, amount, message]")
        return cls(
            EntryType(_TYPE(value[0], f"{path}.type")),
            uint(2**40)(value[1], f"{path}.time"),
            uint()(value[2], f"{path}.amount"),
            bstr(1, cbor.MAX_MESSAGE_BYTES)(value[3], f"{path}.message"),
        )


def chain(head: bytes, entry: Entry) -> bytes:
    """The head digest after appending ``entry``."""
    return hashlib.sha256(head + entry.encode()).digest()


def chain_all(head: bytes, entries: Iterable[Entry]) -> bytes:
    """The head digest after appending every entry in order."""
    for entry in entries:
        head = chain(head, entry)
    return head
