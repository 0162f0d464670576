"""The two database backends for the ledger and API tests: a fresh SQLite file or a fresh
PostgreSQL schema per test (fixture ``db_target``, parametrized over both).

PostgreSQL is read from ``OFFCASH_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432/test``);
each test gets its own schema, dropped afterwards. When the server is unreachable the PostgreSQL
half is skipped with the reason shown, or fails when ``OFFCASH_REQUIRE_PG`` is set to anything but
``0`` or empty (``.ci/run`` sets it: CI runs these tests, never skips them). A conftest uses it
with ``from backends import db_target, pytest_generate_tests``."""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from offcash.ledger.db import normalize_url

PG_URL = os.environ.get("OFFCASH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", "postgresql"]


def pg_required() -> bool:
    """Whether PostgreSQL tests must run (``OFFCASH_REQUIRE_PG``)."""
    return os.environ.get("OFFCASH_REQUIRE_PG", "") not in ("", "0")


@functools.cache
def pg_unreachable() -> str | None:
    """Why PostgreSQL cannot be used, or None (checked once per run)."""
    try:
        engine = sa.create_engine(normalize_url(PG_URL))
        with engine.connect() as c:
            c.execute(sa.text("select 1"))
        engine.dispose()
    except Exception as exc:
        return f"PostgreSQL at {PG_URL} unreachable: {type(exc).__name__}: {exc}"
    return None


def drop_schema(schema: str) -> None:
    """Drop a test schema and everything in it."""
    engine = sa.create_engine(normalize_url(PG_URL))
    with engine.begin() as c:
        c.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture
def db_target(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[tuple[str, str | None]]:
    """``(url, schema)`` of a fresh empty database for the requested backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/ledger.db", None
        return
    reason = pg_unreachable()
    if reason and pg_required():
        pytest.fail(f"{reason} (OFFCASH_REQUIRE_PG is set: CI must run these tests)")
    if reason:
        pytest.skip(reason)
    schema = "t_" + uuid.uuid4().hex[:12]
    yield PG_URL, schema
    drop_schema(schema)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "db_target" in metafunc.fixturenames:
        metafunc.parametrize("db_target", BACKENDS, indirect=True)
