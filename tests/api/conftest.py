"""The API tests run on both backends, like the ledger's (see ``tests/backends.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

from backends import db_target, pytest_generate_tests

__all__ = ["db_target", "pytest_generate_tests"]

# the real-server helpers and the broken-SE helpers of the ledger tests
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "ledger"))
