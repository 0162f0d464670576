"""Ledger fixtures: one fresh ledger per test on each backend (SQLite file, PostgreSQL schema).

PostgreSQL is read from ``OFFCASH_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432/test``);
each test gets its own schema, dropped afterwards. When the server is unreachable the PostgreSQL
half is skipped with the reason shown, or fails when ``OFFCASH_REQUIRE_PG`` is set (as in CI)."""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from ledgerkit import World

from offcash.ledger import LedgerService
from offcash.ledger.db import normalize_url

from harness import T0, PilotNetwork

PG_URL = os.environ.get("OFFCASH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@functools.cache
def pg_unreachable() -> str | None:
    """Why PostgreSQL cannot be used, or None (checked once per run)."""
    try:
        with sa.create_engine(normalize_url(PG_URL)).connect() as c:
            c.execute(sa.text("select 1"))
    except Exception as exc:
        return f"PostgreSQL at {PG_URL} unreachable: {type(exc).__name__}: {exc}"
    return None


@pytest.fixture
def db_target(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[tuple[str, str | None]]:
    """``(url, schema)`` of a fresh empty database for the requested backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/ledger.db", None
        return
    reason = pg_unreachable()
    if reason and os.environ.get("OFFCASH_REQUIRE_PG"):
        pytest.fail(f"{reason} (OFFCASH_REQUIRE_PG is set: CI must run these tests)")
    if reason:
        pytest.skip(reason)
    schema = "t_" + uuid.uuid4().hex[:12]
    yield PG_URL, schema
    engine = sa.create_engine(normalize_url(PG_URL))
    with engine.begin() as c:
        c.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "db_target" in metafunc.fixturenames:
        metafunc.parametrize("db_target", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def world(db_target: tuple[str, str | None], p256: PilotNetwork) -> Iterator[World]:
    url, schema = db_target
    ledger = LedgerService.open(url, schema=schema, claim_window=10 * 86400)
    ledger.install(p256.params, p256.central_bank, p256.banks)
    for bank in ("Bank A", "Bank B"):
        ledger.issue(bank, 10_000_000, T0)
    yield World(p256, ledger)
    ledger.engine.dispose()
