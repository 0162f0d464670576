"""Check-then-act races between two real service processes on one database (issue 9, item 5).

Two ``python -m offcash.api`` processes serve one ledger (a SQLite file; a PostgreSQL schema,
where transactions are READ COMMITTED and so really overlap). Each round prepares its wallets in
this process, then sends two requests at once, one to each server, with a random head start of a
few milliseconds either way so that the rounds sweep across the window in which one transaction
reads what the other is about to change:

- **sync vs lost report**: a wallet's sync races its owner's ``report_lost``. Whichever wins, a
  certificate the sync handed out must be listed in its bank's current CRL (else a verifier
  with current CRLs accepts the revoked wallet's payments), and so must every unexpired
  certificate the ledger recorded for the wallet.
- **fund vs fund**: two wallets of one account are funded at once, each with more than half of
  what the account holds: one is refused, and the account never goes below zero.
- **payee sync vs lost refund**: the lost wallet paid a payee before it was lost; the payee's
  sync of that payment races the owner's ``refund_lost``. The oracle is the test's own model:
  the wallet was funded ``F`` and spent ``x``, so refund + the payment, less what the bank booked
  as its loss (``late-surfacing``, from its reserve), must be ``F``. The wallet is reported
  lost (in this process) dated a claim window back, so that the servers, on their own clock,
  owe the refund at once.

At the end each bank's offline float must equal what the model says it holds: the SE balances
not refunded, the vouchers not loaded and the payments not yet settled.

``OFFCASH_RACE_ROUNDS`` sets the rounds per race and backend (default 20).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography import x509
from server_process import ServerProcess, pg_url_with_schema

from offcash.api.client import Client
from offcash.domain.ids import WalletId
from offcash.ledger import LedgerService
from offcash.ledger import schema as s
from offcash.ledger.errors import InsufficientBalance, WalletRevoked
from offcash.ledger.service import DEFAULT_CLAIM_WINDOW
from offcash.se.software import SoftwareSecureElement

from harness import PilotNetwork

ROUNDS = int(os.environ.get("OFFCASH_RACE_ROUNDS", "20"))
TOKEN = "race-test-token"
HEAD_START = 0.015  # seconds: the largest head start either request gets


class Pair:
    """The ledger (in this process, for setup and checks) and two servers on its database."""

    def __init__(self, ledger: LedgerService, clients: tuple[Client, Client]) -> None:
        self.ledger, self.clients = ledger, clients
        #: per bank, what its float must hold by this test's model: SE balances not refunded,
        #: spends not yet settled, vouchers not yet loaded
        self.in_float: Counter[str] = Counter()
        self.rng = random.Random(os.environ.get("OFFCASH_RACE_SEED", "9"))

    def race(self, first: Callable[[Client], Any], second: Callable[[Client], Any]) -> list[Any]:
        """``first`` on server 1 and ``second`` on server 2 at once (one of them delayed by a
        random few ms); each one's answer, or the exception it raised."""
        delays = [0.0, 0.0]
        delays[self.rng.randrange(2)] = self.rng.uniform(0, HEAD_START)
        start = threading.Barrier(2)
        out: list[Any] = [None, None]

        def run(i: int, fn: Callable[[Client], Any]) -> None:
            start.wait()
            time.sleep(delays[i])
            try:
                out[i] = fn(self.clients[i])
            except Exception as exc:  # the caller decides which ones are allowed
                out[i] = exc

        threads = [threading.Thread(target=run, args=(i, f)) for i, f in enumerate((first, second))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return out

    def wallet(
        self, bank: str, balance: int, now: int, p256: PilotNetwork, account: str | None = None
    ) -> tuple[SoftwareSecureElement, WalletId]:
        acct = account or self.ledger.open_account(bank, "holder")
        if account is None:
            self.ledger.distribute(acct, 100_000, now)
        se = p256.new_se()
        e = self.ledger.enroll(se.csr(), acct, now)
        se.enroll(e.certificate, e.bank_certificates, e.crls, now)
        if balance:
            se.load(self.ledger.fund(e.wallet_id, balance, now), now)
        return se, e.wallet_id


@pytest.fixture
def pair(db_target: tuple[str, str | None], p256: PilotNetwork, tmp_path: Path) -> Iterator[Pair]:
    url, schema = db_target
    ledger = LedgerService.open(url, schema=schema)
    now = int(time.time())
    ledger.install(p256.params, p256.central_bank, p256.banks)
    ledger.issue("Bank A", 100_000_000, now)
    ledger.issue("Bank B", 100_000_000, now)
    server_db = url if schema is None else pg_url_with_schema(url, schema)
    servers = [ServerProcess.api(server_db, TOKEN, tmp_path / f"server{i}.log") for i in (1, 2)]
    clients: list[Client] = []
    try:
        for server in servers:
            server.start()
            clients.append(Client(server.url, TOKEN, timeout=30))
        yield Pair(ledger, (clients[0], clients[1]))
    finally:
        for c in clients:
            c.close()
        for server in servers:
            server.stop()
        ledger.close()


def _bank_crl(crls: list[bytes], bank: str) -> x509.CertificateRevocationList:
    for der in crls:
        crl = x509.load_der_x509_crl(der)
        if any(a.value == bank for a in crl.issuer):
            return crl
    raise AssertionError(f"no CRL of {bank}")


def _unlisted_certificates(ledger: LedgerService, wallet: WalletId, now: int) -> list[int]:
    """Serials of ``wallet``'s unexpired certificates that no revocation row lists."""
    c, r = s.certificates, s.revocations
    with ledger.engine.connect() as conn:
        return [
            int(x)
            for x in conn.execute(
                sa.select(c.c.serial).where(
                    c.c.wallet == wallet.raw,
                    c.c.not_after >= now,
                    ~sa.exists().where(r.c.serial == c.c.serial, r.c.bank == c.c.bank),
                )
            ).scalars()
        ]


def test_races_between_two_service_processes(pair: Pair, p256: PilotNetwork) -> None:
    """Both races, on one pair of servers (starting servers is the slow part)."""
    sync_vs_lost_report(pair, p256)
    payee_sync_vs_lost_refund(pair, p256)
    fund_vs_fund(pair, p256)
    audit = pair.ledger.audit()
    assert audit.balanced
    for bank in ("Bank A", "Bank B"):
        assert audit.banks[bank].float == pair.in_float[bank], bank


def sync_vs_lost_report(pair: Pair, p256: PilotNetwork) -> None:
    """A sync racing a lost report never leaves the wallet a certificate no CRL lists."""
    outcomes: Counter[str] = Counter()
    for _ in range(ROUNDS):
        now = int(time.time())
        se, wid = pair.wallet("Bank A", 5_000, now, p256)
        se.pay_to(WalletId.random(), 100, now)  # something in the log to settle
        up = se.sync_upload(now)
        entries = [e.encode() for e in up.entries]
        synced, lost = pair.race(
            lambda c: c.sync(up.report, entries, se.csr(), now),  # noqa: B023
            lambda c: c.report_lost(wid, now),  # noqa: B023
        )
        assert lost is None, lost  # the owner's report always goes through
        assert pair.ledger.wallet_status(wid) == "revoked"
        # lost, not refunded: the float still holds its balance, and its payment until settled
        pair.in_float["Bank A"] += se.status(now).balance
        if isinstance(synced, WalletRevoked):
            pair.in_float["Bank A"] += 100
            outcomes["report first"] += 1
        elif isinstance(synced, Exception):
            raise synced
        elif synced.certificate is None:
            outcomes["revoked while syncing"] += 1  # the sync saw it and renewed nothing
        else:
            outcomes["sync first"] += 1
            serial = x509.load_der_x509_certificate(synced.certificate).serial_number
            crl = _bank_crl(pair.clients[0].trust_material(None, now).crls, "Bank A")
            assert crl.get_revoked_certificate_by_serial_number(serial) is not None, (
                "the revoked wallet holds a certificate no CRL lists"
            )
        assert _unlisted_certificates(pair.ledger, wid, now) == []
    print(dict(outcomes))


def payee_sync_vs_lost_refund(pair: Pair, p256: PilotNetwork) -> None:
    """A payee's sync racing the payer's lost refund: what the wallet held is paid out once."""
    funded, outcomes = 5_000, Counter[str]()
    for i in range(ROUNDS):
        now = int(time.time())
        lost_se, lost = pair.wallet("Bank A", funded, now, p256)
        payee, payee_id = pair.wallet("Bank B", 0, now, p256)
        amount = 100 + i
        payee.receive(lost_se.pay_to(payee_id, amount, now), now)
        pair.in_float["Bank B"] += payee.status(now).balance
        # reported lost a claim window ago, so the refund is due now (the servers' clock)
        pair.ledger.report_lost(lost, now - DEFAULT_CLAIM_WINDOW - 1)
        up = payee.sync_upload(now)
        entries = [e.encode() for e in up.entries]
        synced, refund = pair.race(
            lambda c: c.sync(up.report, entries, payee.csr(), now),  # noqa: B023
            lambda c: c.refund_lost(lost, now),  # noqa: B023
        )
        assert not isinstance(synced, Exception), synced
        assert not isinstance(refund, Exception), refund
        assert synced.refused == [] and synced.anomalies == [], synced  # an honest payee
        loss = sum(a.amount for a in pair.ledger.anomalies(lost) if a.kind == "late-surfacing")
        outcomes["refund first" if loss else "sync first"] += 1
        assert refund + amount - loss == funded, (
            f"funded {funded}, spent {amount}: refunded {refund}, bank's loss {loss}"
        )
    print(dict(outcomes))


def fund_vs_fund(pair: Pair, p256: PilotNetwork) -> None:
    """Two fundings from one account at once never debit more than it holds."""
    outcomes: Counter[str] = Counter()
    for _ in range(ROUNDS):
        now = int(time.time())
        account = pair.ledger.open_account("Bank A", "holder")
        pair.ledger.distribute(account, 1_000, now)
        _, w1 = pair.wallet("Bank A", 0, now, p256, account)
        _, w2 = pair.wallet("Bank A", 0, now, p256, account)
        answers = pair.race(
            lambda c: c.fund(w1, 600, now),  # noqa: B023
            lambda c: c.fund(w2, 600, now),  # noqa: B023
        )
        funded = [a for a in answers if isinstance(a, bytes)]
        refused = [a for a in answers if isinstance(a, InsufficientBalance)]
        assert len(funded) == 1 and len(refused) == 1, answers
        assert pair.ledger.balance(account) == 400
        pair.in_float["Bank A"] += 600  # a voucher not loaded yet
        outcomes["one funded, one refused"] += 1
    print(dict(outcomes))
