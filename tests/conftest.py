"""Fixtures shared by every test; the harness itself lives in tests/harness.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from offcash.crypto.algorithms import SignatureAlgorithm

from harness import PilotNetwork


@pytest.fixture(
    scope="session",
    params=list(SignatureAlgorithm),
    ids=lambda a: a.short,
)
def network(request: pytest.FixtureRequest) -> Iterator[PilotNetwork]:
    yield PilotNetwork.create(request.param)


@pytest.fixture(scope="session")
def p256() -> PilotNetwork:
    return PilotNetwork.create(SignatureAlgorithm.P256)
