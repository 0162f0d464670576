"""Writing a run's results: ``summary.json`` and a self-contained ``report.html``.

Theory of operation: everything is drawn from the summary dictionary alone (so a report can be
rebuilt from a saved ``summary.json``). Plots are made with matplotlib's Agg backend (no display)
as PNG bytes and embedded in the page as ``data:`` URIs; the page has no script, no stylesheet
link and no external URL, so it opens offline and can be mailed as one file.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;
text-align:right}th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
.ok{color:#070;font-weight:bold}.bad{color:#b00;font-weight:bold}img{max-width:100%}
"""


def write_summary(summary: dict[str, Any], out: Path) -> Path:
    """Write ``out/summary.json`` (sorted keys, so one seed gives identical bytes)."""
    path = out / "summary.json"
    path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def png(fig: Figure) -> bytes:
    """A figure as PNG bytes (and closed)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _img(data: bytes, alt: str) -> str:
    uri = "data:image/png;base64," + base64.b64encode(data).decode()
    return f'<img alt="{html.escape(alt)}" src="{uri}">'


def _money(minor: int) -> str:
    return f"{minor / 100:,.2f}"


def plot_balances(s: dict[str, Any]) -> bytes:
    """Wallet balances and value paid offline, per day."""
    days = s["daily"]
    x = [d["day"] + 0.5 for d in days]  # each day drawn at its middle
    fig, ax = plt.subplots(figsize=(8, 3.4))
    ax.plot(x, [d["wallet_balances"] / 100 for d in days], label="honest wallets' balances")
    ax.bar(x, [d["value_paid"] / 100 for d in days], alpha=0.35, label="paid offline that day")
    _shade_outages(ax, s, per="day")
    ax.set_xlabel("days since the start")
    ax.set_ylabel("currency units")
    ax.set_title("Balances and offline spending")
    ax.legend(loc="upper right", fontsize=8)
    return png(fig)


def plot_refusals(s: dict[str, Any]) -> bytes:
    """Honest payments refused, by reason."""
    reasons = {k: v for k, v in s["payments"]["honest_refused_by_reason"].items()}
    fig, ax = plt.subplots(figsize=(8, 3.4))
    names = list(reasons)
    ax.barh(names, [reasons[n] for n in names], color="#c55")
    ax.invert_yaxis()
    ax.set_xlabel("honest payments refused")
    share = s["payments"]["honest_refused_share"]
    ax.set_title(f"Refusals by reason ({share:.2%} of honest payments refused)")
    return png(fig)


def plot_exposure(s: dict[str, Any]) -> bytes:
    """Per bank: losses booked and the worst case the limits allowed; detection latency."""
    banks = s["fraud"]["banks"]
    names = list(banks)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.4))
    xs = range(len(names))
    a1.bar([x - 0.2 for x in xs], [banks[b]["worst_case"] / 100 for b in names], 0.4,
           label="worst case the limits allowed")  # fmt: skip
    a1.bar([x + 0.2 for x in xs], [banks[b]["losses_booked"] / 100 for b in names], 0.4,
           label="losses booked")  # fmt: skip
    a1.set_xticks(list(xs), names)
    a1.set_ylabel("currency units")
    a1.set_title("Fraud exposure per bank")
    a1.legend(fontsize=8)
    hours = s["detection"].get("all_hours") or []
    if hours:
        a2.hist(hours, bins=min(20, max(1, len(hours))), color="#57a")
    a2.set_xlabel("hours from the attack to detection and revocation")
    a2.set_ylabel("broken wallets")
    a2.set_title("Detection latency")
    return png(fig)


def plot_backlog(s: dict[str, Any]) -> bytes:
    """Log entries awaiting upload, hour by hour, and those made offline."""
    b = s["backlog"]
    fig, ax = plt.subplots(figsize=(8, 3.4))
    ax.plot(range(len(b["hourly"])), b["hourly"], label="all entries awaiting upload", lw=1)
    ax.plot(range(len(b["hourly_outage"])), b["hourly_outage"], label="made during an outage")
    _shade_outages(ax, s, per="hour")
    ax.set_xlabel("hour")
    ax.set_ylabel("payment log entries")
    ax.set_title("Settlement backlog during and after outages")
    ax.legend(fontsize=8)
    return png(fig)


def _shade_outages(ax: Any, s: dict[str, Any], per: str) -> None:
    for o in s["outages"]:
        a, b = o["start_hour"], o["end_hour"]
        if per == "day":
            a, b = a / 24, b / 24
        ax.axvspan(a, b, color="#999", alpha=0.2, label=f"{o['cause']}: {o['region']} offline")


def _table(rows: list[list[str]], head: list[str]) -> str:
    h = "".join(f"<th>{html.escape(c)}</th>" for c in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows
    )
    return f"<table><tr>{h}</tr>{body}</table>"


def _flag(ok: bool) -> str:
    return '<span class="ok">yes</span>' if ok else '<span class="bad">NO</span>'


def render(s: dict[str, Any]) -> str:
    """The whole report page for one run."""
    p, f = s["payments"], s["fraud"]
    det = s["detection"]
    banks = [
        [b, _money(v["losses_booked"]), _money(v["worst_case"]),
         _money(v["unbacked_payments"])]
        for b, v in f["banks"].items()
    ]  # fmt: skip
    outages = [
        [o["region"], o["cause"], str(o["start_hour"]), str(o["end_hour"]),
         str(o["backlog_peak"]), "not within the run" if o["drain_hours"] is None
         else str(o["drain_hours"])]
        for o in s["outages"]
    ]  # fmt: skip
    parts = [
        f"<h1>offcash simulation: {html.escape(s['scenario'])}</h1>",
        f"<p>Seed {s['seed']}, {s['days']} days, {s['population']['people']} people, "
        f"{s['population']['merchants']} shops with a secure element, "
        f"{s['population']['terminals']} with a receive-only terminal, "
        f"{s['population']['attackers']} broken secure elements.</p>",
        _table(
            [
                ["payments attempted", str(p["attempted"])],
                ["completed offline", str(p["completed"])],
                ["refused", str(p["refused"])],
                ["share of honest payments refused", f"{p['honest_refused_share']:.2%}"],
                ["honest_unpaid (must be 0)", _money(s["honest_unpaid"])],
                ["books balanced at every day's end", "yes" if s["conserved"] else "NO"],
                [
                    "double spends detected / attacks",
                    f"{f['detected']} / {f['attacked']}",
                ],
                [
                    "detection latency (median, max hours)",
                    f"{det['median_hours']}, {det['max_hours']}",
                ],
            ],
            ["", ""],
        ),
        f"<p>Conserved: {_flag(s['conserved'])} &nbsp; Every honest party paid: "
        f"{_flag(s['honest_unpaid'] == 0)}</p>",
        "<h2>Balances and offline spending</h2>",
        _img(plot_balances(s), "balances"),
        "<h2>Refusals by reason</h2>",
        _img(plot_refusals(s), "refusals"),
        _table([[k, str(v)] for k, v in p["refused_by_reason"].items()], ["reason", "all"]),
        "<h2>Fraud exposure and detection</h2>",
        _img(plot_exposure(s), "exposure"),
        _table(
            banks, ["bank", "losses booked", "worst case allowed", "unbacked payments accepted"]
        ),
        "<h2>Settlement backlog</h2>",
        _img(plot_backlog(s), "backlog"),
        _table(outages, ["region", "cause", "from hour", "to hour", "peak", "drain hours"])
        if outages
        else "<p>No outage in this scenario.</p>",
        "<h2>Other events</h2>",
        _table([[k, str(v)] for k, v in s["events"].items()], ["event", "count"]),
    ]
    return _page(f"offcash simulation: {s['scenario']}", parts)


def _page(title: str, parts: list[str]) -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        + "\n".join(parts)
        + "</body></html>\n"
    )


def write_report(summary: dict[str, Any], out: Path) -> Path:
    """Write ``out/report.html`` for one run."""
    path = out / "report.html"
    path.write_text(render(summary), encoding="utf-8")
    return path


def plot_tradeoff(points: list[dict[str, Any]], limit: str) -> bytes:
    """The trade-off curve: fraud exposure against the share of honest payments refused."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    xs = [100 * p["honest_refused_share"] for p in points]
    per_se = [p["worst_case_per_broken_se"] / 100 for p in points]
    worst = [p["worst_case"] / 100 for p in points]
    booked = [p["losses_booked"] / 100 for p in points]
    ax.plot(xs, per_se, "o-", label="worst case for one broken SE")
    ax.plot(xs, worst, "^:", label="worst case for this run's attackers")
    ax.plot(xs, booked, "s--", label="losses booked in this run")
    for x, y, p in zip(xs, per_se, points, strict=True):
        ax.annotate(f"{limit}={p['value']}", (x, y), fontsize=7, xytext=(4, 4),
                    textcoords="offset points")  # fmt: skip
    ax.set_xlabel("honest payments refused (%)")
    ax.set_ylabel("fraud exposure (currency units)")
    ax.set_title(f"Trade-off as {limit} varies")
    ax.legend(fontsize=8)
    return png(fig)


def render_sweep(scenario: str, limit: str, points: list[dict[str, Any]]) -> str:
    """The sweep page: the trade-off curve and one row per value."""
    rows = [
        [str(p["value"]), f"{p['honest_refused_share']:.2%}",
         _money(p["worst_case_per_broken_se"]), _money(p["worst_case"]),
         _money(p["losses_booked"]), _money(p["honest_unpaid"]), "yes" if p["conserved"] else "NO",
         p["dir"]]
        for p in points
    ]  # fmt: skip
    parts = [
        f"<h1>offcash sweep: {html.escape(scenario)}, {html.escape(limit)}</h1>",
        "<p>Each point is a whole run of the scenario with the limit at that value (the same "
        "seed, so the same people and demand). Each run's own report is in its folder.</p>",
        _img(plot_tradeoff(points, limit), "trade-off"),
        _table(
            rows,
            [
                limit,
                "honest refused",
                "worst case, one broken SE",
                "worst case, this run",
                "losses booked",
                "honest unpaid",
                "conserved",
                "folder",
            ],
        ),
    ]
    return _page(f"offcash sweep: {scenario}", parts)
