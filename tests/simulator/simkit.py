"""Small scenarios for the simulator tests (a few dozen agents, a few days)."""

from __future__ import annotations

import dataclasses

from offcash.simulator.scenario import Scenario, load


def tiny(name: str = "everyday", days: int = 2, people: int = 12, seed: int = 5) -> Scenario:
    """A shipped scenario cut down to ``people`` people, 2 shops, 1 terminal."""
    sc = load(name)
    pop = dataclasses.replace(sc.population, people=people, merchants=2, terminals=1)
    return dataclasses.replace(sc, population=pop, days=days, seed=seed)
