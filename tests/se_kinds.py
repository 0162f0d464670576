"""The secure element kinds the SE-generic suites run against, in one place.

``SE_KINDS`` maps a kind's name to what makes its ``SEFactory`` (``offcash.se.conformance``).
Every test that asks for the ``se_factory`` or ``ses`` fixture, and every test of a suite that
takes the per-kind ``network`` and ``p256`` below (tests/attacks, tests/wallet, the exchange
and payee tests of tests/protocol, the SE-generic tests of tests/se), runs once per kind. A new
kind is one line in ``SE_KINDS``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from offcash.card.kind import CardFactory
from offcash.se.conformance import SEFactory, SoftwareFactory

from harness import PilotNetwork, SEs

#: scrypt cost of the software SE's sealed files in tests (its own storage tests measure the
#: production cost, ``offcash.se.storage.SCRYPT_N``)
FAST_N = 2**10

SE_KINDS: dict[str, Callable[[], SEFactory]] = {
    "software": lambda: SoftwareFactory(scrypt_n=FAST_N),
    "card": CardFactory,
}


@pytest.fixture(scope="session", params=list(SE_KINDS))
def se_factory(request: pytest.FixtureRequest) -> Iterator[SEFactory]:
    """The factory of one SE kind, for the whole session (closed at its end)."""
    factory = SE_KINDS[request.param]()
    yield factory
    factory.close()


#: A memory file system, where an SE's fsyncs cost nothing: the suites that make SEs by the
#: thousand keep their folders there (the software SE's durability has its own tests, on disk:
#: tests/se/test_storage.py).
SHM = Path("/dev/shm")


@pytest.fixture
def ses(se_factory: SEFactory, tmp_path: Path) -> Iterator[SEs]:
    """This test's SEs of the kind: each in a folder of its own, under ``/dev/shm`` if the
    machine has one, else under ``tmp_path``."""
    if SHM.is_dir() and os.access(SHM, os.W_OK):
        root = Path(tempfile.mkdtemp(prefix="offcash-test-se-", dir=SHM))
        yield SEs(se_factory, root)
        shutil.rmtree(root, ignore_errors=True)
    else:
        yield SEs(se_factory, tmp_path / "se")


@pytest.fixture(name="network")
def network_per_kind(network: PilotNetwork, ses: SEs) -> PilotNetwork:
    """The ``network`` fixture (one per algorithm), making its SEs of each kind in turn."""
    return network.with_ses(ses)


@pytest.fixture(name="p256")
def p256_per_kind(p256: PilotNetwork, ses: SEs) -> PilotNetwork:
    """The ``p256`` fixture, making its SEs of each kind in turn."""
    return p256.with_ses(ses)
