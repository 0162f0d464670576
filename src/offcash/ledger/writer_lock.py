"""A queue for SQLite's one writer: threads and processes wait their turn instead of polling.

Theory of operation: SQLite lets one connection write at a time; a second ``BEGIN IMMEDIATE``
waits in SQLite's busy handler, which sleeps and retries with growing sleeps (up to 100 ms) and
so hands the lock to whoever retries at the right moment: under load, a few writers wait
seconds while others pass (the p99 latency of issue 11). ``WriterLock`` puts writers in a queue
before they ask SQLite: a ``threading.Lock`` in the process, then an exclusive ``flock`` on a
file beside the database (``<database>-writer.lock``), which the kernel grants to a waiter as
soon as its holder lets go and frees if the holder dies. Holding it, a writer's ``BEGIN
IMMEDIATE`` finds SQLite's lock free unless someone writes without the queue (another tool on
the same file), in which case SQLite's busy handler still makes it wait as before. Correctness
never depends on this lock: SQLite's own locking does that; the queue only makes waiting
prompt and fair. An in-memory database (no file) has no other process to queue with.
"""

from __future__ import annotations

import fcntl
import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import Engine

_locks: weakref.WeakKeyDictionary[Engine, WriterLock] = weakref.WeakKeyDictionary()
_made = threading.Lock()


class WriterLock:
    """The writer queue of one SQLite database file (see the module docstring)."""

    def __init__(self, database: str | None) -> None:
        self._thread_lock = threading.Lock()
        self._path = None if not database or database == ":memory:" else Path(database)
        self._fd: int | None = None

    @classmethod
    def of(cls, engine: Engine) -> WriterLock | None:
        """The writer queue of ``engine``'s database if it is an SQLite file, else None (made
        once per engine)."""
        if engine.dialect.name != "sqlite":
            return None
        with _made:
            lock = _locks.get(engine)
            if lock is None:
                lock = _locks[engine] = cls(engine.url.database)
            return lock

    @contextmanager
    def held(self) -> Iterator[None]:
        """Wait for this thread's turn to write, in this process and then among processes."""
        with self._thread_lock:
            fd = self._file()
            if fd is None:
                yield
                return
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _file(self) -> int | None:
        # opened once, under the thread lock; worker processes are spawned, each with its own
        if self._fd is None and self._path is not None:
            self._fd = os.open(f"{self._path}-writer.lock", os.O_RDWR | os.O_CREAT, 0o600)
        return self._fd
