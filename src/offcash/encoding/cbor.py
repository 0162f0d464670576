"""Deterministic CBOR encoding and strict decoding.

Theory of operation: every offcash message is CBOR in the core deterministic encoding of
RFC 8949 section 4.2.1: shortest integer and length forms, definite lengths, and map keys
sorted by the bytewise order of their encodings. ``cbor2`` writes shortest forms; this module
adds the bytewise key order (``cbor2``'s own ``canonical`` mode sorts length-first, the older
RFC 7049 rule). ``decode`` is strict: it refuses inputs over a size bound, trailing bytes, and
any input that is not exactly the deterministic encoding of what it decodes to (which also
refuses duplicate map keys, indefinite lengths and non-shortest forms) and any floating-point
number (offcash messages carry none, as map keys or values). Every failure is a
``DecodeError``; no other exception escapes.

Speed: a payment takes about a dozen encodings and strict decodings, each of a few dozen
bytes, so the fixed costs dominate. Making a ``cbor2`` encoder costs more than encoding a
message with it, so encoders are pooled (taken from and returned to a list, which is safe
across threads; one that failed mid-encoding is dropped). Most decoded items are flat maps from
integer keys to integers and strings (every payload, protected header and the WalletPolicy);
``decode`` reads those directly, checking each head is the shortest and each key's encoding
greater than the last as it goes, and hands anything else (or anything it doubts) to the
general path: ``cbor2``, then the comparison with the deterministic re-encoding.
"""

from __future__ import annotations

import io
import struct
from typing import Any

import cbor2

from offcash.errors import DecodeError

#: Default bound on any single message. An ML-DSA-87 payment with its chain fits well within it.
MAX_MESSAGE_BYTES = 64 * 1024

#: The least argument of each head size (additional information 24 to 27): a smaller one fits
#: a shorter head, so its encoding is not deterministic.
_SHORTEST = (24, 1 << 8, 1 << 16, 1 << 32)
_ONE_BYTE = [bytes((i,)) for i in range(256)]
_HEAD_1, _HEAD_2, _HEAD_4, _HEAD_8 = (struct.Struct(f">B{c}").pack for c in "BHIQ")
#: Types with nothing inside to order: ``_ordered`` passes them through as they are.
_FLAT = frozenset({int, bytes, str, bool, type(None)})
_ENCODERS: list[cbor2.CBOREncoder] = []


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
    return (4, _dumps(_ordered(key)))


def _ordered(value: Any) -> Any:
    """``value`` with every map's keys in bytewise order of their encodings. ``TypeError`` for
    a floating-point number: offcash messages carry none, and ``cbor2`` would write it in a
    form that is not always the shortest RFC 8949 asks for."""
    kind = type(value)
    if kind is float:
        raise TypeError("offcash messages carry no floating-point numbers")
    if kind is dict:
        if len(value) == 1 and type(next(iter(value))) is float:
            raise TypeError("offcash messages carry no floating-point numbers")
        keys = sorted(value, key=_key_order) if len(value) > 1 else value
        return {k: v if type(v := value[k]) in _FLAT else _ordered(v) for k in keys}
    if kind is list or kind is tuple:
        return [v if type(v) in _FLAT else _ordered(v) for v in value]
    if isinstance(value, cbor2.CBORTag):
        return cbor2.CBORTag(value.tag, _ordered(value.value))
    return value


def _dumps(value: Any) -> bytes:
    """``cbor2.dumps(value)``, with a pooled encoder."""
    try:
        encoder = _ENCODERS.pop()
    except IndexError:
        encoder = cbor2.CBOREncoder(io.BytesIO())
    data = encoder.encode_to_bytes(value)
    _ENCODERS.append(encoder)
    return data


def head(major: int, argument: int) -> bytes:
    """The shortest head of an item of ``major`` type with ``argument`` (RFC 8949 section 3)."""
    initial = major << 5
    if argument < 24:
        if argument < 0:
            raise ValueError(f"negative CBOR head argument {argument}")
        return _ONE_BYTE[initial | argument]
    if argument < 1 << 8:
        return _HEAD_1(initial | 24, argument)
    if argument < 1 << 16:
        return _HEAD_2(initial | 25, argument)
    if argument < 1 << 32:
        return _HEAD_4(initial | 26, argument)
    if argument < 1 << 64:
        return _HEAD_8(initial | 27, argument)
    raise ValueError(f"argument {argument} does not fit in a CBOR head")


def byte_string(data: bytes) -> bytes:
    """The encoding of the byte string ``data``, for writers that concatenate fixed layouts."""
    return head(2, len(data)) + data


def encode(value: Any) -> bytes:
    """Encode ``value`` in RFC 8949 core deterministic CBOR."""
    return _dumps(value if type(value) in _FLAT else _ordered(value))


def decode(data: bytes, *, path: str = "", max_bytes: int = MAX_MESSAGE_BYTES) -> Any:
    """Decode one deterministic CBOR item, strictly; ``DecodeError`` on any deviation."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError(path, f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > max_bytes:
        raise DecodeError(path, f"{len(data)} bytes exceeds the bound of {max_bytes}")
    if not data:
        raise DecodeError(path, "empty input")
    flat = _flat_map(data)
    if flat is not None:
        return flat
    stream = io.BytesIO(data)
    try:
        # Invalid UTF-8 is decoded to lone surrogates, which the re-encoding below refuses:
        # cbor2's C decoder leaks about 650 bytes each time it raises on invalid UTF-8 itself
        # (agronholm/cbor2#257), a memory exhaustion an attacker could drive.
        value = cbor2.CBORDecoder(stream, str_errors="surrogateescape").decode()
    except Exception as exc:  # cbor2 raises several types; all mean malformed input
        raise DecodeError(path, f"malformed CBOR: {exc}") from None
    if stream.tell() != len(data):
        raise DecodeError(path, f"{len(data) - stream.tell()} trailing bytes after the message")
    # The deterministic encoding of what was decoded must be the input itself: this refuses
    # non-shortest heads, indefinite lengths, unsorted or repeated map keys, invalid UTF-8, and
    # any item that decodes to something that encodes otherwise (floats, tags cbor2 interprets).
    try:
        same = encode(value) == data
    except UnicodeEncodeError:
        raise DecodeError(path, "malformed CBOR: a text string is not valid UTF-8") from None
    except Exception as exc:
        raise DecodeError(path, f"unsupported CBOR content: {exc}") from None
    if not same:
        raise DecodeError(path, "not in deterministic CBOR encoding (RFC 8949 section 4.2)")
    return value


def _head(data: bytes, pos: int) -> tuple[int, int, int]:
    """The major type, the argument and the end of the shortest-form head at ``pos``;
    ``ValueError`` if it is not one (indefinite, reserved, longer than needed, truncated)."""
    initial = data[pos]
    info = initial & 0x1F
    if info < 24:
        return initial >> 5, info, pos + 1
    if info > 27:
        raise ValueError("not a definite head")
    end = pos + 1 + (1 << (info - 24))
    argument = int.from_bytes(data[pos + 1 : end], "big")
    if argument < _SHORTEST[info - 24] or end > len(data):
        raise ValueError("not a shortest head")
    return initial >> 5, argument, end


def byte_string_at(data: bytes, pos: int) -> tuple[int, int] | None:
    """The content start and end of the deterministically encoded byte string at ``pos``, or
    None if there is none (for fixed layouts read without decoding, like COSE_Sign1)."""
    try:
        major, length, start = _head(data, pos)
    except (ValueError, IndexError):
        return None
    if major != 2 or start + length > len(data):
        return None
    return start, start + length


def _flat_map(data: bytes) -> dict[int, int | bytes | str] | None:
    """``data`` decoded if it is the deterministic encoding of a map of fewer than 24 entries
    from integers to integers, byte strings and text strings; None for anything else."""
    initial = data[0]
    if initial >> 5 != 5 or initial & 0x1F >= 24:
        return None
    out: dict[int, int | bytes | str] = {}
    previous, pos, end = b"", 1, len(data)
    try:
        for _ in range(initial & 0x1F):
            start = pos
            if data[pos] < 24:  # the usual key: a small unsigned integer, its own head
                key, pos = data[pos], pos + 1
            else:
                major, argument, pos = _head(data, pos)
                if major > 1:
                    return None
                key = argument if major == 0 else ~argument
            if data[start:pos] <= previous:  # bytewise order, no repeated key
                return None
            previous = data[start:pos]
            major, argument, pos = _head(data, pos)
            if major < 2:
                out[key] = argument if major == 0 else ~argument
            elif major < 4 and pos + argument <= end:
                raw, pos = data[pos : pos + argument], pos + argument
                out[key] = raw.decode() if major == 3 else raw  # strict UTF-8
            else:
                return None
    except (ValueError, IndexError):  # UnicodeDecodeError is a ValueError
        return None
    return out if pos == end else None
