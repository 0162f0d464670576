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


def _ordered(value: Any) -> Any:
    if isinstance(value, dict):
        items = [(cbor2.dumps(k), _ordered(k), _ordered(v)) for k, v in value.items()]
        items.sort(key=lambda item: item[0])
        return {k: v for _, k, v in items}
    if isinstance(value, list | tuple):
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
    try:
        canonical = encode(value)
    except Exception as exc:
        raise DecodeError(path, f"unsupported CBOR content: {exc}") from None
    if canonical != data:
        raise DecodeError(path, "not in deterministic CBOR encoding (RFC 8949 section 4.2)")
    return value
