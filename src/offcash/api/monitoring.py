"""Monitoring routes: ``/healthz`` (alive), ``/readyz`` (database reachable), ``/metrics``.

Theory of operation: none needs a credential, so a load balancer and Prometheus reach them
without the operator token; none reveals more than counts. ``/healthz`` touches nothing;
``/readyz`` runs ``select 1`` on a connection of the ledger's pool and answers 503 with a
problem document when it fails; ``/metrics`` is described in ``offcash.api.metrics``.
"""

from __future__ import annotations

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


def ping(ledger: LedgerService) -> None:
    """Raise if the ledger's database does not answer."""
    with ledger.engine.connect() as conn:
        conn.execute(sa.text("select 1"))


def install(app: FastAPI, ledger: LedgerService) -> metrics.Metrics:
    """Add the monitoring routes and the latency middleware to ``app``; its metrics."""
    stats = metrics.Metrics(lambda: db.transaction(ledger.engine, registry.anomaly_counts))
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
        try:
            ping(ledger)
        except Exception as exc:
            reason = type(exc).__name__
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
