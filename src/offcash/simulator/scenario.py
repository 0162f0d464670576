"""Simulation scenarios: a TOML file read into typed dataclasses with defaults, strictly.

Theory of operation: ``load(name_or_path)`` finds a shipped scenario by name (the
``scenarios/`` folder of this package) or reads a file, and ``parse(mapping)`` turns the TOML
tables into ``Scenario`` (population, behaviour, demand, limits per bank, outages, fraud). Every
key is checked: an unknown key, a wrong type or a value out of range is a ``ScenarioError``
naming the field (``limits.banks."Bank B".max_payment: expected an integer``), so a typo never
silently falls back to a default. Money is in integer minor units; times in hours or days.
docs/SIMULATOR.md lists every key with its default.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from offcash.domain.limits import DEFAULT_LIMITS
from offcash.errors import LocalError

#: Scenarios that ship with offcash (``offcash simulate --scenario NAME``).
SHIPPED = ("everyday", "disaster", "fraud-wave")
#: The limit names ``--sweep`` accepts (the ``[limits]`` keys).
LIMIT_KEYS = (
    "max_balance",
    "max_payment",
    "max_offline_payments",
    "max_offline_value",
    "max_offline_seconds",
    "certificate_hours",
)
#: The largest value of each limit (certificates must end before the year 9999).
LIMIT_MAX = {key: 2**53 for key in LIMIT_KEYS} | {"certificate_hours": 10 * 366 * 24}
FRAUD_KINDS = ("clone", "rollback", "balance_edit")
MAX_DAYS = 366
MAX_AGENTS = 200_000


class ScenarioError(LocalError):
    """A scenario file is unreadable or a field is invalid; the message names the field."""

    code = "invalid-scenario"


@dataclass(frozen=True)
class LimitSet:
    """Offline limits (as ``offcash.domain.Limits``) plus the certificate lifetime."""

    max_balance: int = DEFAULT_LIMITS.max_balance
    max_payment: int = DEFAULT_LIMITS.max_payment
    max_offline_payments: int = DEFAULT_LIMITS.max_offline_payments
    max_offline_value: int = DEFAULT_LIMITS.max_offline_value
    max_offline_seconds: int = DEFAULT_LIMITS.max_offline_seconds
    certificate_hours: int = 7 * 24


@dataclass(frozen=True)
class Population:
    """Who takes part."""

    people: int = 1000
    merchants: int = 60
    terminals: int = 20
    banks: tuple[str, ...] = ("Bank A", "Bank B")
    regions: dict[str, float] = field(default_factory=lambda: {"centre": 1.0})
    account: int = 300_000
    stragglers: float = 0.02


@dataclass(frozen=True)
class Behaviour:
    """How people pay, sync and top up."""

    payments_per_person_day: float = 3.3
    merchant_share: float = 0.75
    amount_median: int = 800
    amount_sigma: float = 0.9
    person_sync_hours: float = 24.0
    straggler_sync_hours: float = 240.0
    merchant_sync_hours: float = 8.0
    topup_below: int = 5_000
    topup_to: int = 20_000
    merchant_keep: int = 5_000
    resync_hours: float = 3.0


_HOURLY = (
    0.2, 0.1, 0.1, 0.1, 0.2, 0.4, 0.8, 1.4, 1.8, 1.6, 1.5, 1.8,
    2.4, 2.0, 1.5, 1.4, 1.6, 2.0, 2.4, 2.0, 1.4, 0.9, 0.6, 0.3,
)  # fmt: skip


@dataclass(frozen=True)
class Demand:
    """Relative demand by hour of day (24) and day of week (7, Monday first)."""

    hourly: tuple[float, ...] = _HOURLY
    weekly: tuple[float, ...] = (1.0, 1.0, 1.0, 1.05, 1.2, 1.3, 0.6)
    start_weekday: int = 0


@dataclass(frozen=True)
class Outage:
    """A region offline (power cut, flood, network) from ``start_hour`` for ``hours``."""

    region: str
    start_hour: float
    hours: float
    cause: str = "outage"


@dataclass(frozen=True)
class Fraud:
    """Broken secure elements, tampering relays and replaying payees."""

    broken_share: float = 0.0
    kinds: tuple[str, ...] = FRAUD_KINDS
    copies: int = 2
    start_day: float = 2.0
    spread_days: float = 10.0
    relay_share: float = 0.0
    resend_share: float = 0.8
    replay_share: float = 0.0


@dataclass(frozen=True)
class Scenario:
    """A whole simulation scenario (see docs/SIMULATOR.md for every key and default)."""

    name: str = "custom"
    description: str = ""
    days: int = 30
    seed: int = 1
    currency: str = "EUR"
    algorithm: str = "p256"
    start: int = 1_789_948_800  # 2026-09-21 00:00 UTC, a Monday
    population: Population = field(default_factory=Population)
    behaviour: Behaviour = field(default_factory=Behaviour)
    demand: Demand = field(default_factory=Demand)
    limits: LimitSet = field(default_factory=LimitSet)
    bank_limits: dict[str, LimitSet] = field(default_factory=dict)
    shop_limits: LimitSet | None = None
    outages: tuple[Outage, ...] = ()
    fraud: Fraud = field(default_factory=Fraud)

    def limits_of(self, bank: str) -> LimitSet:
        """The limits of ``bank``'s wallets (its own table, else ``[limits]``)."""
        return self.bank_limits.get(bank, self.limits)

    def limits_for(self, bank: str, shop: bool) -> LimitSet:
        """The limits of a wallet at ``bank``: ``[limits.shops]`` for a shop's SE if the
        scenario has it, else the bank's."""
        if shop and self.shop_limits is not None:
            return self.shop_limits
        return self.limits_of(bank)

    def with_limit(self, key: str, value: int) -> Scenario:
        """This scenario with limit ``key`` set to ``value`` for every bank's wallets (for
        sweeps); ``[limits.shops]``, if any, stays as it is."""
        if key not in LIMIT_KEYS:
            raise ScenarioError(f"--sweep: unknown limit {key!r} (one of {', '.join(LIMIT_KEYS)})")
        if type(value) is not int or not 0 < value <= LIMIT_MAX[key]:
            raise ScenarioError(f"--sweep: {key} must be in 1..{LIMIT_MAX[key]}, not {value!r}")
        return dataclasses.replace(
            self,
            limits=dataclasses.replace(self.limits, **{key: value}),
            bank_limits={
                b: dataclasses.replace(v, **{key: value}) for b, v in self.bank_limits.items()
            },
        )

    def scaled(self, factor: float, days: int | None = None) -> Scenario:
        """This scenario with ``factor`` times the people, merchants and terminals (each at
        least 1; attackers follow ``broken_share``), and optionally another number of days."""
        p = self.population

        def n(x: int) -> int:
            return max(1, round(x * factor)) if x else 0

        population = dataclasses.replace(
            p, people=max(2, n(p.people)), merchants=n(p.merchants), terminals=n(p.terminals)
        )
        return dataclasses.replace(
            self, population=population, days=self.days if days is None else days
        )


# --- reading -------------------------------------------------------------------------------


def load(name_or_path: str) -> Scenario:
    """A shipped scenario by name, or a scenario TOML file by path."""
    if name_or_path in SHIPPED:
        text = (
            resources.files("offcash.simulator")
            .joinpath("scenarios", f"{name_or_path}.toml")
            .read_text(encoding="utf-8")
        )
        return loads(text, name_or_path)
    path = Path(name_or_path)
    if not path.is_file():
        raise ScenarioError(
            f"no scenario {name_or_path!r}: not a file, nor one of {', '.join(SHIPPED)}"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read: {exc}") from None
    return loads(text, path.stem)


def loads(text: str, default_name: str = "custom") -> Scenario:
    """A scenario from TOML text."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"not valid TOML: {exc}") from None
    return parse(data, default_name)


def parse(data: dict[str, Any], default_name: str = "custom") -> Scenario:
    """A scenario from a parsed TOML mapping; ``ScenarioError`` names any bad field."""
    r = _Reader(data, "")
    base = Scenario()
    name = r.text("name", default_name)
    description = r.text("description", "")
    days = r.integer("days", base.days, 1, MAX_DAYS)
    seed = r.integer("seed", base.seed, 0, 2**63 - 1)
    currency = r.text("currency", base.currency)
    if len(currency) != 3 or not currency.isalpha() or not currency.isupper():
        raise ScenarioError(f"currency: expected an ISO 4217 code like EUR, not {currency!r}")
    algorithm = r.choice("algorithm", base.algorithm, ("p256", "ed25519"))
    start = r.integer("start", base.start, 0, 2**40)
    population = _population(r.table("population"))
    behaviour = _dataclass(Behaviour, r.table("behaviour"))
    demand = _demand(r.table("demand"))
    limits_table = r.table("limits")
    banks_table = limits_table.table("banks")
    shops_table = limits_table.table("shops") if "shops" in limits_table.data else None
    limits = _limits(limits_table, LimitSet())
    shop_limits = None if shops_table is None else _limits(shops_table, limits)
    bank_limits: dict[str, LimitSet] = {}
    for bank in banks_table.names():
        if bank not in population.banks:
            raise ScenarioError(f'limits.banks."{bank}": no such bank in population.banks')
        bank_limits[bank] = _limits(banks_table.table(bank), limits)
    outages = tuple(_outage(o, population) for o in r.tables("outages"))  # an array of tables
    fraud = _fraud(r.table("fraud"))
    r.done()
    if behaviour.topup_to > limits.max_balance:
        pass  # allowed: top-ups stop at each wallet's max_balance
    if behaviour.topup_below > behaviour.topup_to:
        raise ScenarioError("behaviour.topup_below: must not exceed behaviour.topup_to")
    return Scenario(
        name=name,
        description=description,
        days=days,
        seed=seed,
        currency=currency,
        algorithm=algorithm,
        start=start,
        population=population,
        behaviour=behaviour,
        demand=demand,
        limits=limits,
        bank_limits=bank_limits,
        shop_limits=shop_limits,
        outages=outages,
        fraud=fraud,
    )


def _population(r: _Reader) -> Population:
    base = Population()
    people = r.integer("people", base.people, 2, MAX_AGENTS)
    merchants = r.integer("merchants", base.merchants, 0, MAX_AGENTS)
    terminals = r.integer("terminals", base.terminals, 0, MAX_AGENTS)
    banks = tuple(r.strings("banks", list(base.banks)))
    if not banks or len(set(banks)) != len(banks):
        raise ScenarioError(f"{r.at('banks')}: expected distinct bank names")
    regions_r = r.table("regions")
    regions = {k: regions_r.number(k, 0.0, 0.0, 1e9) for k in regions_r.names()} or dict(
        base.regions
    )
    regions_r.done()
    if sum(regions.values()) <= 0:
        raise ScenarioError(f"{r.at('regions')}: the shares must not all be zero")
    account = r.integer("account", base.account, 0, 10**12)
    stragglers = r.number("stragglers", base.stragglers, 0.0, 1.0)
    r.done()
    return Population(people, merchants, terminals, banks, regions, account, stragglers)


def _demand(r: _Reader) -> Demand:
    base = Demand()
    hourly = tuple(r.numbers("hourly", list(base.hourly), 24))
    weekly = tuple(r.numbers("weekly", list(base.weekly), 7))
    if sum(hourly) <= 0 or sum(weekly) <= 0:
        raise ScenarioError(f"{r.path}: demand weights must not all be zero")
    start_weekday = r.integer("start_weekday", base.start_weekday, 0, 6)
    r.done()
    return Demand(hourly, weekly, start_weekday)


def _limits(r: _Reader, base: LimitSet) -> LimitSet:
    values = {key: r.integer(key, getattr(base, key), 1, LIMIT_MAX[key]) for key in LIMIT_KEYS}
    r.done(ignore=("banks", "shops"))
    return LimitSet(**values)


def _outage(r: _Reader, population: Population) -> Outage:
    region = r.text("region", "")
    if region not in population.regions:
        raise ScenarioError(f"{r.at('region')}: no region {region!r} in population.regions")
    start_hour = r.number("start_hour", 0.0, 0.0, MAX_DAYS * 24.0)
    hours = r.number("hours", 24.0, 0.0, MAX_DAYS * 24.0)
    cause = r.text("cause", "outage")
    r.done()
    return Outage(region, start_hour, hours, cause)


def _fraud(r: _Reader) -> Fraud:
    base = Fraud()
    kinds = tuple(r.strings("kinds", list(base.kinds)))
    for k in kinds:
        if k not in FRAUD_KINDS:
            raise ScenarioError(f"{r.at('kinds')}: {k!r} is not one of {', '.join(FRAUD_KINDS)}")
    if not kinds:
        raise ScenarioError(f"{r.at('kinds')}: name at least one kind")
    out = Fraud(
        broken_share=r.number("broken_share", base.broken_share, 0.0, 0.5),
        kinds=kinds,
        copies=r.integer("copies", base.copies, 1, 100),
        start_day=r.number("start_day", base.start_day, 0.0, MAX_DAYS),
        spread_days=r.number("spread_days", base.spread_days, 0.0, MAX_DAYS),
        relay_share=r.number("relay_share", base.relay_share, 0.0, 1.0),
        resend_share=r.number("resend_share", base.resend_share, 0.0, 1.0),
        replay_share=r.number("replay_share", base.replay_share, 0.0, 1.0),
    )
    r.done()
    return out


def _dataclass(cls: type[Behaviour], r: _Reader) -> Behaviour:
    base = cls()
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        default = getattr(base, f.name)
        if isinstance(default, int):
            values[f.name] = r.integer(f.name, default, 0, 10**12)
        else:
            values[f.name] = r.number(f.name, default, 0.0, 1e9)
    r.done()
    if values["amount_median"] < 1:
        raise ScenarioError(f"{r.at('amount_median')}: must be at least 1")
    for key in ("person_sync_hours", "straggler_sync_hours", "merchant_sync_hours"):
        if values[key] <= 0:
            raise ScenarioError(f"{r.at(key)}: must be positive")
    if values["merchant_share"] > 1:
        raise ScenarioError(f"{r.at('merchant_share')}: must be at most 1")
    return cls(**values)


class _Reader:
    """Reads keys of one TOML table, checking types and ranges; ``done`` refuses the rest."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, dict):
            raise ScenarioError(f"{path or '<top>'}: expected a table")
        self.data: dict[str, Any] = data
        self.path = path
        self.used: set[str] = set()

    def at(self, key: str) -> str:
        name = f'"{key}"' if not key.replace("_", "").replace("-", "").isalnum() else key
        return f"{self.path}.{name}" if self.path else name

    def _get(self, key: str) -> Any:
        self.used.add(key)
        return self.data.get(key)

    def names(self) -> list[str]:
        self.used.update(self.data)
        return list(self.data)

    def text(self, key: str, default: str) -> str:
        v = self._get(key)
        if v is None:
            return default
        if not isinstance(v, str):
            raise ScenarioError(f"{self.at(key)}: expected a string, not {v!r}")
        return v

    def choice(self, key: str, default: str, options: tuple[str, ...]) -> str:
        v = self.text(key, default)
        if v not in options:
            raise ScenarioError(f"{self.at(key)}: expected one of {', '.join(options)}, not {v!r}")
        return v

    def integer(self, key: str, default: int, lo: int, hi: int) -> int:
        v = self._get(key)
        if v is None:
            return default
        if type(v) is not int:
            raise ScenarioError(f"{self.at(key)}: expected an integer, not {v!r}")
        if not lo <= v <= hi:
            raise ScenarioError(f"{self.at(key)}: {v} is outside {lo}..{hi}")
        return v

    def number(self, key: str, default: float, lo: float, hi: float) -> float:
        v = self._get(key)
        if v is None:
            return default
        if type(v) not in (int, float):
            raise ScenarioError(f"{self.at(key)}: expected a number, not {v!r}")
        if not lo <= v <= hi:
            raise ScenarioError(f"{self.at(key)}: {v} is outside {lo}..{hi}")
        return float(v)

    def numbers(self, key: str, default: list[float], n: int) -> list[float]:
        v = self._get(key)
        if v is None:
            return default
        if not isinstance(v, list) or len(v) != n:
            raise ScenarioError(f"{self.at(key)}: expected a list of {n} numbers")
        out = []
        for i, x in enumerate(v):
            if type(x) not in (int, float) or x < 0:
                raise ScenarioError(f"{self.at(key)}[{i}]: expected a number >= 0, not {x!r}")
            out.append(float(x))
        return out

    def strings(self, key: str, default: list[str]) -> list[str]:
        v = self._get(key)
        if v is None:
            return default
        if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
            raise ScenarioError(f"{self.at(key)}: expected a list of non-empty strings")
        return list(v)

    def table(self, key: str) -> _Reader:
        v = self._get(key)
        return _Reader({} if v is None else v, self.at(key))

    def tables(self, key: str) -> list[_Reader]:
        v = self._get(key)
        if v is None:
            return []
        if not isinstance(v, list):
            raise ScenarioError(f"{self.at(key)}: expected an array of tables ([[{key}]])")
        return [_Reader(x, f"{self.at(key)}[{i}]") for i, x in enumerate(v)]

    def done(self, ignore: tuple[str, ...] = ()) -> None:
        extra = [k for k in self.data if k not in self.used and k not in ignore]
        if extra:
            raise ScenarioError(f"{self.at(extra[0])}: unknown key")
