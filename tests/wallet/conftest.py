"""The wallet facade's tests run on both ledger backends (see ``tests/backends.py``) and the
wallet's tests against each secure element kind (tests/se_kinds.py)."""

from __future__ import annotations

from backends import db_target, pytest_generate_tests

from se_kinds import network_per_kind, p256_per_kind

__all__ = ["db_target", "network_per_kind", "p256_per_kind", "pytest_generate_tests"]
