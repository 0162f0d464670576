"""What a simulation counts, aggregated per day and per hour (never per payment).

Theory of operation: the engine calls ``Metrics`` methods as things happen (a payment attempted,
completed or refused with a reason, a sync, a double spend detected...) and at each day's end
(``close_day``). Only counters and per-day / per-hour series are kept, so memory grows with the
number of days by a few numbers a day, not with the number of payments. ``summary`` turns them
into the JSON-ready ``summary.json``. Pure: no I/O, no clock, no randomness.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

#: Refusal reasons: each limit, the certificate, the balance (``Limit`` names lower-cased).
LIMIT_REASONS = (
    "max_balance",
    "max_payment",
    "max_offline_payments",
    "max_offline_value",
    "max_offline_seconds",
    "max_log_entries",
)
REASONS = (*LIMIT_REASONS, "expired_certificate", "insufficient_funds")


@dataclass
class Day:
    """One day's counts."""

    attempted: int = 0
    completed: int = 0
    refused: int = 0
    honest_attempted: int = 0
    honest_refused: int = 0
    value_paid: int = 0
    fraud_value: int = 0
    syncs: int = 0
    wallet_balances: int = 0
    accounts: int = 0
    backlog_peak: int = 0
    losses: int = 0
    conserved: bool = True


@dataclass
class Metrics:
    """Counters of one run (see the module docstring)."""

    days: list[Day] = field(default_factory=list)
    today: Day = field(default_factory=Day)
    refused: Counter[str] = field(default_factory=Counter)
    honest_refused: Counter[str] = field(default_factory=Counter)
    after_debit: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)
    backlog: list[int] = field(default_factory=list)  # hourly: entries awaiting upload
    backlog_outage: list[int] = field(default_factory=list)  # hourly: of those, made offline
    detection_hours: list[float] = field(default_factory=list)
    worst_case: Counter[str] = field(default_factory=Counter)  # per bank
    fraud_value: Counter[str] = field(default_factory=Counter)  # per bank: beyond funding
    #: wall-clock sync durations in whole milliseconds -> count (bounded; not in the summary)
    sync_ms: Counter[int] = field(default_factory=Counter)

    # --- payments ------------------------------------------------------------------------------

    def attempt(self, honest: bool) -> None:
        """A payer tried to pay."""
        self.today.attempted += 1
        if honest:
            self.today.honest_attempted += 1

    def complete(self, amount: int, honest: bool) -> None:
        """The payee accepted the payment offline."""
        self.today.completed += 1
        self.today.value_paid += amount
        if not honest:
            self.today.fraud_value += amount

    def refuse(self, reason: str, honest: bool, debited: bool = False) -> None:
        """The payment did not happen offline, for ``reason``; ``debited``: the payer had
        already signed it (a torn payment, settled later through suspense)."""
        self.today.refused += 1
        self.refused[reason] += 1
        if honest:
            self.today.honest_refused += 1
            self.honest_refused[reason] += 1
        if debited:
            self.after_debit[reason] += 1

    def count(self, event: str, n: int = 1) -> None:
        """Count something else (syncs, replays, tampering, revocations...)."""
        self.events[event] += n

    # --- time ---------------------------------------------------------------------------------

    def hour(self, backlog: int, backlog_outage: int) -> None:
        """The backlog at the end of an hour."""
        self.backlog.append(backlog)
        self.backlog_outage.append(backlog_outage)
        self.today.backlog_peak = max(self.today.backlog_peak, backlog)

    def close_day(self, wallet_balances: int, accounts: int, losses: int, conserved: bool) -> None:
        """End the day with the ledger's audit and the wallets' balances."""
        d = self.today
        d.wallet_balances, d.accounts, d.losses, d.conserved = (
            wallet_balances,
            accounts,
            losses,
            conserved,
        )
        self.days.append(d)
        self.today = Day()

    # --- summary ------------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """The counters as the JSON-ready core of ``summary.json``."""
        attempted = sum(d.attempted for d in self.days)
        honest = sum(d.honest_attempted for d in self.days)
        honest_refused = sum(d.honest_refused for d in self.days)
        return {
            "payments": {
                "attempted": attempted,
                "completed": sum(d.completed for d in self.days),
                "refused": sum(d.refused for d in self.days),
                "value_paid": sum(d.value_paid for d in self.days),
                "refused_by_reason": _reasons(self.refused),
                "honest_attempted": honest,
                "honest_refused": honest_refused,
                "honest_refused_by_reason": _reasons(self.honest_refused),
                "honest_refused_share": round(honest_refused / honest, 6) if honest else 0.0,
                "refused_after_payer_signed": dict(sorted(self.after_debit.items())),
            },
            "events": dict(sorted(self.events.items())),
            "detection": _latency(self.detection_hours),
            "daily": [
                {
                    "day": i,
                    "attempted": d.attempted,
                    "completed": d.completed,
                    "refused": d.refused,
                    "honest_refused": d.honest_refused,
                    "value_paid": d.value_paid,
                    "fraud_value": d.fraud_value,
                    "syncs": d.syncs,
                    "wallet_balances": d.wallet_balances,
                    "accounts": d.accounts,
                    "backlog_peak": d.backlog_peak,
                    "losses": d.losses,
                    "conserved": d.conserved,
                }
                for i, d in enumerate(self.days)
            ],
        }


def quantile(histogram: Counter[int], q: float) -> int | None:
    """The ``q`` quantile of the values counted in ``histogram`` (None if empty)."""
    total = sum(histogram.values())
    if not total:
        return None
    rank, seen = q * (total - 1), 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen > rank:
            return value
    return max(histogram)


def _reasons(c: Counter[str]) -> dict[str, int]:
    """Every standard reason (0 if none) and any other one seen, sorted."""
    out = {r: c.get(r, 0) for r in REASONS}
    out.update({k: v for k, v in sorted(c.items()) if k not in out})
    return out


def _latency(hours: list[float]) -> dict[str, Any]:
    """Detection latency statistics, in hours."""
    if not hours:
        return {"count": 0, "min_hours": None, "median_hours": None, "max_hours": None}
    return {
        "count": len(hours),
        "min_hours": round(min(hours), 3),
        "median_hours": round(statistics.median(hours), 3),
        "max_hours": round(max(hours), 3),
        "all_hours": [round(h, 3) for h in hours],
    }


def backlog_drain(
    backlog: list[int], outage_hours: list[tuple[int, int]]
) -> list[dict[str, int | None]]:
    """For each outage (start hour, end hour, both relative to the run), the largest backlog of
    entries made offline, and the hours from the end of the outage until they were all uploaded
    (None if never within the run)."""
    out: list[dict[str, int | None]] = []
    for start, end in outage_hours:
        window = backlog[start : min(end, len(backlog))]
        peak = max(window, default=0)
        drain = None
        for h in range(end, len(backlog)):
            if backlog[h] == 0:
                drain = h - end + 1
                break
        out.append({"start_hour": start, "end_hour": end, "peak": peak, "drain_hours": drain})
    return out
