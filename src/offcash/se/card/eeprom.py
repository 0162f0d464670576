"""The card's persistent memory: its PIN and PUK records and the secure element's state.

Theory of operation: a smart card keeps its application's data in EEPROM that only the card's
own code reads. ``CardImage`` is that memory for the offcash applet: the PIN and PUK reference
data (salted HMAC-SHA256, compared in constant time), their retry counters, and the software
secure element's state (``SEState`` bytes; None on a blank card, before PERSONALISE).
``encode`` writes it as deterministic CBOR and ``decode`` reads it back strictly (a damaged
image is a ``SecureElementError``). ``FileEeprom`` keeps the image in one file, replaced
atomically (``offcash.se.storage.atomic_write``), so that a retry counter decremented before a
PIN comparison survives a power cut at any instant.

The image is not encrypted under the PIN, on purpose: a PIN-sealed file (``SealedFile``) can
be copied and attacked offline at the speed of the key derivation; the card's PIN is instead
guarded by its retry counter, and its memory by the chip. In this emulation the "chip" is a
file of the host (mode 0600): root or a thief of the disk reads the key and state in it, which
a real card's EEPROM does not allow (docs/SECURITY.md).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from offcash.encoding import cbor
from offcash.encoding.fields import bstr, uint
from offcash.errors import DecodeError, OffcashError, SecureElementError
from offcash.se.filelock import exclusive, lock_path
from offcash.se.storage import atomic_write

#: Wrong PIN presentations before the PIN blocks; wrong PUK presentations before the card dies.
PIN_TRIES = 3
PUK_TRIES = 10
PIN_MIN, PIN_MAX = 4, 16
PUK_LENGTH = 8
_VERSION = 1
_SALT = 16
#: ``FileEeprom`` before its first read: it writes without comparing (a new card's file).
_UNREAD = object()


def check_pin(pin: bytes, what: str = "PIN") -> bytes:
    """``pin`` if it is a valid PIN: 4..16 printable ASCII bytes (``ValueError`` if not)."""
    if type(pin) is not bytes:
        raise TypeError(f"{what} must be bytes, not {type(pin).__name__}")
    if not PIN_MIN <= len(pin) <= PIN_MAX or not all(0x20 < b < 0x7F for b in pin):
        raise ValueError(f"a {what} is {PIN_MIN} to {PIN_MAX} printable ASCII characters")
    return pin


def check_puk(puk: bytes) -> bytes:
    """``puk`` if it is a valid PUK: exactly 8 ASCII digits."""
    if type(puk) is not bytes or len(puk) != PUK_LENGTH or not puk.isdigit():
        raise ValueError(f"a PUK is exactly {PUK_LENGTH} digits")
    return puk


@dataclass
class CardImage:
    """Everything the card keeps between power cycles."""

    salt: bytes
    pin_mac: bytes
    pin_tries: int
    puk_mac: bytes
    puk_tries: int
    state: bytes

    @classmethod
    def personalise(cls, pin: bytes, puk: bytes, state: bytes) -> CardImage:
        """A new image holding ``state``, with ``pin`` and ``puk`` and full retry counters."""
        salt = os.urandom(_SALT)
        return cls(
            salt,
            _mac(salt, b"PIN", check_pin(pin)),
            PIN_TRIES,
            _mac(salt, b"PUK", check_puk(puk)),
            PUK_TRIES,
            state,
        )

    def pin_matches(self, pin: bytes) -> bool:
        """Whether ``pin`` is the PIN (constant time; the caller counts the try first)."""
        return hmac.compare_digest(_mac(self.salt, b"PIN", pin), self.pin_mac)

    def puk_matches(self, puk: bytes) -> bool:
        """Whether ``puk`` is the PUK (constant time; the caller counts the try first)."""
        return hmac.compare_digest(_mac(self.salt, b"PUK", puk), self.puk_mac)

    def set_pin(self, pin: bytes) -> None:
        """Replace the PIN and reset its retry counter."""
        self.pin_mac = _mac(self.salt, b"PIN", check_pin(pin))
        self.pin_tries = PIN_TRIES

    def encode(self) -> bytes:
        """The image as deterministic CBOR."""
        return cbor.encode(
            [
                _VERSION,
                self.salt,
                self.pin_mac,
                self.pin_tries,
                self.puk_mac,
                self.puk_tries,
                self.state,
            ]
        )

    @classmethod
    def decode(cls, data: bytes) -> CardImage:
        """The image from ``encode``'s bytes; ``SecureElementError`` if unreadable."""
        try:
            v: Any = cbor.decode(data, path="card", max_bytes=64 * 1024 * 1024)
            if type(v) is not list or len(v) != 7 or v[0] != _VERSION:
                raise DecodeError("card", "not a version 1 card image")
            return cls(
                salt=bstr(_SALT, _SALT)(v[1], "card.salt"),
                pin_mac=bstr(32, 32)(v[2], "card.pin"),
                pin_tries=uint(PIN_TRIES)(v[3], "card.pin_tries"),
                puk_mac=bstr(32, 32)(v[4], "card.puk"),
                puk_tries=uint(PUK_TRIES)(v[5], "card.puk_tries"),
                state=bstr(1, 64 * 1024 * 1024)(v[6], "card.state"),
            )
        except OffcashError as exc:
            raise SecureElementError(f"the card's memory is unreadable: {exc}") from None


def _mac(salt: bytes, label: bytes, secret: bytes) -> bytes:
    return hmac.new(salt, label + b"\x00" + secret, hashlib.sha256).digest()


class Eeprom(Protocol):
    """Where a card keeps its image."""

    def read(self) -> bytes | None:
        """The image's bytes, None on a blank card."""

    def write(self, image: bytes) -> None:
        """Replace the image atomically and durably."""


class FileEeprom:
    """A card's memory in one file (mode 0600), replaced atomically.

    A chip is one: two card processes over one file would each keep the image they read and
    write it back, a clone (the money spent by one spent again by the other, three PIN tries
    in each). So ``write`` holds the file's chip lock and refuses (``SecureElementError``) to
    replace an image that is no longer the one this object last read or wrote."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: bytes | object | None = _UNREAD

    def _current(self) -> bytes | None:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return None

    def read(self) -> bytes | None:
        """The file's bytes, None if it does not exist (a blank card)."""
        image = self._current()
        self._seen = image
        return image

    def write(self, image: bytes) -> None:
        """Replace the file atomically (a crash leaves the old image or the new one)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with exclusive(lock_path(self.path.with_name(self.path.name + ".chip"))):
            if self._seen is not _UNREAD and self._current() != self._seen:
                raise SecureElementError(
                    f"the card memory {self.path} was changed by another card process: "
                    "this one refuses to overwrite it (restart the card)"
                )
            atomic_write(self.path, image)
            os.chmod(self.path, 0o600)
            self._seen = image


class MemoryEeprom:
    """A card's memory in RAM (benchmarks, the applet's own tests)."""

    def __init__(self, image: bytes | None = None) -> None:
        self.image = image

    def read(self) -> bytes | None:
        """The image, None on a blank card."""
        return self.image

    def write(self, image: bytes) -> None:
        """Replace the image."""
        self.image = image
