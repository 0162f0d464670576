"""Group commit (``offcash.ledger.group``) on both backends: concurrent units share one
transaction, a failing unit takes none of the others' effects with it, each caller gets its own
answer exactly once and only after the commit, and a server SIGKILLed while groups are being
written loses no sync it acknowledged.

A group is formed on purpose: a first unit holds the writer thread (it waits for the test)
while the other callers queue; when it is let go, the writer takes everything queued as the
next group (``GroupCommit.pending`` says how many are waiting).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from ledgerkit import World
from server_process import ServerProcess, pg_url_with_schema
from sqlalchemy.engine import Connection

from offcash.api.client import Client
from offcash.errors import RemoteError, ServiceUnavailable
from offcash.ledger import LedgerService
from offcash.ledger import schema as s
from offcash.ledger.errors import IncompleteLog
from offcash.ledger.group import GroupCommit
from offcash.se.software import SoftwareSecureElement

from harness import T0, PilotNetwork

TOKEN = "group-commit-test-token"


def _grouped(
    group: GroupCommit, calls: list[Callable[[], Any]], committed: bool = True
) -> list[tuple[str, Any]]:
    """Run ``calls`` (each making one ``group.run``) from threads, all queued behind a unit
    that holds the writer, so that they form one group (which ``committed`` or not); each
    call's ("ok", answer) or ("error", exception), in order."""
    release = threading.Event()
    with ThreadPoolExecutor(len(calls) + 1) as pool:
        blocker = pool.submit(group.run, lambda conn: release.wait(60))
        while group.busy == 0:  # the writer holds the blocker's transaction
            time.sleep(0.001)
        futures = [pool.submit(c) for c in calls]
        while group.pending < len(calls):
            time.sleep(0.001)
        groups = group.groups
        release.set()
        blocker.result()
        out: list[tuple[str, Any]] = []
        for f in futures:
            try:
                out.append(("ok", f.result()))
            except Exception as exc:
                out.append(("error", exc))
    # the blocker's group, then one with every call (a group that failed is not counted)
    assert group.groups == groups + 1 + committed
    return out


def test_a_failing_unit_rolls_back_alone(world: World) -> None:
    group = GroupCommit(world.ledger.engine)
    a = s.accounts

    def unit(name: str, fail: bool) -> Callable[[], str]:
        def fn(conn: Connection) -> str:
            conn.execute(sa.insert(a).values(id=name, kind="customer", bank="Bank A"))
            if fail:
                raise ValueError(f"{name} refused after writing")
            return name

        return lambda: group.run(fn)

    names = [f"c-group-{i}" for i in range(6)]
    out = _grouped(group, [unit(n, fail=(i == 3)) for i, n in enumerate(names)])
    group.close()
    assert [k for k, _ in out] == ["ok", "ok", "ok", "error", "ok", "ok"]
    assert [v for k, v in out if k == "ok"] == [n for i, n in enumerate(names) if i != 3]
    assert isinstance(out[3][1], ValueError)
    with world.ledger.engine.connect() as conn:
        stored = set(conn.execute(sa.select(a.c.id).where(a.c.id.like("c-group-%"))).scalars())
    assert stored == {n for i, n in enumerate(names) if i != 3}


def _opens_account(group: GroupCommit, name: str) -> Callable[[], str]:
    """A call that runs, in ``group``, a unit opening customer account ``name``."""

    def fn(conn: Connection) -> str:
        conn.execute(sa.insert(s.accounts).values(id=name, kind="customer", bank="Bank A"))
        return name

    return lambda: group.run(fn)


def test_a_failed_commit_answers_every_unit_with_the_error(world: World) -> None:
    """The group's commit fails (a unique key broken at COMMIT on PostgreSQL with a deferred
    check is not portable, so the last unit breaks the transaction itself: it closes the
    connection under it): no unit's effect is stored, and every caller gets an error."""
    group = GroupCommit(world.ledger.engine)
    a = s.accounts

    def breaker(conn: Connection) -> None:
        conn.connection.dbapi_connection.close()  # type: ignore[union-attr]

    names = [f"c-lost-{i}" for i in range(4)]
    out = _grouped(
        group, [*(_opens_account(group, n) for n in names), lambda: group.run(breaker)], False
    )
    group.close()
    assert all(k == "error" for k, _ in out)
    with world.ledger.engine.connect() as conn:
        stored = conn.execute(sa.select(a.c.id).where(a.c.id.like("c-lost-%"))).all()
    assert stored == []


def test_a_unit_that_ends_the_whole_transaction_fails_the_whole_group(world: World) -> None:
    """Attack review: SQLite ends the whole transaction, not a savepoint, on a full disk, an I/O
    error or an interrupted write (here: the unit ends it itself, then fails). The units before
    it lost their writes and must not be answered as committed; the ones after it must not run
    without a transaction: every unit gets an error and nothing is stored."""
    group = GroupCommit(world.ledger.engine)
    a = s.accounts

    def ender(conn: Connection) -> None:
        conn.exec_driver_sql("ROLLBACK")
        raise ValueError("failed after the database ended the transaction")

    calls = [
        _opens_account(group, "c-ended-0"),
        lambda: group.run(ender),
        _opens_account(group, "c-ended-2"),
    ]
    out = _grouped(group, calls, committed=False)
    assert all(k == "error" for k, _ in out), out
    stop = group.run(lambda conn: "the writer lives on")  # a later group is served
    group.close()
    assert stop == "the writer lives on"
    with world.ledger.engine.connect() as conn:
        stored = conn.execute(sa.select(a.c.id).where(a.c.id.like("c-ended-%"))).all()
    assert stored == []


def test_concurrent_syncs_one_replayed_others_settled_once(world: World) -> None:
    """Eight syncs in one group, one of them a replay of a settled sync (refused inside the
    transaction): the seven are settled and answered, each payment is in ``spends`` once, the
    replay gets ``IncompleteLog`` and changes nothing."""
    ledger = world.ledger
    ledger.group = GroupCommit(ledger.engine)
    payees = [world.wallet(0, "Bank B")[0] for _ in range(7)]
    payers = []
    for payee in payees:
        se, _, _ = world.wallet(5_000)
        wid = payee.status(T0).wallet_id
        assert wid is not None
        for k in range(3):
            payee.receive(se.pay_to(wid, 100 + k, T0), T0)
        payers.append(se)
    replayer, _, _ = world.wallet(1_000)
    old = replayer.sync_upload(T0 + 1)
    world.sync(replayer, T0 + 1)
    world.sync(replayer, T0 + 2)

    def sync(up: Any, se: SoftwareSecureElement) -> Callable[[], Any]:
        return lambda: ledger.sync(up.report, up.entries, se.csr(), T0 + 5)

    calls = [sync(p.sync_upload(T0 + 5), p) for p in payers]
    calls.insert(4, sync(old, replayer))
    with ledger.engine.connect() as conn:
        before = conn.execute(sa.select(s.syncs)).all()
    out = _grouped(ledger.group, calls)
    assert [k for k, _ in out] == ["ok"] * 4 + ["error"] + ["ok"] * 3
    assert isinstance(out[4][1], IncompleteLog)
    results = [v for k, v in out if k == "ok"]
    assert all(r.ack is not None and r.settled == 3 and not r.refused for r in results)
    for se, r in zip(payers, results, strict=True):
        se.apply_sync(r.ack, r.certificate, r.bank_certificates, r.crls, T0 + 5)
    with ledger.engine.connect() as conn:
        spends = conn.execute(sa.select(s.spends.c.payer, s.spends.c.counter)).all()
        after = conn.execute(sa.select(s.syncs)).all()
    assert len(spends) == len(set(spends)) == 7 * 3 + 0  # the replayer paid nobody
    assert len(after) == len(before) + 7
    audit = ledger.audit()
    assert audit.balanced
    assert audit.banks["Bank A"].float == sum(se.status(T0).balance for se in [*payers, replayer])


def _paid_pairs(
    url: str, schema: str | None, p256: PilotNetwork, now: int
) -> list[SoftwareSecureElement]:
    """12 payers (Bank A) each paid 4 payments offline to its own payee (Bank B): payers at
    even places, payees at odd ones."""
    ledger = LedgerService.open(url, schema=schema)
    ledger.install(p256.params, p256.central_bank, p256.banks)
    for bank in ("Bank A", "Bank B"):
        ledger.issue(bank, 10_000_000, now)
    world = World(p256, ledger)
    pairs = []
    for _ in range(12):
        payer, _, _ = world.wallet(5_000, now=now)
        payee, pid, _ = world.wallet(0, "Bank B", now=now)
        for k in range(4):
            payee.receive(payer.pay_to(pid, 50 + k, now), now)
        pairs += [payer, payee]
    ledger.close()
    return pairs


def _stored_syncs(url: str, schema: str | None) -> tuple[set[tuple[bytes, int]], dict[bytes, int]]:
    """The (wallet, seq) of every sync row, and each wallet's next sequence, from the database."""
    ledger = LedgerService.open(url, schema=schema)
    try:
        with ledger.engine.connect() as conn:
            stored = conn.execute(sa.select(s.syncs.c.wallet, s.syncs.c.seq)).all()
            seqs = conn.execute(sa.select(s.wallets.c.id, s.wallets.c.next_seq)).all()
    finally:
        ledger.engine.dispose()
    return {(bytes(w), int(q)) for w, q in stored}, {bytes(w): int(q) for w, q in seqs}


def _settled_once(
    url: str, schema: str | None, pairs: list[SoftwareSecureElement], payments: int
) -> None:
    """Each payment in ``spends`` once, no conflict or anomaly, the books balance with empty
    suspense, and each bank's float is its SEs' balances."""
    ledger = LedgerService.open(url, schema=schema)
    try:
        with ledger.engine.connect() as conn:
            spends = conn.execute(sa.select(s.spends.c.payer, s.spends.c.counter)).all()
            conflicts = conn.execute(sa.select(sa.func.count()).select_from(s.conflicts)).scalar()
        assert len(spends) == len(set(spends)) == payments
        assert conflicts == 0 and ledger.anomalies() == []
        audit = ledger.audit()
        assert audit.balanced and audit.suspense == 0
        t = int(time.time())
        for bank, ses in (("Bank A", pairs[0::2]), ("Bank B", pairs[1::2])):
            assert audit.banks[bank].float == sum(se.status(t).balance for se in ses)
    finally:
        ledger.engine.dispose()


def test_sigkill_while_groups_are_written_loses_no_acknowledged_sync(
    db_target: tuple[str, str | None], p256: PilotNetwork, tmp_path: Path
) -> None:
    """A real server (group commit on), 24 wallets syncing at once from threads, SIGKILLed a
    random few milliseconds in: every sync it answered is in the database after the restart
    (its ``syncs`` row, the wallet's next sequence), and once every wallet has synced again
    each payment is settled exactly once and the books balance."""
    url, schema = db_target
    rng = random.Random(os.environ.get("OFFCASH_CRASH_SEED", "11"))
    pairs = _paid_pairs(url, schema, p256, int(time.time()))  # the server reads its own clock

    server = ServerProcess.api(
        url if schema is None else pg_url_with_schema(url, schema), TOKEN, tmp_path / "s.log"
    )
    server.start()
    client = Client(server.url, TOKEN, timeout=30)
    acknowledged: list[tuple[bytes, int]] = []
    applied = dict.fromkeys(range(len(pairs)), 0)  # the syncs each SE applied (its next seq)
    lock = threading.Lock()

    def sync(i: int) -> None:
        se = pairs[i]
        t = int(time.time())
        up = se.sync_upload(t)
        try:
            res = client.sync(up.report, [x.encode() for x in up.entries], se.csr(), t)
        except (httpx.TransportError, RemoteError, ServiceUnavailable):
            return  # killed before it answered: the wallet syncs again later
        assert res.ack is not None and res.certificate is not None and not res.refused
        wid = se.status(t).wallet_id
        assert wid is not None
        with lock:
            acknowledged.append((wid.raw, applied[i]))
        se.apply_sync(res.ack, res.certificate, res.bank_certificates, res.crls, t)
        applied[i] += 1

    try:
        with ThreadPoolExecutor(len(pairs)) as pool:
            futures = [pool.submit(sync, i) for i in range(len(pairs))]
            time.sleep(rng.uniform(0.02, 0.15))
            server.kill()
            for f in futures:
                f.result()
        stored, seqs = _stored_syncs(url, schema)
        for wid, seq in acknowledged:
            assert (wid, seq) in stored
            assert seqs[wid] == seq + 1
        server.start()
        for i, se in enumerate(pairs):  # what was not answered syncs again, re-signed
            if se.status(int(time.time())).log_entries:
                sync(i)
        assert all(se.status(int(time.time())).log_entries == 0 for se in pairs)
    finally:
        client.close()
        server.stop()
    _settled_once(url, schema, pairs, 12 * 4)


@pytest.mark.parametrize("units", [1, 5])
def test_units_answer_in_their_own_thread_once(world: World, units: int) -> None:
    """Each caller gets its own unit's answer (not a neighbour's), exactly once."""
    group = GroupCommit(world.ledger.engine)

    def call(i: int) -> Callable[[], Any]:
        return lambda: group.run(lambda conn: i)

    calls = [call(i) for i in range(units)]
    out = _grouped(group, calls)
    group.close()
    assert out == [("ok", i) for i in range(units)]
    assert group.units == units + 1
