"""Database plumbing: engines for SQLite and PostgreSQL, Alembic migrations, retried transactions.

Theory of operation: ``open_engine(url)`` returns an engine configured for concurrent writers
(SQLite: WAL, a busy timeout and ``BEGIN IMMEDIATE`` so writers queue instead of failing on a
lock upgrade; PostgreSQL: psycopg 3, READ COMMITTED, optional ``schema`` through the search
path) and brings the schema to the latest Alembic revision. ``transaction(engine, fn)`` runs
``fn(conn)`` in one database transaction and retries it on deadlocks, serialization failures and
SQLite lock timeouts: every ledger operation is written to be safely re-run. On SQLite it first
waits its turn in the writer queue (``offcash.ledger.writer_lock``), so that writers of all
threads and processes pass in order instead of polling SQLite's lock.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from offcash.ledger.writer_lock import WriterLock

T = TypeVar("T")
MIGRATIONS = Path(__file__).parent / "migrations"
_RETRIES = 20


def normalize_url(url: str) -> str:
    """Accept ``postgresql://`` and a bare SQLite path; use psycopg 3 for PostgreSQL."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if "://" not in url:
        return f"sqlite:///{url}"
    return url


def open_engine(url: str, schema: str | None = None, migrate: bool = True) -> Engine:
    """An engine on ``url`` (created schema ``schema`` on PostgreSQL), migrated to the head."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 60})
        _sqlite_setup(engine)
    else:
        connect_args: dict[str, Any] = {}
        if schema is not None:
            connect_args["options"] = f"-csearch_path={schema}"
        engine = sa.create_engine(url, connect_args=connect_args, pool_pre_ping=True)
        if schema is not None:
            with sa.create_engine(url).begin() as conn:
                conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    if migrate:
        upgrade(engine)
    return engine


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def upgrade(engine: Engine) -> None:
    """Run the Alembic migrations shipped in the package up to the head revision."""
    from alembic import command
    from alembic.config import Config

    cfg = Config(str(MIGRATIONS / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def insert(conn: Connection, table: sa.Table) -> Any:
    """An INSERT of the connection's dialect (PostgreSQL or SQLite), which has ON CONFLICT."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def insert_ignoring(table: sa.Table, *returning: sa.Column[Any]) -> dict[str, Any]:
    """``INSERT ... ON CONFLICT DO NOTHING RETURNING returning`` into ``table`` for each
    dialect, by name (``conn.dialect.name``): built once, the values passed at execution."""
    return {
        d.dialect.name: d.insert(table).on_conflict_do_nothing().returning(*returning)
        for d in (postgresql, sqlite)
    }


def retryable(exc: sa.exc.DBAPIError) -> bool:
    """Whether ``exc`` is a deadlock, a serialization failure or an SQLite lock timeout: the
    transaction failed as a whole and re-running it may succeed."""
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if code in {"40001", "40P01"}:
        return True
    text = str(exc.orig).lower()
    return "database is locked" in text or "deadlock" in text


def transaction(engine: Engine, fn: Callable[[Connection], T]) -> T:
    """Run ``fn`` in one transaction, retrying it whole on deadlock/serialization/lock errors
    (on SQLite, after waiting for this writer's turn: ``offcash.ledger.writer_lock``)."""
    writers = WriterLock.of(engine)
    for attempt in range(_RETRIES):
        try:
            with writers.held() if writers else nullcontext(), engine.begin() as conn:
                return fn(conn)
        except sa.exc.DBAPIError as exc:
            if not retryable(exc) or attempt == _RETRIES - 1:
                raise
            time.sleep(random.uniform(0.001, 0.02) * (attempt + 1))
    raise AssertionError("unreachable")
