"""The simulated world: agents, when they want to pay, and when their region is online.

Theory of operation: an ``Agent`` is one participant with a real device (a
``SoftwareSecureElement`` or a ``ReceiveOnlyTerminal``) and an account in the real ledger, plus
what the model knows about it and the ledger must not be asked: whether it is honest and what
it owns by the model's own bookkeeping (``expected``: deposits, plus every payment signed to
it, minus every payment it signed), the oracle against which ``honest_unpaid`` is computed.
``Demand`` turns the scenario's daily rate and hour/weekday weights into the number of payments
wanted in one hour of one region. ``Calendar`` answers, from the scenario's outages, whether a
region is offline at a time and when it comes back. Nothing here does I/O or draws randomness
itself: callers pass the generator.
"""

from __future__ import annotations

import enum
import math
import random
from dataclasses import dataclass, field

from offcash.domain.ids import WalletId
from offcash.se.software import SoftwareSecureElement
from offcash.simulator.scenario import Outage, Scenario
from offcash.wallet.terminal import ReceiveOnlyTerminal

HOUR = 3600
DAY = 24 * HOUR


class Kind(enum.Enum):
    """What an agent is."""

    PERSON = "person"  # pays and is paid; syncs daily (or rarely: a straggler)
    MERCHANT = "merchant"  # a shop with a secure element: paid by request, unloads when online
    TERMINAL = "terminal"  # a shop with a receive-only terminal: redeems when online
    ATTACKER = "attacker"  # a person whose secure element is broken


class MemoryStore:
    """A ``StateStore`` keeping the last state bytes in memory: what lets an attacker copy,
    roll back or edit its software secure element (the real state bytes, nothing simulated)."""

    def __init__(self) -> None:
        self.state = b""

    def save(self, state: bytes) -> None:
        """Keep ``state``."""
        self.state = state


@dataclass
class Agent:
    """One participant (see the module docstring)."""

    index: int
    kind: Kind
    region: int
    bank: str
    account: str
    wid: WalletId
    se: SoftwareSecureElement | None = None
    terminal: ReceiveOnlyTerminal | None = None
    store: MemoryStore | None = None
    expected: int = 0
    sync_every: int = DAY
    next_sync: int = 0
    alive: bool = True
    straggler: bool = False
    replays: bool = False
    fraud: str | None = None
    #: log entries (or held payments) not yet uploaded, and those made while offline
    pending: int = 0
    pending_outage: int = 0
    expired_since_sync: bool = False
    attacked_at: int | None = None
    funded: int = 0
    spent: int = 0

    @property
    def honest(self) -> bool:
        """Whether the agent plays by the rules."""
        return self.kind is not Kind.ATTACKER


@dataclass(frozen=True)
class Demand:
    """Payments wanted per hour in each region."""

    per_person_day: float
    hourly: tuple[float, ...]
    weekly: tuple[float, ...]
    start_weekday: int

    @classmethod
    def of(cls, scenario: Scenario) -> Demand:
        """The demand of ``scenario``."""
        d = scenario.demand
        return cls(scenario.behaviour.payments_per_person_day, d.hourly, d.weekly, d.start_weekday)

    def expected(self, people: int, day: int, hour: int) -> float:
        """The mean number of payments ``people`` make in ``hour`` of ``day``."""
        h = self.hourly[hour] / sum(self.hourly)
        w = self.weekly[(day + self.start_weekday) % 7] / (sum(self.weekly) / 7)
        return people * self.per_person_day * h * w

    def draw(self, rng: random.Random, people: int, day: int, hour: int) -> int:
        """A Poisson number of payments with that mean (Knuth's method, split for large means)."""
        mean = self.expected(people, day, hour)
        n = 0
        while mean > 0:
            part = min(mean, 30.0)
            mean -= part
            limit, k, p = math.exp(-part), 0, rng.random()
            while p > limit:
                k += 1
                p *= rng.random()
            n += k
        return n


@dataclass
class Calendar:
    """When each region is offline: the scenario's outages in absolute time."""

    start: int
    windows: dict[int, list[tuple[int, int, str]]] = field(default_factory=dict)

    @classmethod
    def of(cls, scenario: Scenario, regions: list[str]) -> Calendar:
        """The outage windows of ``scenario``, by region index."""
        cal = cls(scenario.start)
        for o in scenario.outages:
            cal.add(regions.index(o.region), o, scenario.start)
        return cal

    def add(self, region: int, outage: Outage, start: int) -> None:
        """Add one outage window."""
        begin = start + round(outage.start_hour * HOUR)
        self.windows.setdefault(region, []).append(
            (begin, begin + round(outage.hours * HOUR), outage.cause)
        )

    def offline_until(self, region: int, t: int) -> int | None:
        """The time ``region`` comes back if it is offline at ``t``, else None."""
        end = None
        for begin, stop, _ in self.windows.get(region, []):
            if begin <= t < stop:
                end = stop if end is None else max(end, stop)
        return end

    def restorations(self, t0: int, t1: int) -> list[tuple[int, int]]:
        """``(time, region)`` of every region coming back online in ``[t0, t1)``."""
        out = []
        for region, wins in sorted(self.windows.items()):
            for _, stop, _ in wins:
                if t0 <= stop < t1 and self.offline_until(region, stop) is None:
                    out.append((stop, region))
        return sorted(out)

    def spans(self) -> list[tuple[int, int, int, str]]:
        """Every window as ``(region, begin, end, cause)``."""
        return [(r, b, e, c) for r, wins in sorted(self.windows.items()) for b, e, c in wins]
