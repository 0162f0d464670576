"""Prometheus metrics of the settlement service (``GET /metrics``, text format 0.0.4).

Theory of operation: two kinds of series.

- Counted by this process as it answers (``Metrics``): sync uploads by outcome, payments
  settled (by sync or by a terminal's redemption), messages refused by reason, and the latency
  of every request as a histogram labelled by method, route *template* (``/v1/wallets/{wallet}
  /fund``, never the raw path, so ids do not explode the series) and status. Several service
  processes on one database are several scrape targets: sum these across them.
- Read from the ledger at scrape time (``LedgerCollector``): anomalies recorded, by kind, and
  double spends among them. The database is shared, so every process reports the same totals
  (aggregate with ``max``, not ``sum``); ``offcash_ledger_up`` is 0 when it cannot be read.

``offcash serve`` and ``python -m offcash.api`` run one uvicorn process. A deployment that runs
several worker processes behind one port sets ``PROMETHEUS_MULTIPROC_DIR`` (an empty directory,
before the processes start): the counters then live in files there (prometheus-client's
multiprocess mode) and ``/metrics`` of any worker reports the sum over all of them.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from offcash.ledger.sync import Refusal

CONTENT_TYPE = CONTENT_TYPE_LATEST
#: A refusal reason used as a label as is (a Rejection name or a ledger rule); others: "other".
_REASON = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,47}")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def reason_label(reason: str) -> str:
    """A bounded label for a refusal reason."""
    return reason if _REASON.fullmatch(reason) else "other"


class LedgerCollector(Collector):
    """Ledger-wide series read at scrape time (``counts``: anomalies by kind, from the DB)."""

    def __init__(self, counts: Callable[[], Mapping[str, int]]) -> None:
        self.counts = counts

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("offcash_ledger_up", "1 if the ledger database answered")
        try:
            counts = self.counts()
        except Exception:  # a scrape must answer even when the database does not
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        anomalies = CounterMetricFamily(
            "offcash_ledger_anomalies", "Anomalies the ledger recorded, by kind", labels=["kind"]
        )
        for kind, n in sorted(counts.items()):
            anomalies.add_metric([kind], n)
        yield anomalies
        yield CounterMetricFamily(
            "offcash_ledger_double_spends",
            "Double spends the ledger detected (anomalies of kind double-spend)",
            value=counts.get("double-spend", 0),
        )


class Metrics:
    """This process's counters and the ledger's collector, and the ``/metrics`` answer."""

    def __init__(self, counts: Callable[[], Mapping[str, int]]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.syncs = Counter(
            "offcash_syncs", "Sync uploads answered, by outcome", ["outcome"], registry=r
        )
        self.settled = Counter(
            "offcash_payments_settled", "Payments settled, by route", ["via"], registry=r
        )
        self.refused = Counter(
            "offcash_payments_refused", "Messages refused at settlement, by reason", ["reason"],
            registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "offcash_http_request_duration_seconds",
            "Time to answer a request, by method, route template and status",
            ["method", "route", "status"],
            registry=r,
        )
        self.ledger = LedgerCollector(counts)
        r.register(self.ledger)

    def refusals(self, refused: Iterable[Refusal]) -> None:
        """Count refused messages by reason."""
        for x in refused:
            self.refused.labels(reason_label(x.reason)).inc()

    def exposition(self) -> bytes:
        """The text format of every series (summed over processes in multiprocess mode)."""
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            return bytes(generate_latest(self.registry))
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        registry.register(self.ledger)
        return bytes(generate_latest(registry))


class Timing:
    """ASGI middleware: each HTTP request's latency into ``metrics.latency`` by route template
    (``unmatched`` when no route matched)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"] if scope["method"] in _METHODS else "other"
            self.metrics.latency.labels(method, route, str(status)).observe(
                time.perf_counter() - start
            )
