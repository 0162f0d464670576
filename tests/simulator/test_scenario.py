"""Scenario files: the shipped ones parse, every bad field is a typed error naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from offcash.errors import LocalError
from offcash.simulator.scenario import (
    LIMIT_KEYS,
    SHIPPED,
    Scenario,
    ScenarioError,
    load,
    loads,
)
from offcash.simulator.sweep import parse_sweep


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_scenarios_parse(name: str) -> None:
    sc = load(name)
    assert sc.name == name and sc.days >= 1 and sc.population.people >= 2


def test_defaults_fill_an_empty_file() -> None:
    assert loads("") == Scenario()


def test_the_shipped_scenarios_say_what_the_issue_asks() -> None:
    disaster = load("disaster")
    (outage,) = disaster.outages
    assert outage.hours == 5 * 24 and outage.region in disaster.population.regions
    wave = load("fraud-wave")
    assert wave.fraud.broken_share > 0 and set(wave.fraud.kinds) == {
        "clone",
        "rollback",
        "balance_edit",
    }
    assert wave.limits_of("Bank B").max_payment < wave.limits_of("Bank A").max_payment
    everyday = load("everyday")
    assert everyday.population.people >= 1000
    expected = everyday.population.people * everyday.behaviour.payments_per_person_day * 30
    assert expected >= 100_000  # the speed target: 100,000 payments in 30 days


def test_a_file_by_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text('days = 3\n[population]\npeople = 5\nbanks = ["X"]\n')
    sc = load(str(path))
    assert (sc.name, sc.days, sc.population.people, sc.population.banks) == (
        "mine",
        3,
        5,
        ("X",),
    )


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("dayz = 3", "dayz: unknown key"),
        ("days = 'three'", "days: expected an integer"),
        ("days = 3.5", "days: expected an integer"),
        ("days = true", "days: expected an integer"),
        ("days = 0", "days: 0 is outside 1..366"),
        ("[population]\npeople = -1", "population.people: -1 is outside"),
        ("[population]\nfolk = 3", "population.folk: unknown key"),
        ("[population]\nbanks = []", "population.banks: expected distinct bank names"),
        ("[population]\nbanks = ['A', 'A']", "population.banks: expected distinct"),
        ("[population.regions]\nnorth = 'half'", "population.regions.north: expected a number"),
        ("[limits]\nmax_payment = 0", "limits.max_payment: 0 is outside"),
        ("[limits]\nmax_payment = 12.5", "limits.max_payment: expected an integer"),
        ('[limits.banks."Bank Z"]\nmax_payment = 5', 'limits.banks."Bank Z": no such bank'),
        (
            '[limits.banks."Bank B"]\nmax_paymnt = 5',
            'limits.banks."Bank B".max_paymnt: unknown key',
        ),
        ("[[outages]]\nregion = 'mars'", "outages[0].region: no region 'mars'"),
        ("[[outages]]\nregion = 'centre'\nhours = -1", "outages[0].hours: -1 is outside"),
        ("outages = 3", "outages: expected an array of tables"),
        ("[fraud]\nkinds = ['bribe']", "fraud.kinds: 'bribe' is not one of"),
        ("[fraud]\nbroken_share = 0.9", "fraud.broken_share: 0.9 is outside"),
        ("[demand]\nhourly = [1, 2]", "demand.hourly: expected a list of 24 numbers"),
        ("[behaviour]\nperson_sync_hours = 0", "behaviour.person_sync_hours: must be positive"),
        ("[behaviour]\ntopup_below = 9\ntopup_to = 5", "behaviour.topup_below: must not exceed"),
        ("currency = 'euro'", "currency: expected an ISO 4217 code"),
        ("algorithm = 'rsa'", "algorithm: expected one of p256, ed25519"),
        ("days = [", "not valid TOML"),
    ],
)
def test_bad_fields_are_named(text: str, where: str) -> None:
    with pytest.raises(ScenarioError) as exc:
        loads(text)
    assert where in str(exc.value)
    assert isinstance(exc.value, LocalError) and exc.value.code == "invalid-scenario"


def test_a_missing_scenario_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="not a file, nor one of everyday"):
        load(str(tmp_path / "nope.toml"))
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"\xff\xfe")
    with pytest.raises(ScenarioError, match="cannot read"):
        load(str(bad))


def test_with_limit_sets_every_bank() -> None:
    sc = load("fraud-wave").with_limit("max_offline_value", 12_345)
    assert {sc.limits_of(b).max_offline_value for b in sc.population.banks} == {12_345}
    with pytest.raises(ScenarioError, match="unknown limit"):
        sc.with_limit("max_fun", 3)


@pytest.mark.parametrize(
    "text",
    ["max_payment", "max_payment=", "max_payment=1,x", "max_fun=1", "max_payment=0", "x=1,1"],
)
def test_bad_sweeps_are_refused(text: str) -> None:
    with pytest.raises(ScenarioError, match="--sweep"):
        parse_sweep(text)


def test_sweep_parses() -> None:
    assert parse_sweep("max_offline_value=20000, 50000") == ("max_offline_value", [20000, 50000])
    assert set(LIMIT_KEYS) >= {"max_balance", "certificate_hours"}


def test_shop_limits() -> None:
    sc = loads("[limits]\nmax_balance = 100\n[limits.shops]\nmax_payment = 7\n")
    assert sc.shop_limits is not None
    assert (sc.shop_limits.max_balance, sc.shop_limits.max_payment) == (100, 7)  # inherits
    assert sc.limits_for("Bank A", shop=True) == sc.shop_limits
    assert sc.limits_for("Bank A", shop=False) == sc.limits_of("Bank A")
    assert sc.with_limit("max_payment", 9).shop_limits == sc.shop_limits  # sweeps: people only
    assert loads("").shop_limits is None
    with pytest.raises(ScenarioError, match=r"limits\.shops\.max_balanc: unknown key"):
        loads("[limits.shops]\nmax_balanc = 1")


def test_limits_are_bounded() -> None:
    with pytest.raises(ScenarioError, match="certificate_hours: 100000 is outside"):
        loads("[limits]\ncertificate_hours = 100000")
    with pytest.raises(ScenarioError, match=r"--sweep: certificate_hours must be in 1\.\.87840"):
        Scenario().with_limit("certificate_hours", 10**6)
