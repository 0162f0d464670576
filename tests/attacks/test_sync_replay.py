"""Issue 9, item 4: a sync processed again never moves money again.

A payee SE that accepted a payment from a payer it already held the revoking CRL for is charged
back at its sync (``REVOKED``). That sync is then run again: its answer lost and the same upload
re-sent, a captured ``/v1/sync`` body replayed over HTTP, and the same upload sent to two service
processes at the same moment (on one database). The charge-back happens once per
``(wallet, sync_seq)``; every run gets the same answer (no IntegrityError, no HTTP 500). The
oracle is the test's own count: the payee's account is its opening amount minus one charge-back
per payment it accepted from the revoked payer, on SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing as mp
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from attackkit import ACCOUNT, assert_books, forget_crls, party, sealed_wallet
from ledgerkit import World
from server_process import ServerProcess, pg_url_with_schema

from offcash.api import wire
from offcash.domain.ids import WalletId
from offcash.ledger import LedgerService
from offcash.ledger.errors import IncompleteLog
from offcash.ledger.sync import SyncResult
from offcash.protocol import messages as m
from offcash.se.interface import SecureElement

from harness import T0

TOKEN = "replay-test-token"
REFUSED = 100  # each payment from the revoked payer


@dataclass
class Payee:
    """dave: a broken payee SE that held the CRL revoking alice (its signed report said so) and
    then dropped it, and alice's clone ``evil`` that still pays offline."""

    se: SecureElement
    wid: WalletId
    account: str
    evil: SecureElement

    def accept_from_revoked(self, now: int) -> None:
        self.se.receive(self.evil.pay_to(self.wid, REFUSED, now), now)

    def upload(self, now: int) -> tuple[bytes, list[bytes], bytes]:
        up = self.se.sync_upload(now)
        return up.report, [e.encode() for e in up.entries], self.se.csr()


def _payee(world: World, tmp_path: Path, now: int) -> Payee:
    alice = sealed_wallet(world, tmp_path / "alice", 5_000, "Bank A", now=now)
    evil = alice.clone(tmp_path / "evil")
    bob, carol = party(world, 0, "Bank B", now), party(world, 0, "Bank A", now)
    dave = party(world, 0, "Bank B", now)
    bob.se.receive(alice.se.pay_to(bob.wid, 1_000, now), now)
    carol.se.receive(evil.pay_to(carol.wid, 1_000, now), now)
    world.sync(bob.se, now)
    world.sync(carol.se, now)  # the double spend: alice revoked, Bank A's CRL lists her
    got = world.sync(dave.se, now)  # dave's SE installs the CRL revoking alice...
    assert got.ack is not None and got.certificate is not None and got.crls
    world.sync(dave.se, now)  # ...and its next signed report says it holds it: recorded
    # a broken SE: it forgets the CRL it said it held, and accepts from the revoked payer
    forget_crls(dave)
    return Payee(dave.se, dave.wid, dave.account, evil)


def _same_answer(a: SyncResult, b: SyncResult) -> None:
    assert a.refused == b.refused and a.anomalies == b.anomalies
    assert a.ack is not None and b.ack is not None
    ka, kb = m.parse_ack(a.ack), m.parse_ack(b.ack)
    assert (ka.wallet, ka.sync_seq, ka.entries, ka.log_digest) == (
        kb.wallet,
        kb.sync_seq,
        kb.entries,
        kb.log_digest,
    )


def test_sync_rerun_after_a_lost_answer_charges_back_once(world: World, tmp_path: Path) -> None:
    dave = _payee(world, tmp_path, T0)
    dave.accept_from_revoked(T0 + 10)
    upload = dave.upload(T0 + 20)
    first = world.ledger.sync(*upload, T0 + 21)  # the answer never reaches dave
    assert [r.reason for r in first.refused] == ["REVOKED"]
    for t in (T0 + 22, T0 + 23, T0 + 24):  # re-sent, or replayed by whoever captured it
        _same_answer(first, world.ledger.sync(*upload, t))
    assert world.ledger.balance(dave.account) == ACCOUNT - REFUSED
    # another payment accepted since: the re-run's log is longer; only the new entry counts
    dave.accept_from_revoked(T0 + 30)
    longer = world.ledger.sync(*dave.upload(T0 + 31), T0 + 31)
    assert [r.reason for r in longer.refused] == ["REVOKED", "REVOKED"]
    assert world.ledger.balance(dave.account) == ACCOUNT - 2 * REFUSED
    assert [a.kind for a in world.ledger.anomalies(dave.wid)] == ["refused-payment"] * 2
    assert longer.ack is not None and longer.certificate is not None
    dave.se.apply_sync(
        longer.ack, longer.certificate, longer.bank_certificates, longer.crls, T0 + 32
    )
    # once the SE moved on, the captured upload is refused whole
    world.ledger.sync(*dave.upload(T0 + 40), T0 + 40)
    with pytest.raises(IncompleteLog):
        world.ledger.sync(*upload, T0 + 41)
    assert world.ledger.balance(dave.account) == ACCOUNT - 2 * REFUSED
    assert_books(world)


def _sync_at_once(
    url: str,
    schema: str | None,
    upload: tuple[bytes, list[bytes], bytes],
    now: int,
    go: Any,
    out: Any,
) -> None:
    ledger = LedgerService.open(url, schema=schema)
    try:
        go.wait()
        res = ledger.sync(*upload, now)
        out.put(("ok", res.refused, res.anomalies, res.ack))
    except Exception as exc:  # reported to the test, which fails on it
        out.put(("error", repr(exc), None, None))
    finally:
        ledger.engine.dispose()


def test_identical_uploads_from_two_processes_at_once_move_money_once(
    world: World, db_target: tuple[str, str | None], tmp_path: Path
) -> None:
    url, schema = db_target
    dave = _payee(world, tmp_path, T0)
    ctx = mp.get_context("fork")
    for n in range(1, 4):
        dave.accept_from_revoked(T0 + 10 * n)
        upload = dave.upload(T0 + 10 * n + 1)
        world.ledger.engine.dispose()
        go, out = ctx.Barrier(2), ctx.Queue()
        procs = [
            ctx.Process(target=_sync_at_once, args=(url, schema, upload, T0 + 10 * n + 2, go, out))
            for _ in range(2)
        ]
        for p in procs:
            p.start()
        results = [out.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(60)
        assert [r[0] for r in results] == ["ok", "ok"], results
        assert results[0][1] == results[1][1] and [x.reason for x in results[0][1]] == ["REVOKED"]
        acks = [m.parse_ack(r[3]) for r in results]
        assert acks[0].sync_seq == acks[1].sync_seq and acks[0].log_digest == acks[1].log_digest
        assert world.ledger.balance(dave.account) == ACCOUNT - n * REFUSED
        res = world.ledger.sync(*upload, T0 + 10 * n + 3)  # the answer dave applies (no CRL)
        assert res.ack is not None and res.certificate is not None
        dave.se.apply_sync(res.ack, res.certificate, res.bank_certificates, [], T0 + 10 * n + 3)
    assert [a.kind for a in world.ledger.anomalies(dave.wid)] == ["refused-payment"] * 3
    assert_books(world)


# --- over HTTP, with real service processes ---------------------------------------------------


def _body(upload: tuple[bytes, list[bytes], bytes]) -> dict[str, Any]:
    report, entries, csr = upload
    return {
        "report": wire.b64(report),
        "entries": [wire.b64(e) for e in entries],
        "csr": wire.b64(csr),
    }


def test_captured_sync_body_replayed_and_raced_over_http_moves_money_once(
    world: World, db_target: tuple[str, str | None], tmp_path: Path
) -> None:
    url, schema = db_target
    now = int(time.time())  # the servers read their own clocks
    dave = _payee(world, tmp_path, now)
    dave.accept_from_revoked(now)
    body = _body(dave.upload(now))
    world.ledger.engine.dispose()
    server_db = url if schema is None else pg_url_with_schema(url, schema)
    servers = [ServerProcess.api(server_db, TOKEN, tmp_path / f"s{i}.log") for i in range(2)]
    try:
        for s in servers:
            s.start()
        # the same body to both servers at the same moment
        answers: list[httpx.Response] = []
        go = threading.Barrier(2)

        def post(s: ServerProcess) -> None:
            go.wait()
            answers.append(httpx.post(s.url + "/v1/sync", json=body, timeout=60))

        threads = [threading.Thread(target=post, args=(s,)) for s in servers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
        # ... then replayed by whoever captured it, three more times
        for _ in range(3):
            again = httpx.post(servers[0].url + "/v1/sync", json=body, timeout=60)
            assert again.status_code == 200
            answers.append(again)
        parsed = [wire.parse_sync_result(a.json()) for a in answers]
        for p in parsed[1:]:
            _same_answer(parsed[0], p)
        assert [r.reason for r in parsed[0].refused] == ["REVOKED"]
    finally:
        for s in servers:
            s.stop()
    assert world.ledger.balance(dave.account) == ACCOUNT - REFUSED
    assert [a.kind for a in world.ledger.anomalies(dave.wid)] == ["refused-payment"]
    assert_books(world)


def test_a_replayed_shorter_upload_does_not_revoke_an_honest_wallet(world: World) -> None:
    """Found by the attacker review: alice's sync N is settled but its answer lost; she pays
    offline and retries sync N with her longer log (settled too). A relay then replays the
    first, shorter upload: it is a prefix of the settled log (every entry already settled as
    it is), so it is refused with nothing done, not taken for a fork (a clone) that revokes
    alice."""
    alice, a_id, _ = world.wallet(5_000, "Bank A", now=T0)
    bob, b_id, _ = world.wallet(0, "Bank B", now=T0)
    bob.receive(alice.pay_to(b_id, 100, T0 + 1), T0 + 1)
    up = alice.sync_upload(T0 + 2)
    first = (up.report, [e.encode() for e in up.entries], alice.csr())
    world.ledger.sync(*first, T0 + 2)  # settled; the answer never reaches alice
    bob.receive(alice.pay_to(b_id, 200, T0 + 3), T0 + 3)
    world.sync(alice, T0 + 4)  # the retry of sync N with the longer log
    with pytest.raises(IncompleteLog, match="replay"):
        world.ledger.sync(*first, T0 + 5)
    assert world.ledger.wallet_status(a_id) == "active"
    assert not world.ledger.anomalies(a_id)
    world.sync(bob, T0 + 6)
    world.sync(alice, T0 + 7)  # alice goes on syncing
    assert_books(world)
