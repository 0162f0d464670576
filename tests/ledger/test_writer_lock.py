"""The SQLite writer queue (``offcash.ledger.writer_lock``): a writer in another process holds
the queue, so this process's ``db.transaction`` waits for it without touching the database, and
goes on as soon as it lets go; the queue dies with a process killed while holding it."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import sqlalchemy as sa

from offcash.ledger import db
from offcash.ledger.writer_lock import WriterLock

HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.readline()
"""


def _holder(lock_file: Path) -> subprocess.Popen[str]:
    p = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock_file)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert p.stdout is not None and p.stdout.readline() == "held\n"
    return p


def _writer(engine: sa.Engine, done: list[int]) -> threading.Thread:
    def write(conn: sa.Connection) -> None:
        conn.execute(sa.text("INSERT INTO t VALUES (1)"))

    def run() -> None:
        db.transaction(engine, write)
        done.append(1)

    t = threading.Thread(target=run)
    t.start()
    return t


def _engine(tmp_path: Path) -> sa.Engine:
    engine = db.open_engine(str(tmp_path / "l.db"), migrate=False)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))
    return engine


def test_a_writer_waits_for_another_process_then_goes_on(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    holder = _holder(tmp_path / "l.db-writer.lock")
    done: list[int] = []
    t = _writer(engine, done)
    t.join(1.0)
    assert t.is_alive() and not done  # queued behind the other process
    assert holder.stdin is not None
    holder.stdin.write("\n")
    holder.stdin.flush()
    holder.wait()
    t.join(60)
    assert done == [1]
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM t")).scalar() == 1
    engine.dispose()


def test_a_holder_killed_frees_the_queue(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    holder = _holder(tmp_path / "l.db-writer.lock")
    done: list[int] = []
    t = _writer(engine, done)
    t.join(1.0)
    assert t.is_alive()
    holder.kill()
    holder.wait()
    t.join(60)
    assert done == [1]
    engine.dispose()


def test_in_memory_and_postgresql_have_no_queue() -> None:
    assert WriterLock.of(sa.create_engine("postgresql+psycopg://u@localhost/x")) is None
    memory = WriterLock.of(sa.create_engine("sqlite://"))
    assert memory is not None
    with memory.held():  # nothing to share with: only the thread lock
        pass
