"""The wallet facade's tests run on both ledger backends (see ``tests/backends.py``)."""

from __future__ import annotations

from backends import db_target, pytest_generate_tests

__all__ = ["db_target", "pytest_generate_tests"]
