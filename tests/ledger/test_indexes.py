"""Lookups that run on every sync use an index, not a scan of a table that grows with every
payment ever settled (a scan made each sync cost more as the ledger grew: 7.5 ms per sync after
10,000 payments, 25 ms after 50,000, on SQLite). Checked with SQLite's query planner, whose rules
for partial indexes are the strict ones."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from offcash.ledger import LedgerService, settle
from offcash.ledger import schema as s

PAYEE = b"\x01" * 16


@pytest.mark.parametrize(
    "where",
    [
        lambda t: settle.torn_by_payee(t, PAYEE, settle.PRESUMED),
        lambda t: settle.torn_by_payee(t, [PAYEE, b"\x02" * 16], settle.RELEASED),
        lambda t: sa.and_(settle.torn_by_payee(t, PAYEE, settle.PRESUMED), t.c.time + 5 < 10),
    ],
    ids=["presumed", "released-in-list", "presumed-older-than"],
)
def test_torn_payments_by_payee_use_the_partial_index(tmp_path: Path, where: object) -> None:
    ledger = LedgerService.open(f"sqlite:///{tmp_path}/ledger.db")
    query = sa.select(s.spends).where(where(s.spends))  # type: ignore[operator]
    sql = str(query.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    with ledger.engine.connect() as conn:
        plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
    ledger.close()
    assert "USING INDEX ix_spends_payee_torn" in plan, plan


def test_the_torn_payee_check_of_every_sync_uses_both_partial_indexes(tmp_path: Path) -> None:
    """``settle.torn_payees`` runs in every sync: it must probe the partial indexes of both
    tables, not scan them."""
    ledger = LedgerService.open(f"sqlite:///{tmp_path}/ledger.db")
    query = settle._TORN.params(payees=[PAYEE, b"\x02" * 16])
    sql = str(
        query.compile(
            dialect=sqlite.dialect(),
            compile_kwargs={"literal_binds": True, "render_postcompile": True},
        )
    )
    with ledger.engine.connect() as conn:
        plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
    ledger.close()
    assert "SEARCH spends USING COVERING INDEX ix_spends_payee_torn" in plan, plan
    assert "SEARCH conflicts USING COVERING INDEX ix_conflicts_payee_torn" in plan, plan
    assert "SCAN" not in plan, plan
