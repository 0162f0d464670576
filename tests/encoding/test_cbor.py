"""Deterministic CBOR (RFC 8949 section 4.2.1): the encoder's order, the decoder's strictness."""

from __future__ import annotations

import struct
from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offcash.encoding import cbor
from offcash.errors import DecodeError

from factories import head, raw_map


def _reference(value: Any) -> bytes:
    """An obviously correct deterministic encoder: sort each map by its keys' encodings."""
    if isinstance(value, dict):
        items = sorted((_reference(k), _reference(v)) for k, v in value.items())
        return head(5, len(items)) + b"".join(k + v for k, v in items)
    if isinstance(value, list):
        return head(4, len(value)) + b"".join(_reference(v) for v in value)
    if isinstance(value, cbor2.CBORTag):
        return head(6, value.tag) + _reference(value.value)
    return bytes(cbor2.dumps(value))


KEYS = st.integers(-(2**64), 2**64 - 1) | st.text(max_size=30) | st.binary(max_size=30)
VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64 - 1)
    | st.binary(max_size=50)
    | st.text(max_size=50),
    lambda inner: (
        st.lists(inner, max_size=6)
        | st.dictionaries(KEYS, inner, max_size=6)
        | st.builds(cbor2.CBORTag, st.sampled_from([18, 4000]), inner)
    ),
    max_leaves=25,
)


@settings(max_examples=300)
@given(VALUES)
def test_encoder_matches_the_rfc_rule_and_round_trips(value: Any) -> None:
    data = cbor.encode(value)
    assert data == _reference(value)
    assert cbor.decode(data) == value


def test_bytewise_not_length_first_order() -> None:
    """24 (0x18 0x18) sorts before -1 (0x20) bytewise; RFC 7049 length-first would not."""
    assert cbor.encode({-1: 0, 24: 0}) == b"\xa2\x18\x18\x00\x20\x00"
    assert list(cbor2.loads(cbor.encode({-65538: 0, 33: 0, 1: 0, -65537: 0}))) == [
        1,
        33,
        -65537,
        -65538,
    ]
    assert list(cbor2.loads(cbor.encode({"b": 0, "aa": 0, 100: 0, b"a": 0}))) == [
        100,
        b"a",
        "b",
        "aa",
    ]


@pytest.mark.parametrize(
    "data",
    [
        head(0, 1, 1),  # 1 in two bytes
        head(0, 200, 2),
        head(1, 5, 4),  # -6 in five bytes
        head(2, 1, 1) + b"x",  # byte-string length not shortest
        head(3, 1, 8) + b"x",
        b"\x5f\x41x\xff",  # indefinite byte string
        b"\x7f\x61x\xff",  # indefinite text string
        b"\x9f\x01\xff",  # indefinite array
        raw_map([(b"\x02", b"\x00"), (b"\x01", b"\x00")]),  # unsorted keys
        raw_map([(b"\x01", b"\x00"), (b"\x01", b"\x01")]),  # duplicate key
        raw_map([(b"\x01", b"\x00")], indefinite=True),
        raw_map([(b"\x20", b"\x00"), (b"\x18\x18", b"\x00")]),  # length-first order
        b"\xf9\x3c\x00",  # float16 1.0 decodes to 1.0, re-encodes otherwise
        b"\xc1\x00",  # tag 1 (epoch time) becomes a datetime
        b"\xc2\x41\x01",  # bignum for 1
        b"\xd8\x12\x80",  # tag 18 head not shortest
        b"\x82\x01\x9f\xff",  # nested indefinite array
    ],
    ids=lambda d: d.hex(),
)
def test_non_canonical_refused(data: bytes) -> None:
    with pytest.raises(DecodeError) as info:
        cbor.decode(data, path="msg")
    assert info.value.path == "msg"


@pytest.mark.parametrize(
    "data",
    [
        b"\xfb" + struct.pack(">d", 1.5),  # float64 1.5: cbor2 writes it back as float64
        b"\xfb" + struct.pack(">d", 1e300),  # no shorter form exists: still refused
        b"\xa1\xfb" + struct.pack(">d", -4.0) + b"\x01",  # {-4.0: 1}: a float label
        b"\xa1\x01\xfa" + struct.pack(">f", 0.5),  # {1: 0.5}
        b"\x81\xfb" + struct.pack(">d", 2.0),  # [2.0]
    ],
    ids=lambda d: d.hex(),
)
def test_floats_are_refused_whatever_their_form(data: bytes) -> None:
    """offcash messages carry no floating-point numbers: a float64 re-encodes as itself (not
    RFC 8949's shortest form), and a float label equals an integer one in Python (-4.0 == -4),
    so a decoder that let them through would accept a second encoding of a message."""
    with pytest.raises(DecodeError, match="floating-point"):
        cbor.decode(data, path="msg")
    with pytest.raises(TypeError):
        cbor.encode(cbor2.loads(data))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"\x01\x02", "trailing"),
        (b"\x82\x01", "malformed"),
        (b"\xff", ""),  # a lone break
        (b"\x1c", "malformed"),  # reserved additional information
        (b"\x5b\xff\xff\xff\xff\xff\xff\xff\xff", "malformed"),  # absurd length
        (b"\x62\xff\xfe", "not valid UTF-8"),
        (b"\x82\x01\x62\xff\xfe", "not valid UTF-8"),  # inside an array
        (bytes(cbor.MAX_MESSAGE_BYTES + 1), "exceeds"),
    ],
    ids=lambda v: v.hex()[:16] if isinstance(v, bytes) else v,
)
def test_malformed(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        cbor.decode(data, path="msg")
    assert info.value.path == "msg" and reason in info.value.reason


def test_size_bound_is_a_parameter() -> None:
    data = cbor.encode(b"x" * 100)
    assert cbor.decode(data, max_bytes=len(data)) == b"x" * 100
    with pytest.raises(DecodeError, match="exceeds"):
        cbor.decode(data, max_bytes=len(data) - 1)


def test_deep_nesting_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        cbor.decode(b"\x81" * 50_000 + b"\x00")


@pytest.mark.parametrize("value", ["text", 7, None, [b"x"]], ids=repr)
def test_non_bytes_input(value: Any) -> None:
    with pytest.raises(DecodeError, match="expected bytes"):
        cbor.decode(value)


def test_bytearray_and_memoryview_accepted() -> None:
    data = cbor.encode({1: b"x"})
    assert cbor.decode(bytearray(data)) == cbor.decode(memoryview(data)) == {1: b"x"}


# --- the direct reader of flat maps (every payload, protected header and WalletPolicy) ---------

FLAT_KEYS = st.integers(-(2**64), 2**64 - 1) | st.sampled_from([0, 1, 23, 24, -24, -25, 255, 256])
FLAT_VALUES = (
    st.integers(-(2**64), 2**64 - 1)
    | st.sampled_from([23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32])
    | st.binary(max_size=300)
    | st.text(max_size=30)
)


def _reference_decode(data: bytes) -> Any:
    """The strict decoding by definition: cbor2's, accepted only if it re-encodes to the input."""
    try:
        value = cbor2.loads(data)
        same = _reference(value) == data
    except Exception:
        return DecodeError
    return value if same else DecodeError


def _outcome(data: bytes) -> Any:
    try:
        return cbor.decode(data)
    except DecodeError:
        return DecodeError


@settings(max_examples=400)
@given(
    st.dictionaries(FLAT_KEYS, FLAT_VALUES, max_size=30),
    st.randoms(use_true_random=False),
    st.lists(st.tuples(st.integers(0, 2**16), st.integers(0, 255)), max_size=3),
)
def test_flat_maps_decode_exactly_as_the_reference(
    value: dict[int, Any], rnd: Any, edits: list[tuple[int, int]]
) -> None:
    """Flat maps take a direct path; whatever the input (reordered entries, a byte changed,
    inserted or dropped), it accepts and refuses exactly what the definition does."""
    pairs = [(cbor.encode(k), cbor.encode(v)) for k, v in value.items()]
    canonical = raw_map(sorted(pairs))
    rnd.shuffle(pairs)
    for data in (canonical, raw_map(pairs), *_edited(canonical, edits)):
        assert _outcome(data) == _reference_decode(data), data.hex()
    assert cbor.decode(canonical) == value


def _edited(data: bytes, edits: list[tuple[int, int]]) -> list[bytes]:
    out = []
    for at, byte in edits:
        i = at % (len(data) + 1)
        out += [data[:i] + bytes([byte]) + data[i + 1 :], data[:i] + bytes([byte]) + data[i:]]
        out.append(data[:i] + data[i + 1 :])
    return [d for d in out if d]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (raw_map([(head(0, 1, 1), b"\x00")]), "deterministic"),  # key 1 in two bytes
        (raw_map([(b"\x01", head(0, 5, 2))]), "deterministic"),  # value 5 in three bytes
        (raw_map([(b"\x01", head(2, 1, 1) + b"x")]), "deterministic"),  # length not shortest
        (raw_map([(b"\x02", b"\x00"), (b"\x01", b"\x00")]), "deterministic"),  # unsorted
        (raw_map([(b"\x01", b"\x00"), (b"\x01", b"\x00")]), "deterministic"),  # repeated key
        (raw_map([(b"\x01", b"\x43ab")]), "malformed"),  # byte string past the end
        (raw_map([(b"\x01", b"\x62\xff\xfe")]), "malformed"),  # invalid UTF-8
        (raw_map([(b"\x01", b"\x00")]) + b"\x00", "trailing"),
        (raw_map([(b"\x01", b"\xf5")]), ""),  # true: not flat, decoded by the general path
    ],
    ids=lambda v: v.hex() if isinstance(v, bytes) else v,
)
def test_flat_map_refusals_are_the_general_paths(data: bytes, reason: str) -> None:
    if not reason:
        assert cbor.decode(data) == {1: True}
        return
    with pytest.raises(DecodeError) as info:
        cbor.decode(data, path="msg")
    assert info.value.path == "msg" and reason in info.value.reason


@pytest.mark.parametrize(
    "argument", [0, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1]
)
def test_head_and_byte_string_are_cbor2s(argument: int) -> None:
    assert cbor.head(0, argument) == cbor2.dumps(argument)
    assert cbor.head(1, argument) == cbor2.dumps(-1 - argument)
    data = b"x" * min(argument, 70000)
    assert cbor.byte_string(data) == cbor2.dumps(data)
    assert cbor.byte_string_at(b"\x00" + cbor.byte_string(data), 1) == (
        1 + len(cbor.byte_string(data)) - len(data),
        1 + len(cbor.byte_string(data)),
    )


@pytest.mark.parametrize("argument", [-1, 2**64])
def test_head_refuses_what_no_head_holds(argument: int) -> None:
    with pytest.raises(ValueError):
        cbor.head(0, argument)


@pytest.mark.parametrize(
    "data", [b"", b"\x01", b"\x41", b"\x58\x01x", b"\x5f\x41x\xff", b"\x42x"], ids=bytes.hex
)
def test_byte_string_at_finds_only_deterministic_byte_strings(data: bytes) -> None:
    assert cbor.byte_string_at(data, 0) is None


def test_refusing_invalid_utf8_does_not_leak_memory() -> None:
    """cbor2's C decoder leaks about 650 bytes whenever it raises on invalid UTF-8 itself
    (agronholm/cbor2#257): a stream of such inputs would exhaust a service's memory."""
    import gc
    import tracemalloc

    bad = raw_map([(b"\x01", b"\x00"), (b"\x02", b"\x82\x01\x62\xff\xfe")])  # not a flat map
    for _ in range(100):
        with pytest.raises(DecodeError):
            cbor.decode(bad)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(2_000):
            with pytest.raises(DecodeError):
                cbor.decode(bad)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 100_000  # the leak: about 1.3 MB for 2,000 inputs
