"""A card wallet's card for the CLI: find or insert the card, open a PC/SC session, present the PIN.

Theory of operation: a card wallet's card sits either in a physical reader named in the wallet
registry or, by default, in a vpcd slot as a card process (``offcash.card.process``, started
here when it is not running: the card is "inserted" on first use). ``session`` opens one PC/SC
channel per reader for the life of the command (it holds a PC/SC transaction, so another
process's APDUs never interleave with ours: a second command waits for this one to end),
selects the application and presents the PIN once per PIN given; ``close_all`` (at exit)
ends the transactions and resets the cards, which ends their PIN sessions.
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


_SESSIONS: dict[str, _Session] = {}


def reader_of(root: Path, wallet: str, eeprom: Path, reader: str | None) -> str:
    """The reader holding ``wallet``'s card: ``reader`` (a physical one) if given, else the
    vpcd slot its card process sits in (inserted now if it was not)."""
    if reader is not None:
        return reader
    return process.start(root, wallet, eeprom).reader


def _open(reader: str) -> _Session:
    current = _SESSIONS.get(reader)
    if current is None:
        channel = PcscChannel(reader)
        try:
            current = _Session(channel, CardSecureElement(channel))
        except BaseException:
            channel.close()
            raise
        _SESSIONS[reader] = current
    return current


def session(reader: str, pin: str) -> CardSecureElement:
    """The card in ``reader``, its PIN verified (``WrongPin``, ``PinBlocked`` if not)."""
    s = _open(reader)
    if s.pin != pin:
        s.pin = None
        s.se.verify(pin)
        s.pin = pin
    return s.se


def personalise(reader: str, params: NetworkParams, root_certificate: bytes, pin: str) -> str:
    """Personalise the blank card in ``reader`` with ``pin`` and a new random PUK, and verify
    the PIN; returns the PUK (shown once to the owner: it unblocks the PIN)."""
    puk = f"{secrets.randbelow(10**8):08d}"
    s = _open(reader)
    s.se.personalise(params, root_certificate, pin, puk)
    s.pin = None
    session(reader, pin)
    return puk


def card(reader: str) -> CardSecureElement:
    """The card in ``reader`` without presenting a PIN (PIN and PUK commands)."""
    return _open(reader).se


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
