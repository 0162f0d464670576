"""Ledger fixtures: one fresh ledger per test on each backend (SQLite file, PostgreSQL schema);
the backends, and when PostgreSQL is skipped or required, are in ``tests/backends.py``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from ledgerkit import World

from backends import db_target, pytest_generate_tests
from offcash.ledger import LedgerService

from harness import T0, PilotNetwork

__all__ = ["db_target", "pytest_generate_tests", "world"]


@pytest.fixture
def world(db_target: tuple[str, str | None], p256: PilotNetwork) -> Iterator[World]:
    url, schema = db_target
    ledger = LedgerService.open(url, schema=schema, claim_window=10 * 86400)
    ledger.install(p256.params, p256.central_bank, p256.banks)
    for bank in ("Bank A", "Bank B"):
        ledger.issue(bank, 10_000_000, T0)
    yield World(p256, ledger)
    ledger.close()
