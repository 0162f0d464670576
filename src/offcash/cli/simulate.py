"""``offcash simulate``: run a risk and resilience scenario on the real offcash code.

Theory of operation: a thin command over ``offcash.simulator``: load the scenario (a shipped
name or a TOML file), apply ``--seed``, ``--scale`` and ``--days``, then either one run
(``DIR/summary.json``, ``DIR/report.html``, ``DIR/timing.json``, the ledger ``DIR/ledger.db``)
or a ``--sweep`` of one limit (``DIR/sweep.json``, ``DIR/report.html``, one folder per value).
A bad scenario or option is a ``ScenarioError`` (one line, exit 1, from the main guard).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from offcash.cli import output
from offcash.cli.amount import Amount
from offcash.domain.money import Currency
from offcash.simulator.scenario import SHIPPED, ScenarioError, load


def simulate(
    scenario: Annotated[
        str,
        typer.Option(
            "--scenario", "-s", help=f"A shipped scenario ({', '.join(SHIPPED)}) or a TOML file."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the results.")],
    seed: Annotated[
        int | None, typer.Option("--seed", help="Random seed (default: the scenario's).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    sweep: Annotated[
        str | None,
        typer.Option("--sweep", help="LIMIT=V1,V2,...: one run per value, and the trade-off."),
    ] = None,
    scale: Annotated[
        float, typer.Option("--scale", help="Multiply people, shops and terminals.")
    ] = 1.0,
    days: Annotated[int | None, typer.Option("--days", help="Simulate this many days.")] = None,
) -> None:
    """Simulate a population on the real offcash: limits, outages, fraud; summary and report."""
    # imported here: matplotlib and the engine are not loaded by every other command
    from offcash.simulator.engine import simulate as run_simulation
    from offcash.simulator.report import write_report, write_summary
    from offcash.simulator.sweep import parse_sweep, run_sweep

    sc = load(scenario)
    if seed is not None:
        if seed < 0:
            raise ScenarioError("--seed must be >= 0")
        sc = dataclasses.replace(sc, seed=seed)
    if not 0 < scale <= 100 or (days is not None and not 1 <= days <= 366):
        raise ScenarioError("--scale must be in (0, 100] and --days in 1..366")
    if scale != 1.0 or days is not None:
        sc = sc.scaled(scale, days)
    say = (lambda _: None) if as_json else (lambda text: output.say(f"  {text}", stderr=True))
    result: dict[str, Any]
    if sweep is not None:
        key, values = parse_sweep(sweep)
        result = run_sweep(sc, key, values, out, say)
        result["report"] = str(out / "report.html")
    else:
        summary, timing = run_simulation(sc, out, say)
        write_summary(summary, out)
        write_report(summary, out)
        (out / "timing.json").write_text(json.dumps(timing, indent=2, sort_keys=True) + "\n")
        result = summary
        if not as_json:
            _tell(summary, out)
            return
    output.emit(result, as_json, lambda r: output.say(f"Report: {r['report']}"))


def _tell(s: dict[str, Any], out: Path) -> None:
    p, f = s["payments"], s["fraud"]
    digits = Currency.of(s["currency"]).digits
    output.say(
        f"{p['attempted']} payments attempted, {p['completed']} completed offline, "
        f"{p['honest_refused_share']:.2%} of honest payments refused"
    )
    output.say(
        f"fraud: {f['detected']}/{f['attacked']} broken wallets detected; losses booked "
        + ", ".join(
            f"{b} {Amount(v['losses_booked'], digits)} {s['currency']}"
            for b, v in f["banks"].items()
        )
    )
    output.say(
        f"honest_unpaid {Amount(s['honest_unpaid'], digits)} {s['currency']}, "
        f"conserved {s['conserved']}"
    )
    output.say(f"Summary: {out / 'summary.json'}  Report: {out / 'report.html'}")
