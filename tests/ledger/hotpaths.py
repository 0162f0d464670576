"""Test helper: run every hot path of the ledger once (fund, a payee's sync, a terminal's
redemption, a payer's sync, an unload, release-torn, the audit) and record each SQL statement it
sent, with its parameters, labelled by the path that sent it. What the statements are is read
from the database driver's side (a SQLAlchemy ``before_cursor_execute`` listener), so the record
is what the service really runs, not a copy of it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from ledgerkit import World

from harness import T0


@dataclass(frozen=True)
class Statement:
    """One statement as the driver received it (first parameter set of an executemany)."""

    path: str
    sql: str
    parameters: Any


@dataclass
class Recorder:
    """Records the statements sent on ``engine`` while a path label is set."""

    engine: sa.Engine
    label: str | None = None
    seen: list[Statement] = field(default_factory=list)

    def __post_init__(self) -> None:
        sa.event.listen(self.engine, "before_cursor_execute", self._record)

    def _record(
        self, conn: Any, cursor: Any, sql: str, parameters: Any, context: Any, many: bool
    ) -> None:
        if self.label is not None:
            # an executemany's sets (insertmanyvalues batches come flattened into one set)
            nested = many and parameters and isinstance(parameters[0], (tuple, list, dict))
            first = parameters[0] if nested else parameters
            self.seen.append(Statement(self.label, sql, first))

    @contextmanager
    def path(self, label: str) -> Iterator[None]:
        self.label = label
        try:
            yield
        finally:
            self.label = None

    def close(self) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._record)


def run_hot_paths(world: World) -> list[Statement]:
    """Every hot path once, on ``world``'s ledger; the statements each sent, in order."""
    ledger = world.ledger
    age = ledger.params.max_payment_age + ledger.params.clock_skew
    alice, a_id, _ = world.wallet(5_000)
    bob, b_id, _ = world.wallet()
    carol, c_id, _ = world.wallet()
    term = ledger.register_terminal(world.account("Bank B", 0))
    bob.receive(alice.pay_to(b_id, 1_000, T0 + 10), T0 + 11)
    carol.receive(alice.pay_to(c_id, 500, T0 + 12), T0 + 13)  # carol never syncs: torn
    to_term = alice.pay_to(term, 100, T0 + 14)
    rec = Recorder(ledger.engine)
    try:
        with rec.path("fund"):
            ledger.fund(a_id, 300, T0 + 15)
        with rec.path("sync"):
            assert world.sync(bob, T0 + 20).ack is not None  # RECEIVED: a new spend, held
        with rec.path("redeem"):
            assert ledger.redeem(term, [to_term], T0 + 21).settled == 1
        with rec.path("sync"):  # SENT: two spends known (held, redeemed), one new (suspense)
            assert world.sync(alice, T0 + 22).ack is not None
        with rec.path("unload"):
            assert ledger.unload(alice.unload(200, T0 + 23), T0 + 23) == 200
        with rec.path("release-torn"):
            assert ledger.release_torn(T0 + 13 + age + 1) == 1
        with rec.path("audit"):
            assert ledger.audit().unbalanced_entries == 0
    finally:
        rec.close()
    return rec.seen


def explain(conn: sa.Connection, st: Statement) -> list[str]:
    """The plan the database chooses for ``st`` (its lines), without running it; through the
    driver's own cursor, with the parameters as the driver received them."""
    sqlite = conn.dialect.name == "sqlite"
    cursor = conn.connection.cursor()
    try:
        cursor.execute(("EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN ") + st.sql, st.parameters)
        return [str(r[-1] if sqlite else r[0]) for r in cursor.fetchall()]
    finally:
        cursor.close()


def full_scans(plan: list[str], tables: set[str]) -> list[str]:
    """The lines of ``plan`` that read the whole of one of ``tables``: a table scan, or an
    index scan without a condition (the whole index, in order)."""
    names = "|".join(sorted(tables))
    sqlite_scan = re.compile(rf"\bSCAN (?:TABLE )?({names})\b")
    pg_seq = re.compile(rf"\bSeq Scan on ({names})\b")
    pg_index = re.compile(rf"\bIndex (?:Only )?Scan(?: Backward)? using \S+ on ({names})\b")
    bad = []
    for n, line in enumerate(plan):
        if sqlite_scan.search(line) or pg_seq.search(line):
            bad.append(line)
        elif pg_index.search(line):
            node = [x for x in plan[n + 1 :]]
            until = next((k for k, x in enumerate(node) if "->" in x), len(node))
            if not any("Index Cond" in x for x in node[:until]):
                bad.append(line)
    return bad
