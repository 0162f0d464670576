"""Group commit: concurrent write operations of one process share one database transaction.

Theory of operation: a caller hands ``GroupCommit.run`` a unit of work (``fn(conn)``, written
to run in one transaction and to be safely re-run, as every ``db.transaction`` unit is) and
waits. One writer thread takes the work queued so far, in arrival order (at most
``max_batch``), and runs it in one ``db.transaction``: each unit inside its own savepoint. A
unit that raises is rolled back to its savepoint and gets its exception; the units before and
after it keep their effects. A deadlock, serialization failure or lock timeout (``db.retryable``)
aborts the whole transaction, which ``db.transaction`` re-runs whole, every unit again (none of
them was answered). Answers are handed back only after the transaction committed, so an answer
never reports an effect that is not in the database; if the commit fails, every unit of the
group gets the error and none took effect.

What it buys: one BEGIN/COMMIT (and on SQLite one turn of the writer queue, one WAL commit) for
all the syncs that arrived while the previous group was being written, instead of one each;
and the writes of one process are done by one thread, in order, while the request threads go on
verifying the next uploads. The order of the units in a group is their arrival order, the same
as if each had been its own transaction, one after the other.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from offcash.ledger import db

T = TypeVar("T")
#: Units of work in one transaction at most.
MAX_BATCH = 64


class _Unit(Generic[T]):
    """One caller's work and, once the group committed, its answer or its error."""

    def __init__(self, fn: Callable[[Connection], T]) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.result: T | None = None
        self.error: BaseException | None = None

    def answer(self) -> T:
        self.done.wait()
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]


class GroupCommit:
    """The writer thread of one engine (see the module docstring)."""

    def __init__(self, engine: Engine, max_batch: int = MAX_BATCH) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Unit[Any] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()
        #: groups committed and units answered (for tests and monitoring)
        self.groups = self.units = 0
        #: units in the group being written now (0 when the writer is idle)
        self.busy = 0

    @property
    def pending(self) -> int:
        """Units waiting for the next group."""
        return self._queue.qsize()

    def run(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(conn)`` in the next group's transaction; its answer once that committed,
        or the exception it (or the group's commit) raised."""
        unit = _Unit(fn)
        with self._start:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="offcash-group-commit", daemon=True
                )
                self._thread.start()
        self._queue.put(unit)
        return unit.answer()

    def close(self) -> None:
        """Stop the writer thread once the work queued so far is done."""
        with self._start:
            if self._thread is not None:
                self._queue.put(None)
                self._thread.join()
                self._thread = None

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            stop = False
            while len(group) < self.max_batch:
                try:
                    unit = self._queue.get_nowait()
                except queue.Empty:
                    break
                if unit is None:
                    stop = True
                    break
                group.append(unit)
            self.busy = len(group)
            self._commit(group)
            self.busy = 0
            if stop:
                return

    def _commit(self, group: list[_Unit[Any]]) -> None:
        outcomes: list[tuple[Any, BaseException | None]] = []

        def each(conn: Connection) -> None:
            outcomes.clear()  # a retried transaction runs every unit again
            mark = _transaction_mark(conn)
            for unit in group:
                try:
                    with conn.begin_nested():
                        outcomes.append((unit.fn(conn), None))
                except sa.exc.DBAPIError as exc:
                    if db.retryable(exc):
                        raise  # the whole transaction is lost: db.transaction re-runs it
                    _still_in_transaction(conn, mark, exc)
                    outcomes.append((None, exc))
                except Exception as exc:
                    _still_in_transaction(conn, mark, exc)
                    outcomes.append((None, exc))

        try:
            db.transaction(self.engine, each)
        except BaseException as exc:  # the commit failed: nothing took effect, all are told
            for unit in group:  # (the writer lives on: later groups are not left waiting)
                unit.error = exc
                unit.done.set()
            return
        self.groups += 1
        self.units += len(group)
        for unit, (result, error) in zip(group, outcomes, strict=True):
            unit.result, unit.error = result, error
            unit.done.set()


def _transaction_mark(conn: Connection) -> object:
    """What names the group's transaction: PostgreSQL's transaction id (SQLite needs none: a
    connection there has its transaction or none)."""
    if hasattr(conn.connection.dbapi_connection, "in_transaction"):  # sqlite3
        return None
    return conn.exec_driver_sql("SELECT txid_current()").scalar()


def _still_in_transaction(conn: Connection, mark: object, error: BaseException) -> None:
    """Raise if a unit's failure ended the group's whole transaction, not just its savepoint
    (SQLite rolls everything back on a full disk, an I/O error or an interrupted write; a unit
    may end it on either backend): the units before it lost their writes, and the ones after
    it would run without it, so the group fails and every unit is told."""
    raw: Any = conn.connection.dbapi_connection
    if hasattr(raw, "in_transaction"):  # sqlite3
        lost = not raw.in_transaction
    else:  # psycopg starts a new transaction by itself: compare its id
        try:
            lost = conn.exec_driver_sql("SELECT txid_current()").scalar() != mark
        except sa.exc.SQLAlchemyError:  # the connection is in a failed (new) transaction
            lost = True
    if lost:
        raise TransactionLost("a unit's failure ended the group's transaction") from error


class TransactionLost(Exception):
    """The group's transaction ended under it: no unit of the group took effect."""
