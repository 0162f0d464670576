"""Disaster mode end to end: the shipped ``disaster`` scenario at reduced size, on the real
secure elements and a real SQLite ledger.

A region is offline for five days; its certificates are cut to four days here so that every
wallet there outlives its certificate offline. What must hold (issue 14): payments go on offline
within the limits during the outage; certificates that expire offline stop their wallets from
paying (the SE refuses, as the protocol says) and are renewed at the next sync; after the syncs
(in random order) every honest party holds what the model says it owns (``honest_unpaid`` 0,
computed from the model's own bookkeeping, not from the ledger); every broken SE that double
spent is detected, attributed with evidence, and revoked, and nobody honest is accused; the books
balance at every day's end.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from offcash.simulator.engine import simulate
from offcash.simulator.scenario import load


@pytest.fixture(scope="module")
def disaster(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    sc = load("disaster").with_limit("certificate_hours", 96)
    pop = dataclasses.replace(sc.population, people=30, merchants=3, terminals=2)
    fraud = dataclasses.replace(sc.fraud, broken_share=0.1, start_day=2.0, spread_days=1.0)
    sc = dataclasses.replace(sc, population=pop, fraud=fraud, days=9)
    summary, _ = simulate(sc, tmp_path_factory.mktemp("disaster"))
    return summary


def test_payments_continue_offline_within_the_limits(disaster: dict[str, Any]) -> None:
    ev = disaster["events"]
    assert ev.get("completed_during_outage", 0) > 20
    # the ledger re-verifies every payment and every log against the certified limits:
    # nothing an honest wallet did offline broke one
    assert not [k for k in ev if k.startswith("settlement_refused:")]
    assert not [k for k in ev if k.startswith("honest_")]  # no honest wallet revoked
    assert disaster["fraud"]["false_accusations"] == 0


def test_certificates_that_expire_offline(disaster: dict[str, Any]) -> None:
    ev = disaster["events"]
    assert ev.get("refused_during_outage:expired_certificate", 0) > 0
    assert disaster["payments"]["honest_refused_by_reason"]["expired_certificate"] > 0
    assert ev.get("renewed_after_expiry", 0) > 0  # synced after expiry and renewed
    assert not [k for k in ev if k.startswith("sync_failed")]


def test_the_outage_backlog_drains(disaster: dict[str, Any]) -> None:
    (outage,) = disaster["outages"]
    assert (outage["start_hour"], outage["end_hour"]) == (72, 192)
    assert outage["backlog_peak"] > 0
    assert outage["drain_hours"] is not None and outage["drain_hours"] <= 24
    assert disaster["backlog"]["hourly_outage"][-1] == 0


def test_every_honest_payee_is_paid(disaster: dict[str, Any]) -> None:
    assert disaster["honest_unpaid"] == 0
    assert disaster["honest_overpaid"] == 0
    assert disaster["settlement"]["suspense_at_end"] == 0


def test_every_double_spend_is_detected_and_attributed(disaster: dict[str, Any]) -> None:
    f = disaster["fraud"]
    assert f["attacked"] == 3 and f["by_kind"] == {"balance_edit": 1, "clone": 1, "rollback": 1}
    assert f["detected"] == f["attacked"] == f["revoked"]
    assert f["detected_by_kind"] == {"balance_edit": 1, "clone": 1, "rollback": 1}
    assert f["double_spenders_with_evidence"] == 2 and f["double_spent_counters"] > 0
    for bank in f["banks"].values():  # every loss booked, and within what the limits allowed
        assert bank["losses_booked"] == bank["unbacked_payments"]
        assert bank["losses_booked"] <= bank["worst_case"]
    assert disaster["detection"]["count"] == 3


def test_the_books_balance(disaster: dict[str, Any]) -> None:
    assert disaster["conserved"] is True
    assert all(d["conserved"] for d in disaster["daily"])
