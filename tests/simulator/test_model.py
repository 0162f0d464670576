"""The pure parts: demand, outage calendar, backlog drain, summary counters."""

from __future__ import annotations

import random
from collections import Counter

from offcash.simulator.engine import worst_case
from offcash.simulator.metrics import REASONS, Metrics, backlog_drain, quantile
from offcash.simulator.model import DAY, HOUR, Calendar, Demand
from offcash.simulator.scenario import LimitSet, Outage, Scenario, loads


def test_demand_follows_the_weights() -> None:
    d = Demand.of(Scenario())
    day_total = sum(d.expected(1000, 0, h) for h in range(24))
    assert abs(day_total - 1000 * 3.3 * 1.0 / (sum(d.weekly) / 7)) < 1e-6
    assert d.expected(1000, 0, 12) > 10 * d.expected(1000, 0, 3)  # noon busier than 3 a.m.
    rng = random.Random(1)
    draws = [d.draw(rng, 1000, 0, 12) for _ in range(300)]
    mean = sum(draws) / len(draws)
    assert abs(mean - d.expected(1000, 0, 12)) < 0.05 * d.expected(1000, 0, 12)


def test_calendar() -> None:
    sc = loads(
        "[population.regions]\na = 1\nb = 1\n[[outages]]\nregion = 'b'\nstart_hour = 2\nhours = 3"
    )
    cal = Calendar.of(sc, ["a", "b"])
    t0 = sc.start
    assert cal.offline_until(1, t0 + 2 * HOUR) == t0 + 5 * HOUR
    assert cal.offline_until(1, t0 + 5 * HOUR) is None
    assert cal.offline_until(0, t0 + 3 * HOUR) is None
    assert cal.restorations(t0, t0 + DAY) == [(t0 + 5 * HOUR, 1)]
    cal.add(1, Outage("b", 4, 4), t0)  # overlapping: back only when both are over
    assert cal.offline_until(1, t0 + 3 * HOUR) == t0 + 5 * HOUR
    assert cal.restorations(t0, t0 + DAY) == [(t0 + 8 * HOUR, 1)]


def test_backlog_drain() -> None:
    backlog = [0, 0, 3, 5, 7, 4, 2, 0, 0]
    assert backlog_drain(backlog, [(2, 5)]) == [
        {"start_hour": 2, "end_hour": 5, "peak": 7, "drain_hours": 3}
    ]
    assert backlog_drain([0, 4, 4], [(1, 2)])[0]["drain_hours"] is None


def test_summary_counts() -> None:
    m = Metrics()
    m.attempt(True)
    m.refuse("max_payment", True)
    m.attempt(True)
    m.complete(500, True)
    m.attempt(False)
    m.complete(900, False)
    m.close_day(10, 20, 0, True)
    p = m.summary()["payments"]
    assert (p["attempted"], p["completed"], p["refused"], p["value_paid"]) == (3, 2, 1, 1400)
    assert p["honest_refused_share"] == 0.5
    assert list(p["refused_by_reason"])[: len(REASONS)] == list(REASONS)


def test_quantile() -> None:
    h = Counter({1: 50, 2: 40, 30: 10})
    assert (quantile(h, 0.5), quantile(h, 0.9), quantile(h, 0.99)) == (1, 2, 30)
    assert quantile(h, 0.0) == 1 and quantile(Counter(), 0.5) is None


def test_worst_case_by_hand() -> None:
    lim = LimitSet()  # 300.00 held, 100.00 a payment, 50 payments or 500.00 offline
    assert worst_case("clone", lim, 2) == 2 * 30_000
    assert worst_case("rollback", lim, 1) == 30_000
    assert worst_case("balance_edit", lim, 2) == 50_000
    tight = LimitSet(max_payment=100, max_offline_payments=5)
    assert worst_case("clone", tight, 3) == 3 * 500
    assert worst_case("balance_edit", tight, 3) == 500
