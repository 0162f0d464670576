"""A card wallet's card for the CLI: find or insert the card, open a PC/SC session, present the PIN.

Theory of operation: a card wallet's card sits either in a physical reader named in the wallet
registry or, by default, in a vpcd slot as a card process (``offcash.card.process``, started
here when it is not running: the card is "inserted" on first use). ``session`` opens one PC/SC
channel per reader for the life of the command (it holds a PC/SC transaction, so another
process's APDUs never interleave with ours: a second command waits for this one to end),
selects the application, authenticates the card against its wallet's certificates (INTERNAL
AUTHENTICATE: a card that fails gets no PIN, ``CardNotAuthenticated``) and presents the PIN
once per PIN given; ``card`` authenticates it without a PIN (for the PIN and PUK commands).
A session whose card was pulled out (a long-running command: ``offcash pos``) is opened
again at its next use, so the card then in the reader is authenticated before it gets the PIN.
``close_all`` (at exit) ends the transactions and resets the cards, which ends their PIN
sessions.
"""

from __future__ import annotations

import atexit
import secrets
from dataclasses import dataclass
from pathlib import Path

from offcash.card import process
from offcash.card.pcsc import PcscChannel
from offcash.domain.network import NetworkParams
from offcash.se.card.host import CardSecureElement


@dataclass
class _Session:
    channel: PcscChannel
    se: CardSecureElement
    pin: str | None = None
    #: the certificates the card proved it holds a key of (None: not authenticated yet)
    certificates: list[bytes] | None = None


_SESSIONS: dict[str, _Session] = {}


def reader_of(root: Path, wallet: str, eeprom: Path, reader: str | None) -> str:
    """The reader holding ``wallet``'s card: ``reader`` (a physical one) if given, else the
    vpcd slot its card process sits in (inserted now if it was not)."""
    if reader is not None:
        return reader
    return process.start(root, wallet, eeprom).reader


def _open(reader: str) -> _Session:
    current = _SESSIONS.get(reader)
    if current is not None and not current.channel.connected():
        close(reader)  # the card was pulled out since: what is there now authenticates anew
        current = None
    if current is None:
        channel = PcscChannel(reader)
        try:
            current = _Session(channel, CardSecureElement(channel))
        except BaseException:
            channel.close()
            raise
        _SESSIONS[reader] = current
    return current


def card(reader: str, certificates: list[bytes]) -> CardSecureElement:
    """The card in ``reader``, authenticated: it proved it holds the key of one of
    ``certificates`` (its wallet's), else ``CardNotAuthenticated`` and the session is closed.
    No PIN is presented (the PIN and PUK commands, and PIN tries left)."""
    s = _open(reader)
    if s.certificates != certificates:
        try:
            s.se.authenticate(certificates)
        except BaseException:
            close(reader)
            raise
        s.certificates = list(certificates)
    return s.se


def session(reader: str, pin: str, certificates: list[bytes]) -> CardSecureElement:
    """The card in ``reader``, authenticated (``card``), then its PIN verified
    (``WrongPin``, ``PinBlocked`` if not)."""
    card(reader, certificates)
    s = _SESSIONS[reader]
    if s.pin != pin:
        s.pin = None
        s.se.verify(pin)
        s.pin = pin
    return s.se


def personalise(
    reader: str, params: NetworkParams, root_certificate: bytes, pin: str
) -> tuple[CardSecureElement, str]:
    """Personalise the blank card in ``reader`` with ``pin`` and a new random PUK, and verify
    the PIN; returns the card and the PUK (shown once to the owner: it unblocks the PIN). A
    blank card has no key to authenticate: the PIN goes to whatever blank card answers
    (docs/SECURITY.md); the next session authenticates it against its first certificate."""
    puk = f"{secrets.randbelow(10**8):08d}"
    s = _open(reader)
    s.se.personalise(params, root_certificate, pin, puk)
    s.pin = None
    s.se.verify(pin)
    s.pin = pin
    return s.se, puk


def close(reader: str) -> None:
    """End the session with the card in ``reader`` (if open): its PIN must be given again."""
    s = _SESSIONS.pop(reader, None)
    if s is not None:
        s.channel.close()


@atexit.register
def close_all() -> None:
    """End every session (the cards are reset: their PIN sessions end)."""
    for reader in list(_SESSIONS):
        close(reader)
