"""Sealed, atomic persistence of a software secure element's state, with an append-only journal.

Theory of operation: the state is one byte string. ``SealedFile`` encrypts it with AES-256-GCM
under a key derived from the wallet PIN with scrypt (N=2^15, r=8, p=1: about 0.1 s and 32 MiB
per guess). The key is derived once when the file is opened and kept in memory while the
wallet is open. The file is a *base* followed by a *journal*:

    MAGIC | salt (16) | scrypt N (4) | nonce (12) | base length (4) | sealed base
          | record: length (4) | nonce (12) | sealed delta   (zero or more)

``save`` writes a whole state as the base, with no journal, atomically: a temporary file in the
same folder, fsync, rename over the old file, fsync of the folder. ``append`` seals one delta
(``offcash.se.journal``: what an operation changed) and writes it at the end of the file, then
fsyncs it, so an operation costs the same however long the log is. Each record's associated
data holds the previous record's tag (the base's for the first): a record removed, reordered or
moved to another file does not open. A crash leaves the old state or the new one: the base only
ever changes by rename; an append cut short leaves an incomplete last record (its length runs
past the end of the file), which ``open`` ignores as never written and the next append
truncates. A complete record that does not open is tampering (``SecureElementError``). Cutting
the file at a record boundary gives a state the file really held before: that is a rollback,
which no software SE can detect on its own (docs/SECURITY.md). ``open`` returns the base with
every record applied (``journal.replay``); the files of the first format (``OCSE\x01``: a base
alone) are read as before, and are rewritten in this format at their first save.

Several processes may use one wallet at once (two terminals, a script, a pipeline of
``offcash`` commands). ``SealedFile.locked`` holds the file's OS lock (``offcash.se.filelock``)
from the read to the end of the block, so a whole load-operate-persist runs alone. ``save`` and
``append`` take the same lock and refuse to write over a file another process changed since
this one read it (its size or its last 16 bytes, a GCM tag under a fresh nonce, differ): a holder
of a stale state gets an error and loses nothing, instead of silently rolling back another
process's payment.
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
from offcash.se import journal
from offcash.se.filelock import exclusive, lock_path

MAGIC = b"OCSE\x02"
#: The first format: the sealed state alone, no journal (read, and rewritten at the next save).
MAGIC_V1 = b"OCSE\x01"
_SALT = 16
_NONCE = 12
_TAG = 16
_LENGTH = 4
_HEADER = len(MAGIC) + _SALT + 4
SCRYPT_N = 2**15
_SCRYPT_NS = (2**10, 2**12, 2**14, SCRYPT_N, 2**16, 2**17)
#: The journal is folded into a new base once it outgrows the base and this many bytes.
JOURNAL_MIN = 64 * 1024
_MAX_RECORD = 64 * 1024 * 1024


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
    """A state file sealed with a PIN-derived key: a base and a journal of deltas."""

    def __init__(self, path: Path, key: bytes, salt: bytes) -> None:
        self.path = path
        self._aead = AESGCM(key)
        self._salt = salt
        # the file as last read or written here: its size, its last 16 bytes, where its last
        # complete record ends, the tag the next record chains to, the sizes of base and journal
        self._size = 0
        self._tail = b""
        self._end = 0
        self._chain = b""
        self._base_bytes = 0
        self._journal_bytes = 0
        self._appendable = False
        self._state: bytes | None = None  # the state open or the last save returned or wrote

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
        version1 = blob.startswith(MAGIC_V1)
        first = _HEADER + _NONCE + (0 if version1 else _LENGTH)
        if not (version1 or blob.startswith(MAGIC)) or len(blob) < first + _TAG:
            raise SecureElementError(f"{target} is not a sealed offcash secure element")
        salt_n = blob[len(MAGIC) : _HEADER]
        n = int.from_bytes(salt_n[_SALT:], "big")
        if n not in _SCRYPT_NS:
            raise SecureElementError(f"{target} has unsupported scrypt parameters")
        store = cls(target, _derive(pin, salt_n[:_SALT], n), salt_n)
        nonce = blob[_HEADER : _HEADER + _NONCE]
        base_end = (
            len(blob) if version1 else first + int.from_bytes(blob[first - _LENGTH : first], "big")
        )
        if base_end > len(blob) or base_end < first + _TAG:
            raise SecureElementError(f"{target} is not a sealed offcash secure element")
        aad = blob[:first] if not version1 else MAGIC_V1 + salt_n
        try:
            base = store._aead.decrypt(nonce, blob[first:base_end], aad)
        except InvalidTag:
            raise WrongPin("wrong PIN, or the state file was altered") from None
        records, store._end = store._read_journal(blob, base_end)
        store._size, store._tail = len(blob), blob[-_TAG:]
        store._base_bytes, store._journal_bytes = base_end, store._end - base_end
        store._appendable = not version1
        state = journal.replay(base, records) if records else base
        store._state = state
        return store, state

    def _read_journal(self, blob: bytes, pos: int) -> tuple[list[bytes], int]:
        """The deltas of the journal starting at ``pos``, and where the last complete one ends
        (an incomplete last record is an append a crash cut short: never written)."""
        records: list[bytes] = []
        self._chain = blob[pos - _TAG : pos]
        while len(blob) - pos >= _LENGTH:
            length = int.from_bytes(blob[pos : pos + _LENGTH], "big")
            if not _NONCE + _TAG < length <= _MAX_RECORD:
                raise SecureElementError(f"{self.path}: the journal was altered (a bad length)")
            end = pos + _LENGTH + length
            if end > len(blob):
                break
            start = pos + _LENGTH
            nonce, sealed = blob[start : start + _NONCE], blob[start + _NONCE : end]
            try:
                records.append(self._aead.decrypt(nonce, sealed, self._aad(self._chain)))
            except InvalidTag:
                raise SecureElementError(f"{self.path}: the journal was altered") from None
            self._chain, pos = blob[end - _TAG : end], end
        return records, pos

    def _aad(self, chain: bytes) -> bytes:
        return MAGIC + self._salt + chain

    def holds(self, state: bytes) -> bool:
        """Whether ``state`` is what this store last read or wrote, so that a delta from it may
        be appended (a secure element checks it once, when it starts on this store)."""
        return self._state is not None and (self._state is state or self._state == state)

    @property
    def appendable(self) -> bool:
        """Whether ``append`` may be used now: the file is in the journal format and its
        journal has not outgrown its base (else the next persist should be a ``save``)."""
        return self._appendable and self._journal_bytes < max(self._base_bytes, JOURNAL_MIN)

    def change_pin(self, state: bytes, new_pin: str, *, scrypt_n: int = SCRYPT_N) -> None:
        """Re-seal ``state`` under ``new_pin`` with a fresh salt, in one atomic write: after it
        only the new PIN opens the file; a crash leaves the old file (old PIN) or the new one."""
        salt = os.urandom(_SALT)
        self._aead = AESGCM(_derive(new_pin, salt, scrypt_n))
        self._salt = salt + scrypt_n.to_bytes(4, "big")
        self.save(state)

    def _check_unchanged(self) -> None:
        """Refuse (``SecureElementError``) if another process changed the file since this one
        read or wrote it; call with the lock held."""
        try:
            with self.path.open("rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                handle.seek(max(0, size - _TAG))
                tail = handle.read()
        except FileNotFoundError:
            size, tail = -1, b""
        if size != self._size or tail != self._tail:
            raise SecureElementError(
                f"{self.path} was changed by another process since it was opened: "
                "nothing saved; open it again"
            )

    def save(self, state: bytes) -> None:
        """Seal and write ``state`` atomically as the new base (the journal is emptied), under
        the file's lock; ``SecureElementError`` (nothing written) if another process changed
        the file since this one read it."""
        with exclusive(lock_path(self.path)):
            self._check_unchanged()
            self._write(state)

    def append(self, delta: bytes) -> None:
        """Seal ``delta`` (``journal.Tracker.delta``) and add it at the end of the journal,
        durably, under the file's lock; ``SecureElementError`` (nothing written) if another
        process changed the file since this one read it. If writing fails, the file is cut
        back to the state before it and the error raised."""
        if not self._appendable:
            raise SecureElementError(f"{self.path} has no journal yet: save the whole state")
        nonce = os.urandom(_NONCE)
        sealed = self._aead.encrypt(nonce, delta, self._aad(self._chain))
        frame = (len(nonce) + len(sealed)).to_bytes(_LENGTH, "big") + nonce + sealed
        with exclusive(lock_path(self.path)):
            self._check_unchanged()
            fd = os.open(self.path, os.O_WRONLY)
            try:
                if self._size != self._end:  # an append a crash cut short: drop it first
                    os.ftruncate(fd, self._end)
                    os.fsync(fd)
                    self._size, self._tail = self._end, self._chain
                written = os.pwrite(fd, frame, self._end)
                if written != len(frame):
                    raise OSError(f"short write to {self.path}: {written} of {len(frame)} bytes")
                os.fsync(fd)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, self._end)
                raise
            finally:
                os.close(fd)
        self._end += len(frame)
        self._journal_bytes += len(frame)
        self._size, self._tail = self._end, sealed[-_TAG:]
        self._chain = self._tail
        self._state = None

    def _write(self, state: bytes) -> None:
        nonce = os.urandom(_NONCE)
        header = MAGIC + self._salt
        length = (len(state) + _TAG).to_bytes(_LENGTH, "big")
        sealed = self._aead.encrypt(nonce, state, header + nonce + length)
        blob = header + nonce + length + sealed
        atomic_write(self.path, blob)
        self._size = self._end = self._base_bytes = len(blob)
        self._tail = self._chain = blob[-_TAG:]
        self._journal_bytes = 0
        self._appendable = True
        self._state = state
