"""Every statement the hot paths send (fund, sync, redemption, unload, release-torn) reads the
tables that grow with the ledger through an index, on both backends: no statement scans
``spends`` (or the other payer- and wallet-keyed tables), so none costs more as the ledger grows
(``ledger release-torn`` scanned all of ``spends``: 88-141 ms at 600k spends, before
``ix_spends_state_time``). The statements are recorded from the driver while the paths run
(``hotpaths``) and explained afterwards. The tables here are small, and a planner may prefer a
scan of a small table even when an index would serve: on PostgreSQL ``enable_seqscan = off``
shows whether an index path exists at all; SQLite without statistics plans by the indexes
alone. The plans at 1M spends: ``benchmarks/explain_hot_queries.py``, docs/SETTLEMENT.md."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from hotpaths import Statement, explain, full_scans, run_hot_paths
from ledgerkit import World

#: tables that grow with payments, wallets or revocations (the audit's journal and postings
#: are read whole by design: it re-proves every holding from every posting)
GROWING = {
    "spends",
    "conflicts",
    "receipts",
    "syncs",
    "vouchers",
    "certificates",
    "crl_deliveries",
    "revocations",
    "wallets",
}
HOT = ("fund", "sync", "redeem", "unload", "release-torn")


def _plans(world: World, statements: list[Statement]) -> list[tuple[Statement, list[str]]]:
    out = []
    with world.ledger.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET enable_seqscan = off")
        for st in statements:
            out.append((st, explain(conn, st)))
        conn.rollback()
    return out


def _reads(plan: list[str], table: str) -> bool:
    return any(f" {table} " in f" {line} " or f"on {table}" in line for line in plan)


def test_every_hot_statement_reads_through_an_index(world: World) -> None:
    statements = [st for st in run_hot_paths(world) if st.path in HOT]
    assert {st.path for st in statements} == set(HOT)
    plans = _plans(world, statements)
    # not vacuous: the paths read spends, release-torn's selection among them
    assert any(_reads(p, "spends") for st, p in plans if st.path == "release-torn")
    assert sum(_reads(p, "spends") for _, p in plans) >= 5
    scans = [(st.path, st.sql[:160], bad) for st, p in plans if (bad := full_scans(p, GROWING))]
    assert scans == []


def test_without_the_index_release_torn_scans_spends(world: World) -> None:
    """The check above can fail: drop ``ix_spends_state_time`` and release-torn's selection is
    a full scan of ``spends`` again."""
    statements = [st for st in run_hot_paths(world) if st.path == "release-torn"]
    with world.ledger.engine.begin() as conn:
        conn.execute(sa.text("DROP INDEX ix_spends_state_time"))
    scans = [bad for _, p in _plans(world, statements) if (bad := full_scans(p, {"spends"}))]
    assert scans, "release-torn kept an index path without ix_spends_state_time"


@pytest.mark.parametrize(
    ("plan", "bad"),
    [
        (["SCAN spends"], True),
        (["SCAN spends USING COVERING INDEX ix_spends_state_time"], True),
        (["SEARCH spends USING INDEX ix_spends_state_time (state=? AND time<?)"], False),
        (["SEARCH spends USING PRIMARY KEY (payer=? AND counter=?)"], False),
        (["Seq Scan on spends  (cost=10000000000.00..10000000001.01 rows=1 width=8)"], True),
        (["Index Scan using spends_pkey on spends  (cost=0.15..8.17 rows=1 width=8)"], True),
        (["Index Scan using spends_pkey on spends  (cost=0.1..8.1)", "  Index Cond: (x)"], False),
        (["SCAN journal"], False),
    ],
)
def test_full_scans_reads_both_planners(plan: list[str], bad: bool) -> None:
    assert bool(full_scans(plan, {"spends"})) is bad
