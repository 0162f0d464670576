"""Sealed, atomic persistence of a software secure element's state.

Theory of operation: the state is one byte string. ``SealedFile`` encrypts it with AES-256-GCM
under a key derived from the wallet PIN with scrypt (N=2^15, r=8, p=1: about 0.1 s and 32 MiB
per guess), and writes it atomically: a temporary file in the same folder, fsync, rename over
the old file, fsync of the folder. A crash at any instant leaves the old state or the new one.
The key is derived once when the file is opened and kept in memory while the wallet is open.

Several processes may use one wallet at once (two terminals, a script, a pipeline of
``offcash`` commands). ``SealedFile.locked`` holds the file's OS lock (``offcash.se.filelock``)
from the read to the end of the block, so a whole load-operate-persist runs alone. ``save``
takes the same lock and refuses to write over a file another process changed since this one
read it: a holder of a stale state gets an error and loses nothing, instead of silently
rolling back another process's payment.
This protects a stolen file only as well as the PIN's entropy allows: a hardware SE, which
rate-limits PIN tries and never exports its state, is the production answer.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from offcash.errors import SecureElementError, WrongPin
from offcash.se.filelock import exclusive, lock_path

MAGIC = b"OCSE\x01"
_SALT = 16
_NONCE = 12
SCRYPT_N = 2**15


class StateStore(Protocol):
    """Where a secure element persists its state."""

    def save(self, state: bytes) -> None:
        """Replace the persisted state atomically and durably."""


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either the old file or the new one."""
    directory = path.parent
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _derive(pin: str, salt: bytes, n: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=8, p=1).derive(pin.encode())


class SealedFile:
    """A state file sealed with a PIN-derived key."""

    def __init__(self, path: Path, key: bytes, salt: bytes, blob: bytes | None = None) -> None:
        self.path = path
        self._aead = AESGCM(key)
        self._salt = salt
        self._blob = blob  # the file's bytes as last read or written here

    @property
    def lock_file(self) -> Path:
        """The lock file that serialises the processes using this state file."""
        return lock_path(self.path)

    @classmethod
    @contextlib.contextmanager
    def locked(cls, path: str | Path, pin: str) -> Iterator[tuple[SealedFile, bytes]]:
        """``open`` with the file's lock held until the block ends: no other process reads or
        writes the state in between (the read-modify-write of one secure element operation,
        or of a whole command)."""
        with exclusive(lock_path(path)):
            yield cls.open(path, pin)

    @classmethod
    def create(
        cls, path: str | Path, pin: str, state: bytes, *, scrypt_n: int = SCRYPT_N
    ) -> SealedFile:
        """Create a new sealed file holding ``state`` (refuses to overwrite an existing one)."""
        target = Path(path)
        salt = os.urandom(_SALT)
        store = cls(target, _derive(pin, salt, scrypt_n), salt + scrypt_n.to_bytes(4, "big"))
        with exclusive(lock_path(target)):
            if target.exists():
                raise SecureElementError(f"{target} already exists")
            store._write(state)
        return store

    @classmethod
    def open(cls, path: str | Path, pin: str) -> tuple[SealedFile, bytes]:
        """Open a sealed file; returns the store and the state. ``WrongPin`` if the PIN is wrong."""
        target = Path(path)
        try:
            blob = target.read_bytes()
        except OSError as exc:
            raise SecureElementError(f"cannot read {target}: {exc.strerror}") from None
        header = len(MAGIC) + _SALT + 4
        if not blob.startswith(MAGIC) or len(blob) < header + _NONCE + 16:
            raise SecureElementError(f"{target} is not a sealed offcash secure element")
        salt_n = blob[len(MAGIC) : header]
        n = int.from_bytes(salt_n[_SALT:], "big")
        if n not in (2**10, 2**12, 2**14, SCRYPT_N, 2**16, 2**17):
            raise SecureElementError(f"{target} has unsupported scrypt parameters")
        store = cls(target, _derive(pin, salt_n[:_SALT], n), salt_n, blob)
        nonce, sealed = blob[header : header + _NONCE], blob[header + _NONCE :]
        try:
            state = store._aead.decrypt(nonce, sealed, MAGIC + salt_n)
        except InvalidTag:
            raise WrongPin("wrong PIN, or the state file was altered") from None
        return store, state

    def change_pin(self, state: bytes, new_pin: str, *, scrypt_n: int = SCRYPT_N) -> None:
        """Re-seal ``state`` under ``new_pin`` with a fresh salt, in one atomic write: after it
        only the new PIN opens the file; a crash leaves the old file (old PIN) or the new one."""
        salt = os.urandom(_SALT)
        self._aead = AESGCM(_derive(new_pin, salt, scrypt_n))
        self._salt = salt + scrypt_n.to_bytes(4, "big")
        self.save(state)

    def save(self, state: bytes) -> None:
        """Seal and write ``state`` atomically, under the file's lock; ``SecureElementError``
        (nothing written) if another process changed the file since this one read it."""
        with exclusive(lock_path(self.path)):
            try:
                current = self.path.read_bytes()
            except FileNotFoundError:
                current = None
            if current != self._blob:
                raise SecureElementError(
                    f"{self.path} was changed by another process since it was opened: "
                    "nothing saved; open it again"
                )
            self._write(state)

    def _write(self, state: bytes) -> None:
        nonce = os.urandom(_NONCE)
        sealed = self._aead.encrypt(nonce, state, MAGIC + self._salt)
        blob = MAGIC + self._salt + nonce + sealed
        atomic_write(self.path, blob)
        self._blob = blob
