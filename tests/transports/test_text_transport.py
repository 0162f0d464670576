"""Tests of the text forms (offcash.transports.text)."""

from __future__ import annotations

import base64
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offcash.errors import RemoteError, TransportError
from offcash.transports.text import (
    BASE45_PREFIX,
    BASE64URL_PREFIX,
    MAX_MESSAGE_BYTES,
    TextForm,
    TextFormError,
    decode_text,
    encode_text,
    has_text_prefix,
)

FORMS: tuple[TextForm, ...] = ("base45", "base64url")
MESSAGE = bytes(range(256)) * 2 + b"\xd2\x84\x43\xa1\x01\x26"


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("data", [b"\x00", b"ab", b"abc", MESSAGE], ids=["1", "2", "3", "518"])
def test_round_trip(form: TextForm, data: bytes) -> None:
    text = encode_text(data, form)
    assert text.isascii()
    assert decode_text(text) == data


def test_prefixes_and_default_form() -> None:
    assert encode_text(b"hello").startswith(BASE45_PREFIX)
    assert encode_text(b"hello") == "OC1:+8D VDL2"
    assert encode_text(b"hello", "base64url") == "OC1B64:aGVsbG8"
    assert "=" not in encode_text(b"hello", "base64url")
    assert has_text_prefix("  \nOC1:ABC") and has_text_prefix("OC1B64:x")
    assert not has_text_prefix("HC1:ABC")


@pytest.mark.parametrize("form", FORMS)
def test_tolerates_surrounding_whitespace_and_line_breaks(form: TextForm) -> None:
    text = encode_text(MESSAGE, form)
    assert decode_text(f"\n\n  {text}  \r\n\t") == MESSAGE
    assert decode_text("\ufeff" + text + "\n") == MESSAGE
    wrapped = "\r\n".join(text[i : i + 60] for i in range(0, len(text), 60))
    assert decode_text(wrapped) == MESSAGE


def test_base64url_ignores_any_inner_whitespace() -> None:
    text = encode_text(MESSAGE, "base64url")
    indented = "\n    ".join(text[i : i + 40] for i in range(0, len(text), 40))
    assert decode_text(indented) == MESSAGE
    body = text.removeprefix(BASE64URL_PREFIX)
    assert decode_text(BASE64URL_PREFIX + " ".join(body)) == MESSAGE


def test_base45_keeps_inner_spaces() -> None:
    data = bytes.fromhex("0024")  # base45 "OC1: 00": a leading space in the body
    text = encode_text(data)
    assert text[len(BASE45_PREFIX)] == " "
    assert decode_text(text) == data
    assert decode_text("  " + text + " ") == data


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "not an offcash text message"),
        ("hello world", "not an offcash text message"),
        ("HC1:6BFOXN%TS3DH", "not an offcash text message"),
        ("oc1:ABC", "not an offcash text message"),
        ("OC1:", "empty message"),
        ("OC1B64:", "empty message"),
        ("OC1:%69 VD9", "truncated base45"),
        ("OC1:%69 VD92AB", "truncated base45"),
        ("OC1:%69 vd92", "invalid base45 character 'v'"),
        ("OC1::::", "out of range"),
        ("OC1B64:aGVsbG8=", "invalid base64url character '='"),
        ("OC1B64:aGVs+G8", "invalid base64url character '+'"),
        ("OC1B64:aGVsb", "truncated base64url"),
        ("OC1B64:AB", "non-canonical"),
    ],
)
def test_bad_text_raises_text_form_error(text: str, fragment: str) -> None:
    with pytest.raises(TextFormError, match=re.escape(fragment)) as info:
        decode_text(text)
    assert isinstance(info.value, TransportError)
    assert isinstance(info.value, RemoteError)
    assert info.value.code == "transport-text"


def test_non_str_input_is_a_text_form_error() -> None:
    with pytest.raises(TextFormError, match="expected text, got bytes"):
        decode_text(b"OC1:ABC")  # type: ignore[arg-type]


def test_oversized_text_is_refused() -> None:
    with pytest.raises(TextFormError, match="too long"):
        decode_text(BASE45_PREFIX + "0" * (MAX_MESSAGE_BYTES * 2))
    with pytest.raises(TextFormError, match="too long"):
        decode_text(BASE64URL_PREFIX + "A" * (MAX_MESSAGE_BYTES * 2))


def test_encode_rejects_caller_errors() -> None:
    with pytest.raises(ValueError, match="empty"):
        encode_text(b"")
    with pytest.raises(ValueError, match="unknown text form"):
        encode_text(b"x", "base32")  # type: ignore[arg-type]


@given(st.binary(min_size=1, max_size=2048), st.sampled_from(FORMS))
def test_round_trip_property(data: bytes, form: TextForm) -> None:
    text = encode_text(data, form)
    assert decode_text(text) == data
    assert not text.endswith((" ", "\n"))  # so stripping surrounding whitespace is lossless
    assert decode_text("\n " + text + " \n") == data


@given(st.binary(min_size=1, max_size=256))
def test_base64url_form_matches_rfc4648(data: bytes) -> None:
    body = encode_text(data, "base64url").removeprefix(BASE64URL_PREFIX)
    assert base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)) == data


@given(
    st.sampled_from(["", BASE45_PREFIX, BASE64URL_PREFIX, " OC1", "OC1B"]),
    st.text(max_size=64),
)
def test_arbitrary_text_raises_only_text_form_error(prefix: str, body: str) -> None:
    try:
        data = decode_text(prefix + body)
    except TextFormError:
        return
    assert isinstance(data, bytes) and data
