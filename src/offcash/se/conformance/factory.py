"""How the conformance kit (and the test suite) makes, restarts and breaks a secure element.

Theory of operation: an implementation of ``SecureElement`` is plugged into the kit through an
``SEFactory``: it makes a new SE whose persistent state lives under a folder, opens it again as
after a restart, and, playing a physical attacker who broke the SE open, reads and writes its
state as ``SEState`` bytes (``offcash.se.state``: clone, roll back, edit). ``SoftwareFactory``
is the factory of ``SoftwareSecureElement`` on a ``SealedFile`` in the folder. A new kind (a
card, a TEE) provides its own factory; nothing else in the kit or the test suite changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from offcash.domain.network import NetworkParams
from offcash.se.interface import SecureElement
from offcash.se.software import SoftwareSecureElement
from offcash.se.storage import SCRYPT_N, SealedFile


class SEFactory(Protocol):
    """Makes, reopens and (as an attacker who broke it) reads and writes one kind of SE."""

    #: the kind's name ("software", "card"...), shown in reports and test ids
    kind: str

    def create(
        self, directory: Path, params: NetworkParams, root_certificate: bytes
    ) -> SecureElement:
        """A new, unenrolled SE whose persistent state lives under ``directory`` (created if
        missing; the PIN, if the kind has one, already given)."""
        ...

    def reopen(self, directory: Path) -> SecureElement:
        """The same SE again, as after the app or the reader restarts: its state as last
        persisted. Handles opened before may stay open; none may undo what another committed
        (the software SE's stale handle refuses to write: ``SecureElementError``)."""
        ...

    def read_state(self, directory: Path) -> bytes:
        """What a physical attacker who broke the SE reads out: its state as ``SEState`` bytes
        (``SEState.encode``)."""
        ...

    def write_state(self, directory: Path, state: bytes) -> None:
        """What that attacker writes back (a clone's, an older or an edited state, as
        ``SEState`` bytes); ``reopen`` then sees it. A handle opened before is stale."""
        ...

    def close(self) -> None:
        """Release what the factory holds (processes, readers); its SEs are unusable after."""
        ...


class SoftwareFactory:
    """``SoftwareSecureElement`` persisted in a ``SealedFile`` named ``se.sealed`` in the folder.

    ``scrypt_n`` is the sealing cost: the production default, or a low one for tests (the PIN's
    strength is ``SealedFile``'s own tests' business, not the SE contract's)."""

    kind = "software"
    #: the sealed state's file name inside an SE's folder
    FILE = "se.sealed"

    def __init__(self, pin: str = "246810", scrypt_n: int = SCRYPT_N) -> None:
        self.pin = pin
        self.scrypt_n = scrypt_n

    def path(self, directory: Path) -> Path:
        """The sealed state file of the SE in ``directory``."""
        return Path(directory) / self.FILE

    def create(
        self, directory: Path, params: NetworkParams, root_certificate: bytes
    ) -> SoftwareSecureElement:
        Path(directory).mkdir(parents=True, exist_ok=True)
        state = SoftwareSecureElement.new_state(params, root_certificate)
        store = SealedFile.create(self.path(directory), self.pin, state, scrypt_n=self.scrypt_n)
        return SoftwareSecureElement(state, store)

    def reopen(self, directory: Path) -> SoftwareSecureElement:
        store, state = SealedFile.open(self.path(directory), self.pin)
        return SoftwareSecureElement(state, store)

    def read_state(self, directory: Path) -> bytes:
        return SealedFile.open(self.path(directory), self.pin)[1]

    def write_state(self, directory: Path, state: bytes) -> None:
        with SealedFile.locked(self.path(directory), self.pin) as (store, _):
            store.save(state)

    def close(self) -> None:
        """Nothing to release: each SE is its file."""
