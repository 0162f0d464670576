"""Fixtures for the CLI tests (the harness is in ``cli_harness``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from offcash.cli.config import Network

from cli_harness import offline_network


@pytest.fixture
def offline_net(tmp_path: Path) -> Network:
    """Alice (100.00 EUR), Bob and Carol (empty), in ``tmp_path / "net"``."""
    return offline_network(tmp_path / "net", {"alice": 10_000, "bob": 0, "carol": 0})
