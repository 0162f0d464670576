"""Message files: write a message in the form its destination asks for, read any form back.

Theory of operation: this module owns the choice of form (QR image, terminal QR, text, raw
bytes) from a destination name when writing, and from the content (never the name) when
reading, so a file renamed or sent through a chat still reads. It delegates the forms to
:mod:`offcash.transports.qr` and :mod:`offcash.transports.text` and, like them, must never
know what the bytes mean.

Reading detects, in this order:

1. PNG (``89 50 4E 47 0D 0A 1A 0A``) or JPEG (``FF D8 FF``) magic: QR code(s) in an image, a
   render or a camera photo;
2. UTF-8 text whose first non-blank line starts with a text prefix (``OC1:``/``OC1B64:``),
   or containing such a line: the text form. The second case reads back what
   ``write_message(data, "-")`` prints (terminal QR, then the text) and pasted chat text;
3. anything else: the raw message bytes. A signed message (COSE_Sign1, CBOR tag 18 or an
   array of 4) starts with ``0xD2`` or ``0x84``, so it is never mistaken for 1 or 2.

Writes are atomic (temporary file, fsync, ``os.replace``), created readable by the owner
only; write failures raise ``OSError``. Every read failure is a :class:`TransportError`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import IO, Final, Literal, TextIO

from offcash.errors import TransportError
from offcash.transports._atomic import atomic_write
from offcash.transports.text import (
    TEXT_PREFIXES,
    decode_text,
    encode_text,
    has_text_prefix,
)

__all__ = [
    "MAX_INPUT_BYTES",
    "Destination",
    "EmptySource",
    "SourceError",
    "SourceForm",
    "SourceNotFound",
    "SourceTooLarge",
    "decode_content",
    "destination_form",
    "detect_form",
    "read_message",
    "write_message",
]

#: Largest input read (an image with 255 frames at the default scale is about 1 MB).
MAX_INPUT_BYTES: Final = 32 * 1024 * 1024

PNG_MAGIC: Final = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC: Final = b"\xff\xd8\xff"

#: Form written for a destination.
Destination = Literal["png", "terminal", "text", "raw"]
#: Form detected in a source's content.
SourceForm = Literal["image", "text", "raw"]


class SourceError(TransportError):
    """A message source (file or standard input) cannot be read."""

    code = "transport-source"


class SourceNotFound(SourceError):
    """The message file does not exist."""

    code = "transport-source-not-found"


class EmptySource(SourceError):
    """The message source is empty."""

    code = "transport-empty-source"


class SourceTooLarge(SourceError):
    """The message source is larger than :data:`MAX_INPUT_BYTES`."""

    code = "transport-source-too-large"


def destination_form(dest: str | os.PathLike[str]) -> Destination:
    """Return the form :func:`write_message` uses for ``dest``.

    ``-`` is the terminal; a ``.png`` suffix a QR image; ``.txt`` base45 text; else raw bytes
    (suffixes compared case-insensitively).
    """
    if os.fspath(dest) == "-":
        return "terminal"
    suffix = Path(dest).suffix.lower()
    if suffix == ".png":
        return "png"
    if suffix == ".txt":
        return "text"
    return "raw"


def write_message(
    data: bytes, dest: str | os.PathLike[str], *, stdout: TextIO | None = None
) -> None:
    """Write ``data`` to ``dest`` in the form :func:`destination_form` chooses.

    For ``-`` the QR code(s) are printed to ``stdout`` (default ``sys.stdout``) followed by
    the base45 text, so the message can be scanned or copy-pasted. Files are written
    atomically. Raises ``ValueError`` for an empty message and ``OSError`` on write failure.
    """
    data = bytes(data)
    if not data:
        raise ValueError("cannot write an empty message")
    form = destination_form(dest)
    if form == "terminal":
        from offcash.transports.qr import render_terminal  # the QR stack loads only when used

        out = sys.stdout if stdout is None else stdout
        out.write(render_terminal(data))
        out.write("\n" + encode_text(data) + "\n")
        out.flush()
    elif form == "png":
        from offcash.transports.qr import write_png

        write_png(data, dest)
    elif form == "text":
        atomic_write(dest, (encode_text(data) + "\n").encode("ascii"))
    else:
        atomic_write(dest, data)


def detect_form(content: bytes) -> SourceForm:
    """Tell which form ``content`` is in (see the module documentation for the rules)."""
    if content.startswith((PNG_MAGIC, JPEG_MAGIC)):
        return "image"
    if _text_message(content) is not None:
        return "text"
    return "raw"


def _text_message(content: bytes) -> str | None:
    """Return the text-form part of ``content``, or ``None`` if it has none."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    if has_text_prefix(text):
        return text
    lines = text.splitlines(keepends=True)
    for index, line in enumerate(lines):
        if line.lstrip().startswith(tuple(TEXT_PREFIXES.values())):
            return "".join(lines[index:])
    return None


def decode_content(content: bytes, *, name: str = "<input>") -> bytes:
    """Return the message held by ``content``, in whichever form it is.

    Raises :class:`EmptySource` or the errors of the QR and text readers.
    """
    if not content:
        raise EmptySource(f"{name}: empty input")
    if content.startswith((PNG_MAGIC, JPEG_MAGIC)):
        from offcash.transports.qr import decode_image

        return decode_image(content, name=name)
    text = _text_message(content)
    if text is not None:
        return decode_text(text)
    return content


def _read_limited(stream: IO[bytes], name: str) -> bytes:
    content = stream.read(MAX_INPUT_BYTES + 1)
    if len(content) > MAX_INPUT_BYTES:
        raise SourceTooLarge(f"{name}: larger than {MAX_INPUT_BYTES} bytes")
    return content


def read_message(
    source: str | os.PathLike[str], *, stdin: IO[bytes] | IO[str] | None = None
) -> bytes:
    """Read a message from a file, or from standard input for ``-``, detecting its form.

    ``stdin`` (default ``sys.stdin``) may be a text or binary stream; its content is detected
    like a file's, so text, raw bytes and even a piped image work. Raises
    :class:`SourceNotFound`, :class:`SourceError`, :class:`EmptySource`,
    :class:`SourceTooLarge`, or the errors of the QR and text readers; nothing else.
    """
    name = os.fspath(source)
    if name == "-":
        content = _read_stdin(sys.stdin if stdin is None else stdin)
        return decode_content(content, name="<stdin>")
    try:
        with open(source, "rb") as handle:
            content = _read_limited(handle, name)
    except FileNotFoundError:
        raise SourceNotFound(f"{name}: no such file") from None
    except IsADirectoryError:
        raise SourceError(f"{name}: is a directory") from None
    except OSError as exc:
        raise SourceError(f"{name}: cannot read ({exc.strerror or exc})") from exc
    return decode_content(content, name=name)


def _read_stdin(stream: IO[bytes] | IO[str]) -> bytes:
    binary = getattr(stream, "buffer", None)
    try:
        if binary is not None:
            return _read_limited(binary, "<stdin>")
        raw = stream.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise SourceError(f"<stdin>: cannot read ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise SourceError(f"<stdin>: not valid text ({exc.reason})") from exc
    content = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)
    if len(content) > MAX_INPUT_BYTES:
        raise SourceTooLarge(f"<stdin>: larger than {MAX_INPUT_BYTES} bytes")
    return content
