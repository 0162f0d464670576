"""The SE's log chain: the head digest commits to every entry, in order."""

from __future__ import annotations

import hashlib

from offcash.se.log import GENESIS, Entry, EntryType, chain, chain_all


def test_chain() -> None:
    a = Entry(EntryType.SENT, 1, 10, b"a")
    b = Entry(EntryType.RECEIVED, 2, 20, b"b")
    assert chain(GENESIS, a) == hashlib.sha256(GENESIS + a.encode()).digest()
    assert chain_all(GENESIS, [a, b]) == chain(chain(GENESIS, a), b)
    assert chain_all(GENESIS, [a, b]) != chain_all(GENESIS, [b, a])
    assert chain_all(GENESIS, []) == GENESIS
    assert a.encode().hex() == "8401010a4161"
