"""Deterministic CBOR encoding and strict decoding.

Theory of operation: every offcash message is CBOR in the core deterministic encoding of
RFC 8949 section 4.2.1: shortest integer and length forms, definite lengths, and map keys
sorted by the bytewise order of their encodings. ``cbor2`` writes shortest forms; this module
adds the bytewise key order (``cbor2``'s own ``canonical`` mode sorts length-first, the older
RFC 7049 rule). ``decode`` is strict: it refuses inputs over a size bound, trailing bytes, and
any input that is not exactly the deterministic encoding of what it decodes to (which also
refuses duplicate map keys, indefinite lengths and non-shortest forms). Every failure is a
``DecodeError``; no other exception escapes.
"""

from __future__ import annotations

import io
from typing import Any

import cbor2

from offcash.errors import DecodeError

#: Default bound on any single message. An ML-DSA-87 payment with its chain fits well within it.
MAX_MESSAGE_BYTES = 64 * 1024


def _key_order(key: Any) -> tuple[Any, ...]:
    """A sort key equal to the bytewise order of ``key``'s deterministic encoding.

    Shortest-form heads are monotonic in the value, so: unsigned integers (major type 0) by
    value, then negative integers (major type 1) by ``-1 - n``, then byte strings and text
    strings (major types 2 and 3) by length, then content. Other keys fall back to encoding.
    """
    if type(key) is int:
        return (0, key) if key >= 0 else (1, -1 - key)
    if type(key) is bytes:
        return (2, len(key), key)
    if type(key) is str:
        raw = key.encode()
        return (3, len(raw), raw)
    return (4, bytes(cbor2.dumps(_ordered(key))))


def _ordered(value: Any) -> Any:
    if type(value) is dict:
        items = sorted(value.items(), key=lambda item: _key_order(item[0]))
        return {k: _ordered(v) for k, v in items}
    if type(value) is list or type(value) is tuple:
        return [_ordered(v) for v in value]
    if isinstance(value, cbor2.CBORTag):
        return cbor2.CBORTag(value.tag, _ordered(value.value))
    return value


def encode(value: Any) -> bytes:
    """Encode ``value`` in RFC 8949 core deterministic CBOR."""
    return bytes(cbor2.dumps(_ordered(value)))


def decode(data: bytes, *, path: str = "", max_bytes: int = MAX_MESSAGE_BYTES) -> Any:
    """Decode one deterministic CBOR item, strictly; ``DecodeError`` on any deviation."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError(path, f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > max_bytes:
        raise DecodeError(path, f"{len(data)} bytes exceeds the bound of {max_bytes}")
    if not data:
        raise DecodeError(path, "empty input")
    stream = io.BytesIO(data)
    try:
        value = cbor2.CBORDecoder(stream).decode()
    except Exception as exc:  # cbor2 raises several types; all mean malformed input
        raise DecodeError(path, f"malformed CBOR: {exc}") from None
    if stream.tell() != len(data):
        raise DecodeError(path, f"{len(data) - stream.tell()} trailing bytes after the message")
    # The decoder keeps map keys in wire order, so re-encoding as decoded reproduces the input
    # exactly when every head is shortest, lengths are definite and no key repeats; the walk
    # then checks that map keys are in bytewise order.
    try:
        same = bytes(cbor2.dumps(value)) == data and _keys_in_order(value)
    except Exception as exc:
        raise DecodeError(path, f"unsupported CBOR content: {exc}") from None
    if not same:
        raise DecodeError(path, "not in deterministic CBOR encoding (RFC 8949 section 4.2)")
    return value


def _keys_in_order(value: Any) -> bool:
    """Whether every map inside ``value`` has its keys in bytewise order of their encodings."""
    pending = [value]
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind is dict:
            previous: tuple[Any, ...] | None = None
            for key in item:
                order = _key_order(key)
                if previous is not None and not previous < order:
                    return False
                previous = order
            pending.extend(item.values())
        elif kind is list:
            pending.extend(item)
        elif kind is cbor2.CBORTag:
            pending.append(item.value)
    return True
