"""Transports: move an opaque offcash message (``bytes``) between devices, people and files.

Theory of operation: a transport turns bytes into a carrier (text, QR codes, an image, a file)
and the carrier back into exactly the same bytes, or raises a
:class:`~offcash.errors.TransportError`. Transports never parse, verify or trust the
message; the protocol layer does that with the bytes they return.

* :mod:`~offcash.transports.text`: ``OC1:`` base45 and ``OC1B64:`` base64url text;
* :mod:`~offcash.transports.qr`: framed multi-code QR images and terminal QR;
* :mod:`~offcash.transports.files`: pick the form from a destination name, detect it from
  content when reading.

The QR names are re-exported lazily (PEP 562): importing the package or its text and file
forms does not load the QR stack (zxing-cpp, Pillow), so offline commands that read or
write text start faster; ``files`` imports it only for an image or the terminal.
"""

from typing import Any

from offcash.transports.files import (
    EmptySource,
    SourceError,
    SourceNotFound,
    SourceTooLarge,
    decode_content,
    destination_form,
    detect_form,
    read_message,
    write_message,
)
from offcash.transports.text import (
    BASE45_PREFIX,
    BASE64URL_PREFIX,
    TextForm,
    TextFormError,
    decode_text,
    encode_text,
)

__all__ = [
    "BASE45_PREFIX",
    "BASE64URL_PREFIX",
    "FRAME_BUDGET",
    "ConflictingFrames",
    "CorruptMessage",
    "EmptySource",
    "FrameAssembler",
    "ImageError",
    "MalformedFrame",
    "MissingFrames",
    "MixedFrames",
    "NoFrames",
    "NoQrCode",
    "QrError",
    "SourceError",
    "SourceNotFound",
    "SourceTooLarge",
    "TextForm",
    "TextFormError",
    "decode_content",
    "decode_frames",
    "decode_image",
    "decode_text",
    "destination_form",
    "detect_form",
    "encode_frames",
    "encode_text",
    "read_images",
    "read_message",
    "read_png",
    "render_frame_images",
    "render_image",
    "render_png",
    "render_terminal",
    "write_message",
    "write_png",
]

_QR_NAMES = frozenset(
    {
        "FRAME_BUDGET",
        "ConflictingFrames",
        "CorruptMessage",
        "FrameAssembler",
        "ImageError",
        "MalformedFrame",
        "MissingFrames",
        "MixedFrames",
        "NoFrames",
        "NoQrCode",
        "QrError",
        "decode_frames",
        "decode_image",
        "encode_frames",
        "read_images",
        "read_png",
        "render_frame_images",
        "render_image",
        "render_png",
        "render_terminal",
        "write_png",
    }
)


def __getattr__(name: str) -> Any:
    if name in _QR_NAMES:
        from offcash.transports import qr

        return getattr(qr, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
