"""Fixtures for the attack catalogue: the shared ledger fixtures, so that every settlement-side
attack runs on SQLite and PostgreSQL (``db_target`` from tests/backends.py, ``world`` from
tests/ledger/conftest.py), and the per-kind networks, so that every attack runs against each
secure element kind (tests/se_kinds.py)."""

from __future__ import annotations

import sys
from pathlib import Path

_LEDGER_TESTS = Path(__file__).resolve().parent.parent / "ledger"
if str(_LEDGER_TESTS) not in sys.path:
    sys.path.insert(0, str(_LEDGER_TESTS))  # ledgerkit, which the ledger fixtures import

from backends import db_target, pytest_generate_tests  # noqa: E402
from ledger.conftest import world  # noqa: E402

from se_kinds import network_per_kind, p256_per_kind  # noqa: E402

__all__ = ["db_target", "network_per_kind", "p256_per_kind", "pytest_generate_tests", "world"]
