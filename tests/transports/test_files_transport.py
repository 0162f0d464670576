"""Tests of message files and form detection (offcash.transports.files)."""

from __future__ import annotations

import io
import os
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offcash.errors import TransportError
from offcash.transports.files import (
    EmptySource,
    SourceError,
    SourceNotFound,
    decode_content,
    destination_form,
    detect_form,
    read_message,
    write_message,
)
from offcash.transports.qr import ImageError, NoQrCode, render_png
from offcash.transports.text import TextFormError, encode_text

# Starts like a COSE_Sign1 (CBOR tag 18), as real messages do.
MESSAGE = b"\xd2\x84" + random.Random(560).randbytes(558)


@pytest.mark.parametrize(
    ("dest", "form"),
    [
        ("-", "terminal"),
        (Path("-"), "terminal"),
        ("pay.png", "png"),
        ("dir/PAY.PNG", "png"),
        (Path("pay.txt"), "text"),
        ("pay.TXT", "text"),
        ("pay.cose", "raw"),
        ("pay.bin", "raw"),
        ("pay", "raw"),
        ("png", "raw"),
    ],
)
def test_destination_form(dest: str | Path, form: str) -> None:
    assert destination_form(dest) == form


@pytest.mark.parametrize(
    ("name", "detected"),
    [("m.png", "image"), ("m.txt", "text"), ("m.cose", "raw"), ("m", "raw")],
)
def test_each_form_round_trips_through_a_file(tmp_path: Path, name: str, detected: str) -> None:
    path = tmp_path / name
    write_message(MESSAGE, path)
    content = path.read_bytes()
    assert detect_form(content) == detected
    assert read_message(path) == MESSAGE
    assert read_message(str(path)) == MESSAGE
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary file left


def test_text_file_holds_base45(tmp_path: Path) -> None:
    path = tmp_path / "m.txt"
    write_message(MESSAGE, path)
    assert path.read_text() == encode_text(MESSAGE) + "\n"


def test_raw_file_holds_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / "m.cose"
    write_message(MESSAGE, path)
    assert path.read_bytes() == MESSAGE


def test_detection_is_by_content_not_name(tmp_path: Path) -> None:
    as_text = tmp_path / "really-a-png.txt"
    as_text.write_bytes(render_png(MESSAGE))
    assert read_message(as_text) == MESSAGE
    as_bin = tmp_path / "really-text.bin"
    as_bin.write_text(encode_text(MESSAGE, "base64url"))
    assert read_message(as_bin) == MESSAGE


def test_terminal_output_and_reading_it_back() -> None:
    out = io.StringIO()
    write_message(MESSAGE, "-", stdout=out)
    printed = out.getvalue()
    assert "\u2588" in printed  # the QR drawing
    assert printed.endswith("\n" + encode_text(MESSAGE) + "\n")  # then the copy-paste text
    assert read_message("-", stdin=io.StringIO(printed)) == MESSAGE


def test_stdin_forms() -> None:
    assert read_message("-", stdin=io.StringIO("  " + encode_text(MESSAGE) + "\n")) == MESSAGE
    assert read_message("-", stdin=io.BytesIO(MESSAGE)) == MESSAGE
    assert read_message("-", stdin=io.BytesIO(render_png(MESSAGE))) == MESSAGE
    with pytest.raises(EmptySource):
        read_message("-", stdin=io.StringIO(""))


def test_pasted_chat_text_with_a_greeting_line() -> None:
    pasted = f"Here is my payment:\n{encode_text(MESSAGE, 'base64url')}\n"
    assert detect_form(pasted.encode()) == "text"
    assert decode_content(pasted.encode()) == MESSAGE


def test_write_replaces_atomically(tmp_path: Path) -> None:
    path = tmp_path / "m.cose"
    path.write_bytes(b"old")
    write_message(MESSAGE, path)
    assert path.read_bytes() == MESSAGE
    assert os.stat(path).st_mode & 0o077 == 0  # owner-only
    assert [p.name for p in tmp_path.iterdir()] == ["m.cose"]


def test_write_failures_are_local_errors(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        write_message(MESSAGE, tmp_path / "no-such-dir" / "m.txt")
    with pytest.raises(ValueError, match="empty"):
        write_message(b"", tmp_path / "m.cose")
    assert list(tmp_path.iterdir()) == []


def test_missing_unreadable_and_empty_sources(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFound, match="no such file"):
        read_message(tmp_path / "absent.cose")
    with pytest.raises(SourceError, match="is a directory"):
        read_message(tmp_path)
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(EmptySource, match="empty input"):
        read_message(empty)


def test_bad_contents_give_typed_errors(tmp_path: Path) -> None:
    cases: list[tuple[bytes, type[TransportError]]] = [
        (b"\x89PNG\r\n\x1a\n" + os.urandom(500), ImageError),
        (b"\xff\xd8\xff" + os.urandom(500), ImageError),
        (encode_text(MESSAGE)[:-2].encode(), TextFormError),  # truncated: impossible length
        (b"OC1B64:not*base64", TextFormError),
        (_blank_png(), NoQrCode),
    ]
    for index, (content, error) in enumerate(cases):
        path = tmp_path / f"case-{index}"
        path.write_bytes(content)
        with pytest.raises(error):
            read_message(path)


def test_unprefixed_text_is_raw_bytes() -> None:
    assert detect_form(b"hello") == "raw"
    assert decode_content(b"hello") == b"hello"


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(
        [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"OC1:", b"OC1B64:", b"\n x\nOC1:"]
    ),
    st.binary(max_size=200),
)
def test_any_content_reads_or_raises_a_transport_error(prefix: bytes, body: bytes) -> None:
    content = prefix + body
    try:
        data = decode_content(content)
    except TransportError:
        return
    assert isinstance(data, bytes) and data


def _blank_png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (64, 64), 255).save(buffer, format="PNG")
    return buffer.getvalue()
