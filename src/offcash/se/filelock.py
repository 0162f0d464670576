"""Exclusive locks on files, across processes: one writer at a time for a state file.

Theory of operation: a state that is read, changed and written back (a secure element's sealed
file, a network folder's registry) is guarded by an OS lock on a ``.lock`` file beside it
(``lock_path``), held around the whole read-modify-write. ``exclusive`` takes the lock with
``fcntl.flock`` (Linux, macOS, BSD; ``msvcrt.locking`` on Windows), so the kernel releases it
when the holder exits or crashes: a lock is never left behind, and the lock file itself is
never deleted (deleting it would let two processes lock two different files of one name).
Within one process the lock is re-entrant per path (an ``RLock`` per lock file, and one open
descriptor), because ``flock`` on a second descriptor of the same file would wait for the
first one forever. A holder that waits longer than ``timeout`` gets a ``Busy`` error.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from offcash.errors import LocalError

#: How long ``exclusive`` waits for another process by default (seconds).
DEFAULT_TIMEOUT = 120.0


class Busy(LocalError):
    """Another process held a file lock for longer than the caller would wait."""

    code = "busy"


@dataclass
class _Held:
    guard: threading.RLock = field(default_factory=threading.RLock)
    fd: int = -1
    depth: int = 0


_registry: dict[str, _Held] = {}
_registry_guard = threading.Lock()


def lock_path(path: str | os.PathLike[str]) -> Path:
    """The lock file that guards ``path``: ``NAME.lock`` in the same folder."""
    target = Path(path)
    return target.with_name(target.name + ".lock")


@contextlib.contextmanager
def exclusive(path: str | os.PathLike[str], timeout: float = DEFAULT_TIMEOUT) -> Iterator[None]:
    """Hold the exclusive lock on the lock file ``path`` (created 0600 if absent) for the
    ``with`` block; re-entrant within a process. ``Busy`` after ``timeout`` seconds."""
    key = os.path.realpath(path)
    with _registry_guard:
        held = _registry.setdefault(key, _Held())
    if not held.guard.acquire(timeout=timeout):
        raise Busy(f"{path} is locked by another thread of this process")
    try:
        if held.depth == 0:
            held.fd = _acquire(key, timeout)
        held.depth += 1
        try:
            yield
        finally:
            held.depth -= 1
            if held.depth == 0:
                os.close(held.fd)  # closing the descriptor releases the OS lock
                held.fd = -1
    finally:
        held.guard.release()


def _acquire(path: str, timeout: float) -> int:
    # O_NOFOLLOW: a symlink planted in the folder does not make us open (or create) its target
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
    deadline = time.monotonic() + timeout
    pause = 0.001
    while True:
        try:
            _try_lock(fd)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise Busy(
                    f"{path} is held by another process (waited {timeout:g} s); "
                    "try again when it has finished"
                ) from None
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
        except BaseException:
            os.close(fd)
            raise


if sys.platform == "win32":  # pragma: no cover - offcash is tested on Linux and macOS
    import msvcrt

    def _try_lock(fd: int) -> None:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            raise BlockingIOError from None

else:
    import fcntl

    def _try_lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
