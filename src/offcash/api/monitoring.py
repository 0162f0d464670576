"""Monitoring routes: ``/healthz`` (alive), ``/readyz`` (database reachable), ``/metrics``.

Theory of operation: none needs a credential, so a load balancer and Prometheus reach them
without the operator token; none reveals more than counts. ``/healthz`` touches nothing;
``/readyz`` runs ``select 1`` on a connection of the ledger's pool and answers 503 with a
problem document when it fails or takes longer than ``READY_TIMEOUT`` (a database that accepts
connections but never answers must not hang the probe: the check runs in one background thread,
and while an earlier check still hangs the answer is 503 at once, so probes never pile up
threads); ``/metrics`` is described in ``offcash.api.metrics``.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as Timeout
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Response
from pydantic import BaseModel

from offcash.api import metrics, problems
from offcash.ledger import db, registry
from offcash.ledger.service import LedgerService


class Health(BaseModel):
    """The answer of ``/healthz`` and ``/readyz``."""

    status: str


#: Seconds ``/readyz`` waits for the database.
READY_TIMEOUT = 3.0


def ping(ledger: LedgerService) -> None:
    """Raise if the ledger's database does not answer."""
    with ledger.engine.connect() as conn:
        conn.execute(sa.text("select 1"))


class Readiness:
    """``ping`` with a deadline, at most one in flight."""

    def __init__(self, ledger: LedgerService, timeout: float = READY_TIMEOUT) -> None:
        self.ledger, self.timeout = ledger, timeout
        self._lock = threading.Lock()
        self._pending: Future[None] | None = None

    def check(self) -> str | None:
        """None if the database answered in time, else why not."""
        with self._lock:
            if self._pending is not None and not self._pending.done():
                return "an earlier check is still waiting for it"
            future: Future[None] = Future()
            self._pending = future

        def run() -> None:
            try:
                ping(self.ledger)
                future.set_result(None)
            except BaseException as exc:  # reported through the future
                future.set_exception(exc)

        threading.Thread(target=run, name="offcash-readyz", daemon=True).start()
        try:
            future.result(self.timeout)
        except Timeout:
            return f"no answer within {self.timeout:g} s"
        except Exception as exc:
            return type(exc).__name__
        return None


def install(
    app: FastAPI, ledger: LedgerService, ready_timeout: float = READY_TIMEOUT
) -> metrics.Metrics:
    """Add the monitoring routes and the latency middleware to ``app``; its metrics."""
    readiness = Readiness(ledger, ready_timeout)

    def counts() -> dict[str, int]:  # a scrape must not hang on a database that does not answer
        reason = readiness.check()
        if reason is not None:
            raise ConnectionError(reason)
        return db.transaction(ledger.engine, registry.anomaly_counts)

    stats = metrics.Metrics(counts)
    app.add_middleware(metrics.Timing, metrics=stats)
    not_ready: dict[int | str, dict[str, Any]] = {
        503: {
            "description": "The ledger database is not reachable",
            "content": {problems.MEDIA_TYPE: {"schema": problems.Problem.model_json_schema()}},
        }
    }

    @app.get("/healthz", tags=["monitoring"])
    def healthz() -> Health:
        """The process is alive (no database access)."""
        return Health(status="ok")

    @app.get("/readyz", tags=["monitoring"], responses=not_ready)
    def readyz() -> Any:
        """The ledger database answers (503 with a problem document when it does not)."""
        reason = readiness.check()
        if reason is not None:
            return problems.problem(
                503, "not-ready", f"the ledger database is not reachable ({reason})"
            )
        return Health(status="ready")

    @app.get(
        "/metrics",
        tags=["monitoring"],
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    def prometheus() -> Response:
        """Prometheus metrics (text format): syncs, settlements, refusals, anomalies, latency."""
        return Response(stats.exposition(), media_type=metrics.CONTENT_TYPE)

    return stats
