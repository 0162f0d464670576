"""Schemathesis against the OpenAPI document the service serves (``/openapi.json``).

Schemathesis reads the document from the running app (in-process, through its ASGI transport),
generates requests for every operation, both conforming to the schema and not, and checks the
responses: never a server error, a documented status code and content type, and a body that
conforms to the documented schema (every error is the ``Problem`` schema, RFC 9457). Operator
calls carry the bearer token so they reach the ledger. ``OFFCASH_FUZZ_EXAMPLES`` scales the
examples per operation, as for the other fuzz tests.
"""

from __future__ import annotations

import atexit
import tempfile
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from offcash.api.app import create_app  # noqa: E402
from offcash.ledger import LedgerService  # noqa: E402

from fuzzkit import EXAMPLES, LONG_RUN  # noqa: E402
from harness import T0, PilotNetwork  # noqa: E402

TOKEN = "schemathesis-token"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _served_schema() -> Any:
    """The schema the app serves, loaded at collection time.

    Not ``schemathesis.pytest.from_fixture``: its lazy loader sets pytest's private
    ``Node._nodeid``, which pytest 9.2 no longer has (``AttributeError: '_nodeid'``). The eager
    loader uses only public pytest API, so this test runs on every pytest the ranges allow.
    The ledger lives in a temporary folder removed when the interpreter exits.
    """
    tmp = tempfile.TemporaryDirectory()
    net = PilotNetwork.create()
    ledger = LedgerService.open(f"sqlite:///{tmp.name}/schemathesis.db")
    ledger.install(net.params, net.central_bank, net.banks)
    ledger.issue("Bank A", 1_000_000, T0)
    app = create_app(ledger, TOKEN, clock=lambda: T0, accept_client_time=True)
    atexit.register(tmp.cleanup)
    atexit.register(ledger.engine.dispose)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


schema = _served_schema()


@schema.parametrize()
@settings(
    max_examples=max(1, EXAMPLES // 2),
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
    derandomize=not LONG_RUN,
)
def test_openapi_operations(case: Any) -> None:
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {TOKEN}"}
    case.call_and_validate(checks=CHECKS)
