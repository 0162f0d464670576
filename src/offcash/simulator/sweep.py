"""A sweep: one scenario run once per value of one limit, and the trade-off it shows.

Theory of operation: ``parse_sweep("max_offline_value=20000,50000")`` checks the limit name and
the values (positive integers, at most ``MAX_POINTS``); ``run_sweep`` runs the scenario with the
limit at each value (same seed, so the same people and demand) in ``DIR/<limit>-<value>/``,
each with its own summary and report, and writes ``DIR/sweep.json`` (one point per value: the
share of honest payments refused, the worst case the limits allowed, the losses booked) and
``DIR/report.html`` with the trade-off curve.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from offcash.simulator.engine import simulate
from offcash.simulator.report import render_sweep, write_report, write_summary
from offcash.simulator.scenario import LIMIT_KEYS, Scenario, ScenarioError

MAX_POINTS = 20


def parse_sweep(text: str) -> tuple[str, list[int]]:
    """``LIMIT=V1,V2,...`` as the limit name and its values."""
    key, sep, values = text.partition("=")
    key = key.strip()
    if not sep or key not in LIMIT_KEYS:
        raise ScenarioError(
            f"--sweep: expected LIMIT=V1,V2,... with LIMIT one of {', '.join(LIMIT_KEYS)}"
        )
    out: list[int] = []
    for raw in values.split(","):
        v = raw.strip()
        if not v.isdigit() or int(v) <= 0:
            raise ScenarioError(f"--sweep: {v!r} is not a positive integer")
        out.append(int(v))
    if not 1 <= len(out) <= MAX_POINTS or len(set(out)) != len(out):
        raise ScenarioError(f"--sweep: give 1 to {MAX_POINTS} distinct values")
    return key, out


def point(value: int, summary: dict[str, Any], folder: str) -> dict[str, Any]:
    """One point of the trade-off curve from one run's summary."""
    banks = summary["fraud"]["banks"].values()
    return {
        "value": value,
        "dir": folder,
        "honest_refused_share": summary["payments"]["honest_refused_share"],
        "honest_refused": summary["payments"]["honest_refused"],
        "worst_case": sum(b["worst_case"] for b in banks),
        "worst_case_per_broken_se": max(
            (v for b in banks for v in b["worst_case_per_attacker"].values()), default=0
        ),
        "losses_booked": sum(b["losses_booked"] for b in banks),
        "honest_unpaid": summary["honest_unpaid"],
        "conserved": summary["conserved"],
    }


def run_sweep(
    scenario: Scenario,
    key: str,
    values: list[int],
    out: Path,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the sweep (see the module docstring); returns what ``sweep.json`` holds."""
    say = progress or (lambda _: None)
    points = []
    timings = {}
    for value in sorted(values):
        folder = f"{key}-{value}"
        say(f"{key} = {value}")
        summary, timing = simulate(scenario.with_limit(key, value), out / folder, progress)
        write_summary(summary, out / folder)
        write_report(summary, out / folder)
        points.append(point(value, summary, folder))
        timings[folder] = timing
    result = {"scenario": scenario.name, "seed": scenario.seed, "limit": key, "points": points}
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    (out / "timing.json").write_text(json.dumps(timings, indent=2, sort_keys=True) + "\n")
    (out / "report.html").write_text(render_sweep(scenario.name, key, points), encoding="utf-8")
    return result
