"""The settlement service SIGKILLed during uploads settles every payment exactly once
(issue 5, item 4).

A real ``python -m offcash.api`` process on 127.0.0.1 (SQLite file or PostgreSQL schema) takes
terminal redemptions (each batch uploaded twice) and wallet syncs (payers and payees, two rounds)
over HTTP. At random attempts a timer SIGKILLs the server a random few milliseconds after the
upload starts, then restarts it; the client retries each upload until it is answered, as a
wallet would (a sync is re-signed and re-sent; an acknowledgement that never arrived makes the
ledger re-process the same sync). Afterwards, from the database: every payment is in ``spends``
exactly once, no conflict or anomaly, the books balance, the shop holds exactly its payments,
suspense is empty and each bank's float equals its wallets' SE balances.

``OFFCASH_CRASH_KILLS`` sets the kills per backend (default 3); ``OFFCASH_CRASH_STATS=path``
appends the counts as JSON lines.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
import sqlalchemy as sa
from server_process import ServerProcess, pg_url_with_schema

from offcash.api.client import Client
from offcash.domain.ids import WalletId
from offcash.errors import RemoteError, ServiceUnavailable
from offcash.ledger import LedgerService
from offcash.ledger import schema as s
from offcash.se.software import SoftwareSecureElement

from harness import PilotNetwork

KILLS = int(os.environ.get("OFFCASH_CRASH_KILLS", "3"))
STATS_FILE = os.environ.get("OFFCASH_CRASH_STATS")
TOKEN = "crash-test-token"
PAYERS, PER_PAYER = 6, 16


class Killer:
    """Kills the server at random upload attempts (a timer a few ms into the request)."""

    def __init__(self, server: ServerProcess, kills: int, rng: random.Random) -> None:
        self.server, self.left, self.rng = server, kills, rng
        self.busy = threading.Lock()
        self.done = 0
        self.threads: list[threading.Thread] = []

    def maybe(self) -> None:
        if self.left <= 0 or self.rng.random() > 0.4 or not self.busy.acquire(blocking=False):
            return
        self.left -= 1
        delay = self.rng.uniform(0.0, 0.03)

        def go() -> None:
            try:
                time.sleep(delay)
                self.server.kill()
                self.done += 1
                self.server.start()
            finally:
                self.busy.release()

        t = threading.Thread(target=go)
        t.start()
        self.threads.append(t)

    def join(self) -> None:
        for t in self.threads:
            t.join()


def _retry(killer: Killer, stats: Counter[str], fn: object) -> object:
    while True:
        killer.maybe()
        stats["attempts"] += 1
        try:
            return fn()  # type: ignore[operator]
        except (httpx.TransportError, RemoteError, ServiceUnavailable) as exc:
            stats[f"interrupted:{type(exc).__name__}"] += 1
            time.sleep(0.05)


@dataclass
class Prepared:
    payers: list[SoftwareSecureElement]
    payees: list[SoftwareSecureElement]
    shop: str
    terminal: WalletId
    to_terminal: list[bytes]
    shop_total: int


def _prepare(url: str, schema: str | None, p256: PilotNetwork, now: int) -> Prepared:
    """Wallets that paid offline (half to a shop's terminal, half to payee SEs)."""
    ledger = LedgerService.open(url, schema=schema)
    ledger.install(p256.params, p256.central_bank, p256.banks)
    ledger.issue("Bank A", 10_000_000, now)
    ledger.issue("Bank B", 10_000_000, now)

    def wallet(bank: str, balance: int) -> SoftwareSecureElement:
        acct = ledger.open_account(bank, "holder")
        ledger.distribute(acct, 100_000, now)
        se = p256.new_se()
        e = ledger.enroll(se.csr(), acct, now)
        se.enroll(e.certificate, e.bank_certificates, e.crls, now)
        if balance:
            se.load(ledger.fund(e.wallet_id, balance, now), now)
        return se

    payers = [wallet("Bank A", 20_000) for _ in range(PAYERS)]
    payees = [wallet("Bank B", 0) for _ in range(3)]
    shop = ledger.open_account("Bank B", "shop")
    terminal = ledger.register_terminal(shop)
    to_terminal: list[bytes] = []
    shop_total = 0
    for i, se in enumerate(payers):
        for j in range(PER_PAYER):
            amount = 100 + 7 * i + j
            if j % 2 == 0:
                to_terminal.append(se.pay_to(terminal, amount, now))
                shop_total += amount
            else:
                payee = payees[(i + j) % 3]
                payee.receive(se.pay_to(payee.status(now).wallet_id, amount, now), now)  # type: ignore[arg-type]
    ledger.engine.dispose()
    return Prepared(payers, payees, shop, terminal, to_terminal, shop_total)


def _verify(url: str, schema: str | None, w: Prepared) -> None:
    """From the database: each payment settled once, exact balances, floats match the SEs."""
    payers, payees, shop, shop_total = w.payers, w.payees, w.shop, w.shop_total
    ledger = LedgerService.open(url, schema=schema)
    try:
        with ledger.engine.connect() as c:
            spends = c.execute(sa.select(s.spends.c.payer, s.spends.c.counter)).all()
            conflicts = c.execute(sa.select(sa.func.count()).select_from(s.conflicts)).scalar()
        assert len(spends) == len(set(spends)) == PAYERS * PER_PAYER
        assert conflicts == 0 and ledger.anomalies() == []
        assert ledger.balance(shop) == shop_total
        audit = ledger.audit()
        assert audit.balanced and audit.suspense == 0
        t = int(time.time())
        assert audit.banks["Bank A"].float == sum(se.status(t).balance for se in payers)
        assert audit.banks["Bank B"].float == sum(se.status(t).balance for se in payees)
        for se in payees + payers:
            assert se.status(t).log_entries == 0
    finally:
        ledger.engine.dispose()


def test_sigkill_during_uploads_settles_each_payment_once(
    db_target: tuple[str, str | None], p256: PilotNetwork, tmp_path: Path
) -> None:
    url, schema = db_target
    rng = random.Random(os.environ.get("OFFCASH_CRASH_SEED", "5"))
    stats: Counter[str] = Counter()
    now = int(time.time())  # the server reads its own clock
    w = _prepare(url, schema, p256, now)
    payers, payees, terminal, to_terminal = w.payers, w.payees, w.terminal, w.to_terminal

    server_db = url if schema is None else pg_url_with_schema(url, schema)
    server = ServerProcess.api(server_db, TOKEN, tmp_path / "server.log")
    server.start()
    killer = Killer(server, KILLS, rng)
    client = Client(server.url, TOKEN, timeout=10)

    def sync(se: SoftwareSecureElement) -> None:
        def once() -> None:
            t = int(time.time())
            up = se.sync_upload(t)
            res = client.sync(up.report, [x.encode() for x in up.entries], se.csr(), t)
            assert res.ack is not None and res.certificate is not None
            assert res.refused == [] and res.anomalies == []
            se.apply_sync(res.ack, res.certificate, res.bank_certificates, res.crls, t)

        _retry(killer, stats, once)
        stats["syncs"] += 1

    def redeem(batch: list[bytes]) -> None:
        r = _retry(killer, stats, lambda: client.redeem(terminal, batch, int(time.time())))
        assert r.refused == []  # type: ignore[attr-defined]
        stats["redemptions"] += 1

    batches = [to_terminal[i : i + 8] for i in range(0, len(to_terminal), 8)]
    jobs = [("redeem", b) for b in batches * 2] + [("sync", se) for se in payers + payees]
    try:
        for _ in range(2):
            rng.shuffle(jobs)
            for kind, arg in jobs:
                if kind == "redeem":
                    redeem(arg)  # type: ignore[arg-type]
                else:
                    sync(arg)  # type: ignore[arg-type]
        while killer.left > 0:  # kills not spent yet: keep uploading (syncs) until they are
            sync(rng.choice(payers + payees))
        killer.join()
    finally:
        client.close()
        killer.join()
        server.stop()

    _verify(url, schema, w)
    assert killer.done == KILLS
    line = {
        "backend": "sqlite" if schema is None else "postgresql",
        "kills": killer.done,
        "payments": PAYERS * PER_PAYER,
        **stats,
    }
    print(json.dumps(line))
    if STATS_FILE:
        with open(STATS_FILE, "a") as f:
            f.write(json.dumps(line) + "\n")
