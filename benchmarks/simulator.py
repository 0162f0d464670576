"""Simulator benchmark (prints figures; not a test).

Runs the shipped ``everyday`` scenario (1,000 people, 80 shops, about 100,000 payments in 30
days at full size) on the real secure elements and a real SQLite ledger, and prints the wall
time, payments and syncs per second, where the time went (payments between devices, syncs and
redemptions through the ledger, setup, the end-of-run settlement), and the resident memory at
the end of each day (flat in the number of days once the payees' memory of what they accepted
spans its ``max_payment_age``: nothing else is kept per payment). ``--scale`` and ``--days``
shrink it; the time is then also extrapolated linearly to the full size, since both payments
and syncs grow linearly with people and days. The process's own CPU time is printed beside the
wall time: the run is one process on one core, so on a machine other work keeps busy the CPU
time is close to what an idle machine's wall time would be, though not equal: it grows too
when other processes share the caches (by up to a quarter at a load of 5 on the 2-core VM), so
compare runs made one after the other, under the same load.

    python benchmarks/simulator.py                    # the full target: 1,000 wallets, 30 days
    python benchmarks/simulator.py --scale 0.2 --days 5
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from offcash.simulator.engine import Simulation
from offcash.simulator.scenario import load


def rss_mb() -> float:
    """The current resident set size in MB (Linux), else 0."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="everyday")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--days", type=int, default=None)
    args = parser.parse_args()
    full = load(args.scenario)
    sc = full.scaled(args.scale, args.days) if args.scale != 1 or args.days else full
    rss: list[float] = []

    def progress(text: str) -> None:
        if text.startswith("day "):
            rss.append(rss_mb())

    with tempfile.TemporaryDirectory(prefix="offcash-sim-bench-") as tmp:
        sim = Simulation(sc, Path(tmp), progress)
        started, cpu_started = time.perf_counter(), time.process_time()
        summary = sim.run()
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
    timing = sim.timings()
    p = summary["payments"]
    wallets = sum(summary["population"][k] for k in ("people", "attackers", "merchants"))
    load_avg = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {load_avg:.1f} at the end"
    )
    print(
        f"{sc.name}: {wallets} wallets + {summary['population']['terminals']} terminals, "
        f"{sc.days} days, {p['attempted']} payments attempted, {p['completed']} completed"
    )
    print(f"wall time {seconds:.1f} s: {p['attempted'] / seconds:.0f} payments/s overall")
    print(
        f"CPU time of this process {cpu:.1f} s ({100 * cpu / seconds:.0f}% of the wall time: "
        "the rest is waiting for the disk or for a core other processes hold)"
    )
    parts = timing["seconds"]
    for key in ("setup", "payments", "attacks", "sync", "audit", "settle_out"):
        if key in parts:
            print(f"  {key:<10} {parts[key]:8.1f} s  {100 * parts[key] / seconds:5.1f}%")
    print(
        f"  {timing['syncs']} syncs and redemptions, median {timing['sync_median_ms']} ms, "
        f"p99 {timing['sync_p99_ms']} ms"
    )
    if rss:
        print(f"RSS after day 1: {rss[0]:.0f} MB; after day {len(rss)}: {rss[-1]:.0f} MB")
        print("RSS after each day (MB): " + " ".join(f"{r:.0f}" for r in rss))
    people = full.population.people / sc.population.people
    factor = people * full.days / sc.days
    if factor > 1.01:
        # setup and the final settlement grow with the population; the rest with people x days
        daily = seconds - parts.get("setup", 0) - parts.get("settle_out", 0)
        fixed = parts.get("setup", 0) + parts.get("settle_out", 0)
        minutes = (fixed * people + daily * factor) / 60
        print(
            f"extrapolated to {full.population.people} people and {full.days} days "
            f"(setup and settle-out x{people:.1f}, the days x{factor:.1f}): "
            f"{minutes:.1f} min wall, {minutes * cpu / seconds:.1f} min of CPU"
        )
    print(f"honest_unpaid {summary['honest_unpaid']}, conserved {summary['conserved']}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
