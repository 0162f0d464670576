"""Load benchmark: many concurrent clients syncing against ``offcash serve`` on loopback
(prints figures; not a test).

``offcash network init`` makes a network (SQLite in its folder, or a fresh PostgreSQL schema
with ``--pg URL``) and ``offcash serve`` serves it on 127.0.0.1. Each client process enrols two
wallets (one at each bank) over HTTP, then for ``--seconds`` repeats: one wallet pays the other
``--batch`` payments offline, the payee accepts them, and both sync (POST /v1/sync, timed). At
the end every wallet syncs once more and the run checks, from the database, that each payment
is in ``spends`` exactly once, that there is no conflict or anomaly, that the books balance with
empty suspense, and that each bank's float equals the sum of its wallets' SE balances. Any
client error fails the run.

    python benchmarks/load.py --clients 16 --seconds 30
    python benchmarks/load.py --clients 16 --seconds 30 --pg postgresql://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from offcash.api.client import Client
from offcash.crypto.algorithms import SignatureAlgorithm
from offcash.domain.network import NetworkParams
from offcash.ledger import LedgerService
from offcash.ledger import schema as s
from offcash.ledger.db import normalize_url
from offcash.se.software import SoftwareSecureElement

TOKEN = "load-benchmark-token"


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _client(url: str, root: bytes, seconds: float, batch: int, seed: int) -> dict[str, Any]:
    """One client: two wallets paying each other offline and syncing, for ``seconds``."""
    try:
        c = Client(url, TOKEN, timeout=60)
        params = NetworkParams("EUR", SignatureAlgorithm.P256)
        ses, accounts = [], []
        for bank in ("Bank A", "Bank B"):
            now = int(time.time())
            acct = c.open_account(bank, f"client-{seed}")
            c.distribute(acct, 20_000, now)
            se = SoftwareSecureElement(SoftwareSecureElement.new_state(params, root))
            e = c.enroll(se.csr(), acct, now)
            se.enroll(e.certificate, e.bank_certificates, e.crls, now)
            se.load(c.fund(e.wallet_id, 10_000, now), now)
            ses.append(se)
            accounts.append(acct)
        ids = [se.status(int(time.time())).wallet_id for se in ses]
        latencies: list[float] = []
        payments = syncs = 0

        def sync(se: SoftwareSecureElement) -> None:
            nonlocal syncs
            now = int(time.time())
            up = se.sync_upload(now)
            t0 = time.perf_counter()
            res = c.sync(up.report, [x.encode() for x in up.entries], se.csr(), now)
            latencies.append(time.perf_counter() - t0)
            if res.ack is None or res.certificate is None or res.refused or res.anomalies:
                raise AssertionError(f"sync refused: {res}")
            se.apply_sync(res.ack, res.certificate, res.bank_certificates, res.crls, now)
            syncs += 1

        end = time.monotonic() + seconds
        i = 0
        while time.monotonic() < end:
            payer, payee = (0, 1) if i % 2 == 0 else (1, 0)
            now = int(time.time())
            for k in range(batch):
                p = ses[payer].pay_to(ids[payee], 10 + (k % 50), now)  # type: ignore[arg-type]
                ses[payee].receive(p, now)
                payments += 1
            sync(ses[payer])
            sync(ses[payee])
            i += 1
        loop_time = seconds + (time.monotonic() - end)
        for se in ses:
            sync(se)
        c.close()
        now = int(time.time())
        return {
            "ok": True,
            "payments": payments,
            "syncs": syncs,
            "latencies": latencies,
            "window": loop_time,
            "balances": {
                b: se.status(now).balance for b, se in zip(("Bank A", "Bank B"), ses, strict=True)
            },
        }
    except Exception:
        return {"ok": False, "error": traceback.format_exc()}


def _pct(xs: list[float], q: float) -> float:
    return statistics.quantiles(xs, n=100, method="inclusive")[int(q) - 1] if len(xs) > 1 else xs[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--batch", type=int, default=5, help="offline payments between two syncs")
    ap.add_argument("--pg", help="PostgreSQL URL (a fresh schema is made and dropped)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON too")
    a = ap.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="offcash-load-"))
    db, schema = _database(a.pg, folder)
    results, audit = _run(a, folder, db)
    return _report(a, folder, db, schema, results, audit)


def _database(pg: str | None, folder: Path) -> tuple[str, str | None]:
    schema = None
    if pg:
        schema = "load_" + uuid.uuid4().hex[:10]
        engine = sa.create_engine(normalize_url(pg))
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        engine.dispose()
        sep = "&" if "?" in pg else "?"
        return f"{pg}{sep}options=-csearch_path%3D{schema}", schema
    return f"sqlite:///{folder}/ledger.db", None


def _run(a: argparse.Namespace, folder: Path, db: str) -> tuple[list[dict[str, Any]], Any]:
    """Start ``offcash serve``, run the clients, return their results and the audit."""
    net = folder / "net"
    env = {**os.environ, "OFFCASH_NETWORK": str(net), "OFFCASH_TOKEN": TOKEN}
    subprocess.run(
        [sys.executable, "-m", "offcash", "network", "init", str(net), "--db", db],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    port = _port()
    url = f"http://127.0.0.1:{port}"
    log = (folder / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "offcash", "serve", "--port", str(port), "--db", db],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/openapi.json", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit(f"server did not start: see {folder / 'server.log'}")
            time.sleep(0.1)
        op = Client(url, TOKEN)
        now = int(time.time())
        for bank in ("Bank A", "Bank B"):
            op.issue(bank, 100_000_000, now)
        root = op.trust_material(None, now).root
        with mp.get_context("spawn").Pool(a.clients) as pool:
            results = pool.starmap(
                _client, [(url, root, a.seconds, a.batch, i) for i in range(a.clients)]
            )
        audit = op.audit()
        op.close()
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    return results, audit


def _report(
    a: argparse.Namespace,
    folder: Path,
    db: str,
    schema: str | None,
    results: list[dict[str, Any]],
    audit: Any,
) -> int:
    errors = [r["error"] for r in results if not r["ok"]]
    for e in errors:
        print(e, file=sys.stderr)
    good = [r for r in results if r["ok"]]
    payments = sum(r["payments"] for r in good)
    syncs = sum(r["syncs"] for r in good)
    lat = sorted(x for r in good for x in r["latencies"])
    elapsed = max((r["window"] for r in good), default=1.0)

    ledger = LedgerService.open(a.pg or db, schema=schema)
    with ledger.engine.connect() as conn:
        rows = conn.execute(sa.select(sa.func.count()).select_from(s.spends)).scalar_one()
        distinct = conn.execute(
            sa.select(sa.func.count()).select_from(
                sa.select(s.spends.c.payer, s.spends.c.counter).distinct().subquery()
            )
        ).scalar_one()
        conflicts = conn.execute(sa.select(sa.func.count()).select_from(s.conflicts)).scalar_one()
    anomalies = ledger.anomalies()
    ledger.engine.dispose()
    floats = {b: sum(r["balances"][b] for r in good) for b in ("Bank A", "Bank B")}
    checks = {
        "no client errors": not errors,
        "each payment settled exactly once": rows == distinct == payments,
        "no conflicts or anomalies": conflicts == 0 and not anomalies,
        "books balance, suspense empty": audit.balanced and audit.suspense == 0,
        "float == SE balances": all(audit.banks[b].float == floats[b] for b in floats),
    }
    if a.pg:
        engine = sa.create_engine(normalize_url(a.pg))
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()
    shutil.rmtree(folder, ignore_errors=True)

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    fig = {
        "backend": "postgresql" if a.pg else "sqlite",
        "clients": a.clients,
        "seconds": round(elapsed, 1),
        "payments_settled": payments,
        "syncs": syncs,
        "payments_per_s": round(payments / elapsed, 1),
        "syncs_per_s": round(syncs / elapsed, 1),
        "sync_latency_ms": {q: round(_pct(lat, q) * 1000, 1) for q in (50, 95, 99)} if lat else {},
        "machine": f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "checks": checks,
    }
    print(
        f"offcash load: {fig['backend']}, {a.clients} clients for {fig['seconds']} s on "
        f"127.0.0.1 ({fig['machine']})"
    )
    print(
        f"  payments settled {payments} in {syncs} syncs: {fig['payments_per_s']} payments/s, "
        f"{fig['syncs_per_s']} syncs/s"
    )
    if lat:
        ms = fig["sync_latency_ms"]
        print(f"  sync latency p50 {ms[50]} ms, p95 {ms[95]} ms, p99 {ms[99]} ms")
    for name, ok in checks.items():
        print(f"  {'ok  ' if ok else 'FAIL'} {name}")
    if a.json:
        print(json.dumps(fig))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
