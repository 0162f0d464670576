"""Card processes: one virtual card per card wallet, inserted in a free vpcd reader slot.

Theory of operation: a card wallet's card is a process of its own (``python -m offcash.card``)
running the ``Applet`` over the wallet's card memory (``wallets/NAME.card``, a ``FileEeprom``)
and connected to vsmartcard's vpcd (``offcash.card.link.insert``): for pcscd and every PC/SC
application, a card in the reader ``Virtual PCD 00 0N``. vpcd has a fixed number of slots (2
on Debian's default ``/etc/reader.conf.d/vpcd``), one TCP port each from 35963; ``start``
picks a slot whose reader holds no card, spawns the process, waits until pcscd sees the card,
and records ``cards/NAME.json`` (pid, slot, reader) in the network folder. ``stop`` ends that
process (by its recorded pid, checked to be a card process) and removes the record; ``running``
reads the records, dropping those whose process is gone. Starting and stopping hold the folder's
card lock, so two commands never put two cards in one slot.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from offcash.card import pcsc
from offcash.card.link import VPCD_PORT
from offcash.errors import SecureElementError
from offcash.se.filelock import exclusive, lock_path

CARDS_DIR = "cards"
#: vpcd's reader names: "Virtual PCD" then the reader and slot numbers.
VPCD_READER = "Virtual PCD"
_START_TIMEOUT = 20.0


@dataclass
class CardProcess:
    """A running card: the wallet, its process id, vpcd slot and PC/SC reader name."""

    wallet: str
    pid: int
    slot: int
    reader: str
    eeprom: str


def _records(root: Path) -> Path:
    return root / CARDS_DIR


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a live card process (not a recycled pid of something else)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"offcash.card" in cmdline  # a zombie's command line is empty


def running(root: Path) -> dict[str, CardProcess]:
    """The card processes recorded for the network in ``root`` that still run."""
    out: dict[str, CardProcess] = {}
    folder = _records(root)
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.json")):
        try:
            card = CardProcess(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            continue
        if _alive(card.pid):
            out[card.wallet] = card
    return out


def vpcd_slots() -> dict[int, str]:
    """vpcd's reader slots pcscd lists: slot number -> reader name."""
    slots = {}
    for name in pcsc.readers():
        if name.startswith(VPCD_READER):
            try:
                slots[int(name.rsplit(" ", 1)[1])] = name
            except ValueError:
                continue
    return slots


def start(root: Path, wallet: str, eeprom: Path) -> CardProcess:
    """Insert wallet ``wallet``'s card (memory ``eeprom``) into a free vpcd slot, or return
    its running card process."""
    folder = _records(root)
    folder.mkdir(mode=0o700, exist_ok=True)
    with exclusive(lock_path(folder / "cards")):
        current = running(root).get(wallet)
        if current is not None:
            return current
        slots = vpcd_slots()
        if not slots:
            raise SecureElementError(
                "no vpcd reader: install vsmartcard-vpcd and start pcscd (see README, card wallets)"
            )
        taken = {c.slot for c in running(root).values()}
        free = [s for s in sorted(slots) if s not in taken and not pcsc.card_present(slots[s])]
        if not free:
            raise SecureElementError(
                f"every vpcd reader holds a card ({', '.join(slots.values())}): "
                "`offcash card stop WALLET` frees one"
            )
        slot = free[0]
        log = (folder / f"{wallet}.log").open("ab")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "offcash.card",
                "--eeprom",
                str(eeprom),
                "--port",
                str(VPCD_PORT + slot),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # the card outlives the command that inserted it
        )
        log.close()
        card = CardProcess(wallet, proc.pid, slot, slots[slot], str(eeprom))
        deadline = time.monotonic() + _START_TIMEOUT
        while not pcsc.card_present(card.reader):
            if proc.poll() is not None or time.monotonic() > deadline:
                _terminate(proc.pid)
                raise SecureElementError(
                    f"the card of {wallet} did not come up in {card.reader} "
                    f"(see {folder / (wallet + '.log')})"
                )
            time.sleep(0.05)
        (folder / f"{wallet}.json").write_text(json.dumps(asdict(card)) + "\n", encoding="utf-8")
        return card


def stop(root: Path, wallet: str) -> bool:
    """Take wallet ``wallet``'s card out (end its process, wait until pcscd sees the reader
    empty); whether one was running."""
    folder = _records(root)
    if not folder.is_dir():
        return False
    with exclusive(lock_path(folder / "cards")):
        card = running(root).get(wallet)
        (folder / f"{wallet}.json").unlink(missing_ok=True)
        if card is None:
            return False
        _terminate(card.pid)
        deadline = time.monotonic() + _START_TIMEOUT
        while pcsc.card_present(card.reader) and time.monotonic() < deadline:
            time.sleep(0.05)  # until pcscd has seen the card go: the slot is free again
        return True


def _terminate(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(100):
        try:
            finished, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # not our child: wait until it is gone
            finished = 0 if _alive(pid) else pid
        if finished:
            return
        time.sleep(0.05)
