"""Text forms of an offcash message, for copy/paste, chat and e-mail.

Theory of operation: this module owns the mapping between an opaque message (``bytes``) and a
single printable string, and nothing else. It must never look inside the bytes: whether they
are a valid COSE_Sign1, who signed them or what they pay is the protocol layer's business.

Two forms exist, told apart by a fixed prefix so a reader needs no out-of-band hint:

* ``OC1:`` + base45 (RFC 9285). The base45 alphabet is the QR alphanumeric set, so this form
  is compact in a QR code and survives most text channels. It contains spaces, so only
  surrounding whitespace and embedded line breaks/tabs are removed before decoding, never
  inner spaces. A canonical base45 string never ends in a space, so stripping is safe.
* ``OC1B64:`` + base64url without padding (RFC 4648 section 5). No spaces at all, so any
  whitespace anywhere (line wrapping by a mail client, indentation) is ignored.

Decoding is strict: a non-canonical encoding (base64url with non-zero trailing bits, base45
triples above 0xFFFF) is refused, so every message has exactly one text form per encoding.
Every failure is a :class:`TextFormError`; no other exception escapes :func:`decode_text`.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Final, Literal

import base45

from offcash.errors import TransportError

__all__ = [
    "BASE45_PREFIX",
    "BASE64URL_PREFIX",
    "MAX_MESSAGE_BYTES",
    "TEXT_PREFIXES",
    "TextForm",
    "TextFormError",
    "decode_text",
    "encode_text",
    "has_text_prefix",
]

TextForm = Literal["base45", "base64url"]

#: Prefix of the base45 form (mirrors the ``HC1:`` of EU digital COVID certificates).
BASE45_PREFIX: Final = "OC1:"
#: Prefix of the base64url form.
BASE64URL_PREFIX: Final = "OC1B64:"
#: Every text form and its prefix.
TEXT_PREFIXES: Final[dict[TextForm, str]] = {
    "base45": BASE45_PREFIX,
    "base64url": BASE64URL_PREFIX,
}

#: Largest message accepted by :func:`decode_text` (and by the QR frame codec); messages are
#: at most a few KB, this bound only stops a hostile input from costing unbounded work.
MAX_MESSAGE_BYTES: Final = 256 * 1024

_BASE45_BODY = re.compile(r"[0-9A-Z $%*+\-./:]*")
_BASE64URL_BODY = re.compile(r"[A-Za-z0-9_-]*")
_LINE_BREAKS = re.compile(r"[\r\n\t\v\f]+")
_WHITESPACE = re.compile(r"\s+")


class TextFormError(TransportError):
    """A text could not be read as an offcash message in one of the text forms."""

    code = "transport-text"


def encode_text(data: bytes, form: TextForm = "base45") -> str:
    """Return the text form of ``data``: ``OC1:`` + base45, or ``OC1B64:`` + base64url.

    Raises ``ValueError`` for an empty message or an unknown ``form`` (caller errors).
    """
    if not data:
        raise ValueError("cannot encode an empty message")
    if form == "base45":
        return BASE45_PREFIX + bytes(base45.b45encode(bytes(data))).decode("ascii")
    if form == "base64url":
        body = base64.urlsafe_b64encode(bytes(data)).rstrip(b"=").decode("ascii")
        return BASE64URL_PREFIX + body
    raise ValueError(f"unknown text form {form!r}; expected 'base45' or 'base64url'")


def has_text_prefix(text: str) -> bool:
    """Tell whether ``text`` (after surrounding whitespace) starts with a known text prefix."""
    stripped = text.strip()
    return any(stripped.startswith(prefix) for prefix in TEXT_PREFIXES.values())


def decode_text(text: str) -> bytes:
    """Decode a text form produced by :func:`encode_text`, detecting the form by its prefix.

    Surrounding whitespace is ignored, and so are embedded line breaks (and, for base64url,
    any whitespace). Raises :class:`TextFormError` for anything else: not a ``str``, unknown
    prefix, bad characters, truncated or non-canonical encoding, empty or oversized message.
    """
    if not isinstance(text, str):
        raise TextFormError(f"expected text, got {type(text).__name__}")
    stripped = text.strip().removeprefix("\ufeff").strip()
    if stripped.startswith(BASE64URL_PREFIX):
        body = _WHITESPACE.sub("", stripped[len(BASE64URL_PREFIX) :])
        data = _decode_base64url(body)
    elif stripped.startswith(BASE45_PREFIX):
        body = _LINE_BREAKS.sub("", stripped[len(BASE45_PREFIX) :])
        data = _decode_base45(body)
    else:
        shown = stripped[:12] + ("..." if len(stripped) > 12 else "")
        raise TextFormError(
            f"not an offcash text message: expected prefix {BASE45_PREFIX!r} or "
            f"{BASE64URL_PREFIX!r}, got {shown!r}"
        )
    if not data:
        raise TextFormError("empty message after the text prefix")
    return data


def _decode_base45(body: str) -> bytes:
    if len(body) > MAX_MESSAGE_BYTES * 3 // 2 + 2:
        raise TextFormError(f"base45 text too long ({len(body)} characters)")
    bad = _first_bad_char(body, _BASE45_BODY)
    if bad is not None:
        raise TextFormError(f"invalid base45 character {body[bad]!r} at position {bad}")
    if len(body) % 3 == 1:
        raise TextFormError(f"truncated base45 text: {len(body)} characters is not a valid length")
    try:
        data = bytes(base45.b45decode(body))
    except ValueError:
        raise TextFormError("invalid base45 text: a group encodes a value out of range") from None
    return data


def _decode_base64url(body: str) -> bytes:
    if len(body) > MAX_MESSAGE_BYTES * 4 // 3 + 4:
        raise TextFormError(f"base64url text too long ({len(body)} characters)")
    bad = _first_bad_char(body, _BASE64URL_BODY)
    if bad is not None:
        raise TextFormError(f"invalid base64url character {body[bad]!r} at position {bad}")
    if len(body) % 4 == 1:
        raise TextFormError(
            f"truncated base64url text: {len(body)} characters is not a valid length"
        )
    try:
        data = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - excluded by checks above
        raise TextFormError(f"invalid base64url text: {exc}") from None
    if base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii") != body:
        raise TextFormError("non-canonical base64url text (non-zero trailing bits)")
    return data


def _first_bad_char(body: str, allowed: re.Pattern[str]) -> int | None:
    match = allowed.match(body)
    end = match.end() if match else 0
    return None if end == len(body) else end
