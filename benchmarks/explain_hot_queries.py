"""The plan and time of every hot ledger statement on a large ledger (prints figures; not a test).

Fills a fresh ledger with ``--spends`` rows of ``spends`` (default 1,000,000: 50 per payer, as
many ``receipts``, and as many ``postings`` in balanced journal entries) by bulk ``INSERT ...
SELECT`` from a number series (SQLite: a recursive CTE; PostgreSQL: ``generate_series``), then
runs each hot path once on top of it with real wallets: fund, a payee's sync, a terminal's
redemption, a payer's sync, an unload, release-torn and the audit. Every statement the ledger
sends is recorded at the driver (a SQLAlchemy ``before/after_cursor_execute`` listener) with the
time of its ``execute`` call, and explained afterwards: PostgreSQL ``EXPLAIN`` (after
``ANALYZE``, as autovacuum would leave it), SQLite ``EXPLAIN QUERY PLAN`` (without ``ANALYZE``:
the service never runs it, so production SQLite plans without statistics too).

``--without-hot-indexes`` drops the indexes of migration ``0005_hot_indexes`` first (and puts
``ix_spends_payee_torn`` back on ``payee`` alone, as 0002 made it), to show the plans before.

    python benchmarks/explain_hot_queries.py --spends 1000000
    python benchmarks/explain_hot_queries.py --spends 1000000 --without-hot-indexes
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from offcash.crypto.algorithms import SignatureAlgorithm
from offcash.domain.network import NetworkParams
from offcash.issuance import CentralBank
from offcash.ledger import LedgerService
from offcash.ledger.db import normalize_url
from offcash.se.software import SoftwareSecureElement

PG = os.environ.get("OFFCASH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
T0 = 1_790_000_000
PER_PAYER = 50


@dataclass
class Executed:
    """One statement as the driver ran it: the path, SQL, first parameter set, time."""

    path: str
    sql: str
    parameters: Any
    ms: float = 0.0


@dataclass
class Recorder:
    """Records and times the statements sent on ``engine`` while a path label is set."""

    engine: sa.Engine
    label: str | None = None
    seen: list[Executed] = field(default_factory=list)
    _start: float = 0.0

    def __post_init__(self) -> None:
        sa.event.listen(self.engine, "before_cursor_execute", self._before)
        sa.event.listen(self.engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, cur: Any, sql: str, params: Any, ctx: Any, many: bool) -> None:
        if self.label is not None:
            nested = many and params and isinstance(params[0], (tuple, list, dict))
            self.seen.append(Executed(self.label, sql, params[0] if nested else params))
            self._start = time.perf_counter()

    def _after(self, conn: Any, cur: Any, sql: str, params: Any, ctx: Any, many: bool) -> None:
        if self.label is not None:
            self.seen[-1].ms = (time.perf_counter() - self._start) * 1000

    @contextmanager
    def path(self, label: str) -> Iterator[None]:
        self.label = label
        try:
            yield
        finally:
            self.label = None


def _fill(conn: sa.Connection, n: int) -> None:
    """``n`` spends (50 per payer, 99.8 % settled, the rest in suspense, released or presumed),
    ``n`` receipts and ``n`` postings, in four bulk statements."""
    if conn.dialect.name == "postgresql":
        prefix, source = "", f"generate_series(0::bigint, {n - 1}) AS s(i)"
        wid = "convert_to(lpad(({x})::text, 12, '0'), 'UTF8')"
        blob, msg = "sha256(int8send(i))", "decode(repeat('ab', 200), 'hex')"
    else:
        step = f"SELECT i + 1 FROM s WHERE i < {n - 1}"
        prefix = f"WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL {step}) "
        source = "s"
        wid = "CAST(printf('%012d', {x}) AS BLOB)"
        blob, msg = "randomblob(32)", "zeroblob(200)"
    payer, payee = wid.format(x=f"i / {PER_PAYER}"), wid.format(x=f"(i * 7919) % {n}")
    counter = f"i % {PER_PAYER} + 1"
    state = (
        "CASE WHEN i % 1000 = 1 THEN 'suspense' WHEN i % 2000 = 2 THEN 'released' "
        "WHEN i % 2000 = 3 THEN 'presumed' WHEN i % 2 = 0 THEN 'held' ELSE 'redeemed' END"
    )
    # filler is recent (in flight), so release-torn's range holds only the scenario's payment
    when = f"{T0 + 100} + i % 1000"
    pct = "%%" if conn.dialect.name == "postgresql" else "%"  # psycopg: % starts a placeholder
    payer, payee, counter, state, when = (
        x.replace(" % ", f" {pct} ") for x in (payer, payee, counter, state, when)
    )
    conn.exec_driver_sql(
        f"{prefix}INSERT INTO spends (payer, counter, digest, kind, payee, amount, time, state, "
        f"message, settled_at) SELECT {payer}, {counter}, {blob}, 'payment', {payee}, "
        f"100 + i {pct} 900, {when}, {state}, {msg}, {when} FROM {source}"
    )
    conn.exec_driver_sql(
        f"{prefix}INSERT INTO receipts (wallet, payer, counter, seq) "
        f"SELECT {payee}, {payer}, {counter}, 1 FROM {source}"
    )
    conn.exec_driver_sql(
        f"{prefix}INSERT INTO journal (id, time, kind, memo) "
        f"SELECT 1000000000 + i, {T0}, 'settlement', '' FROM {source} WHERE i < {n // 2}"
    )
    conn.exec_driver_sql(
        f"{prefix}INSERT INTO postings (journal_id, account, amount) SELECT 1000000000 + i / 2, "
        f"CASE WHEN i {pct} 2 = 0 THEN 'float:Bank A' ELSE 'reserve:Bank A' END, "
        f"CASE WHEN i {pct} 2 = 0 THEN 100 ELSE -100 END FROM {source} WHERE i < {n // 2 * 2}"
    )


_WITHOUT = [
    "DROP INDEX ix_spends_state_time",
    "DROP INDEX ix_conflicts_state_time",
    "DROP INDEX ix_revocations_wallet",
    "DROP INDEX ix_conflicts_payee_torn",
    "DROP INDEX ix_spends_payee_torn",
    "CREATE INDEX ix_spends_payee_torn ON spends (payee) WHERE state IN ('released', 'presumed')",
]


def _se(ledger: LedgerService, params: NetworkParams, root: bytes, acct: str, balance: int) -> Any:
    se = SoftwareSecureElement(SoftwareSecureElement.new_state(params, root))
    e = ledger.enroll(se.csr(), acct, T0)
    se.enroll(e.certificate, e.bank_certificates, e.crls, T0)
    if balance:
        se.load(ledger.fund(e.wallet_id, balance, T0), T0)
    return se, e.wallet_id


def _sync(ledger: LedgerService, se: Any, now: int) -> None:
    up = se.sync_upload(now)
    res = ledger.sync(up.report, [x.encode() for x in up.entries], se.csr(), now)
    assert res.ack is not None and res.certificate is not None, res
    se.apply_sync(res.ack, res.certificate, res.bank_certificates, res.crls, now)


def _paths(ledger: LedgerService, rec: Recorder) -> float:
    """Run every hot path once (recorded); release-torn's time in ms."""
    params = ledger.params
    root = ledger.authorities.central_bank.certificate_der
    acct = ledger.open_account("Bank A", "holder")
    ledger.distribute(acct, 100_000, T0)
    alice, a_id = _se(ledger, params, root, acct, 5_000)
    bob, b_id = _se(ledger, params, root, acct, 0)
    carol, c_id = _se(ledger, params, root, acct, 0)
    term = ledger.register_terminal(ledger.open_account("Bank B", "shop"))
    bob.receive(alice.pay_to(b_id, 1_000, T0 + 10), T0 + 11)
    carol.receive(alice.pay_to(c_id, 500, T0 + 12), T0 + 13)  # carol never syncs: torn
    to_term = alice.pay_to(term, 100, T0 + 14)
    age = params.max_payment_age + params.clock_skew
    with rec.path("fund"):
        ledger.fund(a_id, 300, T0 + 15)
    with rec.path("sync (payee)"):
        _sync(ledger, bob, T0 + 20)
    with rec.path("redeem"):
        ledger.redeem(term, [to_term], T0 + 21)
    with rec.path("sync (payer)"):
        _sync(ledger, alice, T0 + 22)
    with rec.path("unload"):
        ledger.unload(alice.unload(200, T0 + 23), T0 + 23)
    start = time.perf_counter()
    with rec.path("release-torn"):
        released = ledger.release_torn(T0 + 13 + age + 1)
    torn_ms = (time.perf_counter() - start) * 1000
    assert released == 1, released
    start = time.perf_counter()
    assert ledger.release_torn(T0 + 13 + age + 2) == 0  # again: nothing left to release
    print(f"release-torn again, nothing to release: {(time.perf_counter() - start) * 1000:.1f} ms")
    with rec.path("audit"):
        ledger.audit()
    return torn_ms


def _explain(conn: sa.Connection, st: Executed) -> list[str]:
    sqlite = conn.dialect.name == "sqlite"
    cursor = conn.connection.cursor()
    try:
        cursor.execute(("EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN ") + st.sql, st.parameters)
        return [str(r[-1] if sqlite else r[0]) for r in cursor.fetchall()]
    finally:
        cursor.close()


def _shape(sql: str) -> str:
    one = " ".join(sql.split())
    one = re.sub(r"\((?:\?, )+\?\)", "(?, ...)", one)
    one = re.sub(r"(\((?:\?, \.\.\.|\?)\), )+\((?:\?, \.\.\.|\?)\)", "(?, ...), ...", one)
    return re.sub(r"%\((\w+?)_\d+\)s", r"%(\1)s", one)


def run(backend: str, n: int, without: bool) -> None:
    schema = None if backend == "sqlite" else "explain_" + uuid.uuid4().hex[:8]
    url = f"sqlite:///{tempfile.mkdtemp()}/explain.db" if backend == "sqlite" else PG
    ledger = LedgerService.open(url, schema=schema)
    try:
        cb = CentralBank.create("Central Bank", SignatureAlgorithm.P256, T0 - 86400)
        banks = [cb.certify_bank(b, T0 - 86400) for b in ("Bank A", "Bank B")]
        ledger.install(NetworkParams("EUR", SignatureAlgorithm.P256), cb, banks)
        for b in ("Bank A", "Bank B"):
            ledger.issue(b, 10_000_000, T0)
        start = time.perf_counter()
        with ledger.engine.begin() as conn:
            _fill(conn, n)
            if without:
                for ddl in _WITHOUT:
                    conn.exec_driver_sql(ddl)
        if backend == "postgresql":
            with ledger.engine.connect() as conn:
                conn.exec_driver_sql("ANALYZE")
                conn.commit()
        note = " WITHOUT the 0005_hot_indexes indexes" if without else ""
        filled = time.perf_counter() - start
        print(f"\n## {backend}: {n:,} spends, receipts, postings (filled in {filled:.1f} s){note}")
        rec = Recorder(ledger.engine)
        torn_ms = _paths(ledger, rec)
        print(f"release-torn (whole call, {backend}): {torn_ms:.1f} ms")
        seen: dict[tuple[str, str], list[Executed]] = {}
        for st in rec.seen:
            if st.sql.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE", "INSERT")):
                seen.setdefault((st.path, _shape(st.sql)), []).append(st)
        rec.label = None
        with ledger.engine.connect() as conn:
            for (path, shape), runs in seen.items():
                plan = _explain(conn, runs[0])
                worst = max(r.ms for r in runs)
                print(f"\n[{path}] x{len(runs)}, max {worst:.2f} ms: {shape[:300]}")
                for line in plan:
                    print(f"    {line}")
            conn.rollback()
    finally:
        ledger.close()
        if schema:
            engine = sa.create_engine(normalize_url(PG))
            with engine.begin() as c:
                c.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spends", type=int, default=1_000_000)
    ap.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--without-hot-indexes", action="store_true")
    args = ap.parse_args()
    if args.spends < 1:
        ap.error("--spends must be at least 1")
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    for backend in backends:
        if backend == "postgresql":
            try:
                with sa.create_engine(normalize_url(PG)).connect():
                    pass
            except Exception as exc:
                print(f"postgresql skipped: {exc}")
                continue
        run(backend, args.spends, args.without_hot_indexes)


if __name__ == "__main__":
    main()
