"""Fixtures shared by every test; the harness itself lives in tests/harness.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from offcash.crypto.algorithms import SignatureAlgorithm

from harness import PilotNetwork
from se_kinds import se_factory, ses

__all__ = ["network", "p256", "se_factory", "ses"]


@pytest.fixture(
    scope="session",
    params=list(SignatureAlgorithm),
    ids=lambda a: a.short,
)
def network_of_algorithm(request: pytest.FixtureRequest) -> Iterator[PilotNetwork]:
    yield PilotNetwork.create(request.param)


@pytest.fixture(scope="session")
def network(network_of_algorithm: PilotNetwork) -> PilotNetwork:
    """A pilot network per signature algorithm (the SE-generic suites override it with one
    that makes its SEs of each kind: tests/se_kinds.py; pytest cannot override a fixture that
    carries its own parameters, hence the two steps)."""
    return network_of_algorithm


@pytest.fixture(scope="session")
def p256() -> PilotNetwork:
    return PilotNetwork.create(SignatureAlgorithm.P256)
