"""Sync-path settlement benchmark (prints figures; not a test).

``benchmarks/settlement.py`` measures a terminal's redemption stream (verified in the service's
process pool). This one measures the other way payments reach the ledger: wallets syncing their
SE-signed logs. N payments are made by N/50 payer wallets, 50 each, to as many payee wallets
(one payer per payee), and each payee SE receives and verifies its 50 offline. Each payee then
syncs: one upload of 50 RECEIVED entries, which the service verifies entry by entry with the
same ``verify_payment``, settles, reconciles, and answers with a renewed certificate and a
bank-signed acknowledgement. Syncs are spread over cores the way a deployment does it: P service
processes (default: one per core) on one database, each taking its share of the uploads.

Printed beside it, in the same run: the ``verify_payment`` ceiling on all cores (one process per
core verifying payments already in memory; no database) and the raw signature rate, as in
``settlement.py``, and the SQL statements each sync sends to the database (an SQLAlchemy event
listener counts them in the service processes). Run on SQLite and on PostgreSQL
(``OFFCASH_TEST_PG``, skipped if unreachable); enrollment, funding and the offline payments are
set up before the clock starts.

    python benchmarks/sync_settlement.py --payments 100000
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import struct
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.synchronize import Barrier

import sqlalchemy as sa
from settlement import PG, T0, _backends, _ceiling_chunk, _init_ceiling, _rate, _raw_chunk

from offcash.crypto.algorithms import SignatureAlgorithm
from offcash.domain.ids import WalletId
from offcash.domain.network import NetworkParams
from offcash.issuance import Bank, CentralBank
from offcash.ledger import LedgerService
from offcash.ledger.db import normalize_url
from offcash.se.software import SoftwareSecureElement

PER_WALLET = 50  # the default limit on offline payments between syncs
NOW = T0 + 2000
Upload = tuple[bytes, list[bytes], bytes]  # report, entries, csr


class _Memory:
    """An in-memory ``StateStore``: the state bytes to hand the SE to another process."""

    state = b""

    def save(self, state: bytes) -> None:
        self.state = state


def _pair_payments(job: tuple[bytes, bytes, int, int]) -> tuple[Upload, list[bytes]]:
    """Worker: the payer pays the payee ``PER_WALLET`` times offline; the payee SE receives
    each. Returns the payee's sync upload and the payments."""
    payer_state, payee_state, seed, count = job
    payer, payee = SoftwareSecureElement(payer_state), SoftwareSecureElement(payee_state)
    t = T0 + 10 + seed % 500
    payments = []
    for i in range(count):
        p = payer.pay(payee.request(1 + (seed + i) % 99, t + i), t + i)
        payee.receive(p, t + i)
        payments.append(p)
    up = payee.sync_upload(t + count)
    return (up.report, [e.encode() for e in up.entries], payee.csr()), payments


def _wallet(
    ledger: LedgerService, params: NetworkParams, root: bytes, account: str
) -> tuple[SoftwareSecureElement, WalletId, _Memory]:
    """A new SE enrolled in ``ledger``, its wallet id and the store holding its state."""
    store = _Memory()
    se = SoftwareSecureElement(SoftwareSecureElement.new_state(params, root), store)
    e = ledger.enroll(se.csr(), account, T0)
    se.enroll(e.certificate, e.bank_certificates, e.crls, T0)
    return se, e.wallet_id, store


def _prepare(
    ledger: LedgerService, params: NetworkParams, root: bytes, n: int, pool: ProcessPoolExecutor
) -> tuple[list[Upload], list[bytes]]:
    """Enroll and fund the payers, enroll the payees, make the payments; the payees' uploads."""
    pairs = n // PER_WALLET
    account = ledger.open_account("Bank A", "payers")
    ledger.distribute(account, pairs * 5_000, T0)
    payee_account = ledger.open_account("Bank A", "payees")
    jobs = []
    for i in range(pairs):
        payer, pid, pstore = _wallet(ledger, params, root, account)
        payer.load(ledger.fund(pid, 5_000, T0), T0)
        _, _, qstore = _wallet(ledger, params, root, payee_account)
        jobs.append((pstore.state, qstore.state, i, PER_WALLET))
    uploads, payments = [], []
    for up, ps in pool.map(_pair_payments, jobs, chunksize=16):
        uploads.append(up)
        payments += ps
    return uploads, payments


def _settle_share(
    url: str,
    schema: str | None,
    uploads: list[Upload],
    start: Barrier,
    out: mp.Queue[tuple[int, int]],
) -> None:
    """One service process: sync its share of the uploads, after the common start. Puts the
    payments settled and the SQL statements the syncs sent to the database (counted by an
    SQLAlchemy ``before_cursor_execute`` listener: an executemany counts once, BEGIN too)."""
    ledger = LedgerService.open(url, schema=schema, workers=0)
    ledger.trust_material(None, NOW)  # load the CAs before the clock starts
    statements = 0

    def count(*_: object) -> None:
        nonlocal statements
        statements += 1

    sa.event.listen(ledger.engine, "before_cursor_execute", count)
    start.wait()
    settled = 0
    for report, entries, csr in uploads:
        res = ledger.sync(report, entries, csr, NOW)
        assert res.ack is not None and not res.refused and not res.anomalies, res
        settled += res.settled
    ledger.close()
    out.put((settled, statements))


def _run(
    name: str, n: int, procs: int, cb: CentralBank, bank: Bank, alg: str
) -> tuple[float, list[bytes]]:
    """Sync N payments' worth of uploads on a fresh ledger with ``procs`` service processes."""
    schema = None if name == "sqlite" else "bench_" + uuid.uuid4().hex[:8]
    url = f"sqlite:///{tempfile.mkdtemp()}/bench.db" if name == "sqlite" else PG
    params = NetworkParams("EUR", SignatureAlgorithm.from_name(alg))
    ledger = LedgerService.open(url, schema=schema, workers=0)
    ledger.install(params, cb, [bank])
    ledger.issue("Bank A", 10**12, T0)
    with ProcessPoolExecutor(os.cpu_count() or 1) as pool:
        uploads, payments = _prepare(ledger, params, cb.certificate_der, n, pool)
    ledger.engine.dispose()
    ctx = mp.get_context("fork")
    start, out = ctx.Barrier(procs + 1), ctx.Queue()
    workers = [
        ctx.Process(target=_settle_share, args=(url, schema, uploads[k::procs], start, out))
        for k in range(procs)
    ]
    for w in workers:
        w.start()
    start.wait()
    t = time.perf_counter()
    results = [out.get() for _ in workers]
    dt = time.perf_counter() - t
    settled = sum(n for n, _ in results)
    statements = sum(k for _, k in results)
    for w in workers:
        w.join()
    assert settled == n, (settled, n)
    audit = ledger.audit()
    assert audit.balanced and audit.suspense == 0
    print(
        f"{name:10s} synced {n:>7,} payments ({len(uploads):,} syncs) in {dt:6.1f}s; "
        f"{statements / len(uploads):.1f} SQL statements per sync (BEGIN included)",
        flush=True,
    )
    ledger.close()
    if schema:
        with sa.create_engine(normalize_url(PG)).begin() as c:
            c.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    return n / dt, payments


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--payments", type=int, default=100_000)
    ap.add_argument("--alg", default="p256", choices=["p256", "ed25519"])
    ap.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    a = ap.parse_args()
    alg = SignatureAlgorithm.from_name(a.alg)
    cb = CentralBank.create("Bench Central Bank", alg, T0 - 86400)
    bank = cb.certify_bank("Bank A", T0 - 86400)
    cores = os.cpu_count() or 1
    cpu = platform.processor() or platform.machine()
    print(
        f"machine: {cpu}, {cores} cores, python {sys.version.split()[0]}; "
        f"{a.processes} service processes",
        flush=True,
    )
    n = a.payments - a.payments % PER_WALLET
    for name in _backends():
        rate, payments = _run(name, n, a.processes, cb, bank, a.alg)
        path = tempfile.mktemp(suffix=".payments")
        sample = payments[:20_000]
        with open(path, "wb") as f:
            for p in sample:
                f.write(struct.pack(">I", len(p)) + p)
        with ProcessPoolExecutor(
            cores,
            initializer=_init_ceiling,
            initargs=(path, len(sample), cb.certificate_der, [bank.certificate_der], a.alg),
        ) as ceiling_pool:
            _rate(ceiling_pool, _ceiling_chunk, min(len(sample), 1000 * cores))  # warm up
            vp = _rate(ceiling_pool, _ceiling_chunk, len(sample))
            raw = _rate(ceiling_pool, _raw_chunk, len(sample))
        os.unlink(path)
        print(
            f"{name:10s} {rate:8,.0f} payments/s by sync = {rate / vp:.0%} of the verify_payment"
            f" ceiling ({vp:,.0f}/s on {cores} cores; raw signatures {raw:,.0f}/s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
