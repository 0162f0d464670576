"""Load benchmark: many concurrent clients syncing against ``offcash serve`` on loopback
(prints figures; not a test).

``offcash network init`` makes a network (SQLite in its folder, or a fresh PostgreSQL schema
with ``--pg URL``) and ``offcash serve --workers N`` serves it on 127.0.0.1.

Before the timed part: each of ``--clients`` clients gets ``--pairs`` pairs of wallets, enrolled
and funded over HTTP (one wallet at each bank); in each pair one wallet pays the other
``--batch`` payments offline, the payee accepts them, and both SEs sign their sync upload. All
of that signing happens here, in a pool of processes, so that the timed part measures the
service and not the clients' signing on the same cores.

The ceiling: raw P-256 verifications per second with ``cryptography`` alone (one
``ECDSA(SHA256())`` object, no wrappers), one process per core, measured just before and just
after the timed part; a payment costs the server about ``VERIFICATIONS_PER_PAYMENT`` of them
(its two payment verifications plus its share of two syncs' report, CSR, certificate and
acknowledgement), so the ceiling in payments/s is that rate divided by it.

The timed part: ``--clients`` threads, one keep-alive connection each, POST their pairs' uploads
to /v1/sync (payer then payee) for ``--seconds`` (a pair begun is finished). The window ends at
``--seconds`` or when the first client runs out of prepared pairs, whichever is first; rates
count what completed inside it. Afterwards every answer is applied to its SE (which verifies the
acknowledgement and the renewed certificate), and the run checks, from the database, that each
payment of a sent pair is in ``spends`` exactly once, that there is no conflict or anomaly, that
the books balance with empty suspense, and that each bank's float equals the sum of its wallets'
SE balances (an unsent pair's wallets count with what the ledger funded them). Any client error
fails the run.

    python benchmarks/load.py --clients 32 --seconds 20
    python benchmarks/load.py --clients 32 --seconds 20 --pg postgresql://postgres@127.0.0.1/test
    python benchmarks/load.py --clients 32 --seconds 20 --workers 1   # per-process scaling
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
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
import threading
import time
import traceback
import uuid
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from offcash.api import wire
from offcash.api.client import Client
from offcash.crypto.algorithms import SignatureAlgorithm
from offcash.domain.network import NetworkParams
from offcash.ledger import LedgerService
from offcash.ledger import schema as s
from offcash.ledger.db import normalize_url
from offcash.se.software import SoftwareSecureElement

TOKEN = "load-benchmark-token"
BANKS = ("Bank A", "Bank B")
FUNDS = 10_000
#: What one payment costs the server in P-256 verifications (issue 11: its two payment
#: verifications plus its share of two syncs' report, CSR, certificate and acknowledgement).
VERIFICATIONS_PER_PAYMENT = 3.1


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the ceiling: raw cryptography --------------------------------------------------------


def _verify_loop(seconds: float) -> tuple[int, float]:
    key = ec.generate_private_key(ec.SECP256R1())
    algo = ec.ECDSA(hashes.SHA256())
    msg = os.urandom(200)
    sig = key.sign(msg, algo)
    pub = key.public_key()
    n, t0 = 0, time.perf_counter()
    end = t0 + seconds
    while True:
        for _ in range(100):
            pub.verify(sig, msg, algo)
        n += 100
        if time.perf_counter() >= end:
            return n, time.perf_counter() - t0


def ceiling(seconds: float = 2.0) -> float:
    """Raw P-256 verifications per second on all cores (one process per core)."""
    cores = os.cpu_count() or 1
    with mp.get_context("spawn").Pool(cores) as pool:
        pool.map(_verify_loop, [0.05] * cores)  # started and warm
        runs = pool.map(_verify_loop, [seconds] * cores)
    return sum(n / t for n, t in runs)


# --- preparation (untimed) ----------------------------------------------------------------


def _prepare(url: str, root: bytes, pairs: int, batch: int, seed: int) -> list[dict[str, Any]]:
    """``pairs`` pairs of enrolled, funded wallets, each pair with ``batch`` offline payments
    made and both sync uploads signed (as JSON bodies of /v1/sync)."""
    c = Client(url, TOKEN, timeout=120)
    params = NetworkParams("EUR", SignatureAlgorithm.P256)
    now = int(time.time())
    accounts = {}
    for bank in BANKS:
        accounts[bank] = c.open_account(bank, f"prep-{seed}")
        c.distribute(accounts[bank], FUNDS * pairs, now)
    out = []
    for p in range(pairs):
        banks = BANKS if (seed + p) % 2 == 0 else BANKS[::-1]
        ses = []
        for bank in banks:
            se = SoftwareSecureElement(SoftwareSecureElement.new_state(params, root))
            e = c.enroll(se.csr(), accounts[bank], now)
            se.enroll(e.certificate, e.bank_certificates, e.crls, now)
            se.load(c.fund(e.wallet_id, FUNDS, now), now)
            ses.append(se)
        payer, payee = ses
        payee_id = payee.status(now).wallet_id
        assert payee_id is not None
        for k in range(batch):
            payee.receive(payer.pay_to(payee_id, 10 + (k + p) % 50, now), now)
        bodies = []
        for se in ses:
            up = se.sync_upload(now)
            body = {
                "report": wire.b64(up.report),
                "entries": [wire.b64(x.encode()) for x in up.entries],
                "csr": wire.b64(se.csr()),
            }
            bodies.append(json.dumps(body).encode())
        out.append(
            {
                "banks": banks,
                "states": [se._s.encode() for se in ses],
                "bodies": bodies,
                "payments": batch,
            }
        )
    c.close()
    return out


# --- the timed part -----------------------------------------------------------------------


def _client(
    port: int, pairs: list[dict[str, Any]], start: float, end: float, out: dict[str, Any]
) -> None:
    """One client: POST each pair's two uploads until ``end`` (a pair begun is finished)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Content-Type": "application/json"}
    latencies: list[tuple[float, float]] = []  # (completed at, seconds)
    answers: list[list[bytes]] = []
    try:
        while time.monotonic() < start:
            time.sleep(0.001)
        for pair in pairs:
            if time.monotonic() >= end:
                break
            got = []
            for body in pair["bodies"]:
                t0 = time.monotonic()
                conn.request("POST", "/v1/sync", body, headers)
                r = conn.getresponse()
                data = r.read()
                t1 = time.monotonic()
                if r.status != 200:
                    raise AssertionError(f"sync: HTTP {r.status}: {data[:500]!r}")
                latencies.append((t1, t1 - t0))
                got.append(data)
            answers.append(got)
        out.update(
            ok=True, latencies=latencies, answers=answers, ran_out=len(answers) == len(pairs)
        )
        out["finished"] = time.monotonic()
    except Exception:
        out.update(ok=False, error=traceback.format_exc(), answers=answers)
    finally:
        conn.close()


def _apply(pairs: list[dict[str, Any]], answers: list[list[bytes]]) -> list[Any]:
    """Apply each answer to its SE (verifying it); the SE balances by bank, for each pair:
    after its payments if it was sent, else as funded."""
    now = int(time.time())
    out: list[Any] = []
    for i, pair in enumerate(pairs):
        if i >= len(answers):
            out.append({bank: FUNDS for bank in pair["banks"]})
            continue
        balances = {}
        for bank, state, data in zip(pair["banks"], pair["states"], answers[i], strict=True):
            res = wire.parse_sync_result(json.loads(data))
            if res.ack is None or res.certificate is None or res.refused or res.anomalies:
                return [f"sync refused: {res}"]
            se = SoftwareSecureElement(state)
            se.apply_sync(res.ack, res.certificate, res.bank_certificates, res.crls, now)
            balances[bank] = se.status(now).balance
        out.append(balances)
    return out


def _pct(xs: list[float], q: float) -> float:
    return statistics.quantiles(xs, n=100, method="inclusive")[int(q) - 1] if len(xs) > 1 else xs[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=16, help="concurrent connections")
    ap.add_argument("--seconds", type=float, default=30.0, help="the timed window")
    ap.add_argument("--batch", type=int, default=5, help="offline payments between two syncs")
    ap.add_argument("--pg", help="PostgreSQL URL (a fresh schema is made and dropped)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON too")
    ap.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="server processes (serve)"
    )
    ap.add_argument(
        "--pairs",
        type=int,
        default=0,
        help="prepared wallet pairs per client (default: enough for --max-syncs-per-s)",
    )
    ap.add_argument(
        "--max-syncs-per-s",
        type=float,
        default=60.0,
        help="the rate the default --pairs prepares for (the window ends early if exceeded)",
    )
    ap.add_argument(
        "--profile",
        metavar="FILE",
        help="record the server during the timed part with py-spy (collapsed stacks to FILE)",
    )
    a = ap.parse_args()
    if not a.pairs:
        a.pairs = max(2, math.ceil(a.max_syncs_per_s * a.seconds / 2 / a.clients))

    folder = Path(tempfile.mkdtemp(prefix="offcash-load-"))
    db, schema = _database(a.pg, folder)
    try:
        run = _run(a, folder, db)
        return _report(a, db, schema, run)
    finally:
        if a.pg:
            engine = sa.create_engine(normalize_url(a.pg))
            with engine.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            engine.dispose()
        shutil.rmtree(folder, ignore_errors=True)


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


def _prepare_all(a: argparse.Namespace, url: str, root: bytes) -> list[list[dict[str, Any]]]:
    """Every client's prepared pairs, made by one process per core."""
    tasks, per_task = [], max(1, math.ceil(a.pairs / 4))
    for cl in range(a.clients):
        for j in range(0, a.pairs, per_task):
            tasks.append((cl, (url, root, min(per_task, a.pairs - j), a.batch, cl * 7919 + j)))
    with mp.get_context("spawn").Pool(os.cpu_count() or 1) as pool:
        done = pool.starmap(_prepare, [t for _, t in tasks])
    work: list[list[dict[str, Any]]] = [[] for _ in range(a.clients)]
    for (cl, _), pairs in zip(tasks, done, strict=True):
        work[cl].extend(pairs)
    return work


def _timed(
    a: argparse.Namespace, port: int, work: list[list[dict[str, Any]]], pid: int
) -> tuple[list[dict[str, Any]], float, float, float]:
    """The timed part: one thread per client; their results, the window, the server's CPU."""
    start = time.monotonic() + 0.5
    end = start + a.seconds
    outs: list[dict[str, Any]] = [{} for _ in range(a.clients)]
    threads = [
        threading.Thread(target=_client, args=(port, work[i], start, end, outs[i]))
        for i in range(a.clients)
    ]
    for t in threads:
        t.start()
    spy = _profile(a.profile, pid, a.seconds) if a.profile else None
    cpu0 = _cpu_seconds(pid)
    for t in threads:
        t.join()
    server_cpu = _cpu_seconds(pid) - cpu0
    if spy is not None:
        spy.wait()
    return outs, start, end, server_cpu


def _run(a: argparse.Namespace, folder: Path, db: str) -> dict[str, Any]:
    """Start ``offcash serve``, prepare, measure the ceiling, run the clients, audit."""
    net = folder / "net"
    env = {**os.environ, "OFFCASH_NETWORK": str(net), "OFFCASH_TOKEN": TOKEN}
    subprocess.run(
        [sys.executable, "-m", "offcash", "network", "init", str(net), "--db", db],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    port = _port()
    url = f"http://127.0.0.1:{port}"
    log = (folder / "server.log").open("wb")
    cmd = [sys.executable, "-m", "offcash", "serve", "--port", str(port), "--db", db]
    server = subprocess.Popen(
        # --workers only when asked for more than one: the same harness measures a server
        # from before that option existed
        [*cmd, *(["--workers", str(a.workers)] if a.workers > 1 else [])],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 300  # spawning workers is slow on a loaded machine
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
        for bank in BANKS:
            op.issue(bank, 100_000_000_000, now)
        root = op.trust_material(None, now).root
        t0 = time.monotonic()
        work = _prepare_all(a, url, root)
        prepared = time.monotonic() - t0
        cores = os.cpu_count() or 1
        ceiling_before = ceiling()
        outs, start, end, server_cpu = _timed(a, port, work, server.pid)
        ceiling_after = ceiling()
        with mp.get_context("spawn").Pool(cores) as pool:
            applied = pool.starmap(
                _apply, [(work[i], outs[i].get("answers", [])) for i in range(a.clients)]
            )
        audit = op.audit()
        op.close()
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    return {
        "outs": outs,
        "work": work,
        "applied": applied,
        "audit": audit,
        "start": start,
        "end": end,
        "prepared_s": prepared,
        "ceiling": (ceiling_before, ceiling_after),
        "server_cpu_s": server_cpu,
    }


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by process ``pid`` and its descendants."""
    tick = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def _profile(path: str, pid: int, seconds: float) -> subprocess.Popen[bytes]:
    """py-spy sampling the server (and its worker processes) for the timed window."""
    argv = ["py-spy", "record", "-p", str(pid), "--subprocesses", "-r", "250"]
    argv += ["-d", str(max(1, int(seconds))), "--format", "raw", "-o", path]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _report(a: argparse.Namespace, db: str, schema: str | None, run: dict[str, Any]) -> int:
    outs, work, applied, audit = run["outs"], run["work"], run["applied"], run["audit"]
    errors = [o["error"] for o in outs if not o.get("ok")]
    errors += [x[0] for x in applied if x and isinstance(x[0], str)]
    for e in errors:
        print(e, file=sys.stderr)
    # the window: until --seconds, or until the first client ran out of prepared pairs
    window_end = min([run["end"]] + [o["finished"] for o in outs if o.get("ran_out")])
    window = window_end - run["start"]
    lat = sorted(d for o in outs for t, d in o.get("latencies", []) if t <= window_end)
    syncs = len(lat)
    payments = sum(
        p["payments"]
        for o, w in zip(outs, work, strict=True)
        for p, times in zip(w, _pair_times(o), strict=False)
        if times <= window_end
    )
    sent_payments = sum(
        p["payments"]
        for o, w in zip(outs, work, strict=True)
        for p in w[: len(o.get("answers", []))]
    )
    total_syncs = sum(len(o.get("latencies", [])) for o in outs)

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
    floats = dict.fromkeys(BANKS, 0)
    for per_client in applied:
        for balances in per_client:
            if isinstance(balances, dict):
                for bank, v in balances.items():
                    floats[bank] += v
    checks = {
        "no client errors": not errors,
        "each payment settled exactly once": rows == distinct == sent_payments,
        "no conflicts or anomalies": conflicts == 0 and not anomalies,
        "books balance, suspense empty": audit.balanced and audit.suspense == 0,
        "float == SE balances": all(audit.banks[b].float == floats[b] for b in floats),
    }
    verifs = statistics.fmean(run["ceiling"])
    ceiling_pay = verifs / VERIFICATIONS_PER_PAYMENT
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    pps = payments / window
    fig = {
        "backend": "postgresql" if a.pg else "sqlite",
        "clients": a.clients,
        "workers": a.workers,
        "seconds": round(window, 1),
        "payments_settled": payments,
        "syncs": syncs,
        "payments_per_s": round(pps, 1),
        "syncs_per_s": round(syncs / window, 1),
        "sync_latency_ms": {q: round(_pct(lat, q) * 1000, 1) for q in (50, 95, 99)} if lat else {},
        "ceiling_verifications_per_s": round(verifs),
        "ceiling_verifications_per_s_before_after": [round(x) for x in run["ceiling"]],
        "ceiling_payments_per_s": round(ceiling_pay, 1),
        "fraction_of_ceiling": round(pps / ceiling_pay, 4),
        "server_cpu_ms_per_sync": round(1000 * run["server_cpu_s"] / max(1, total_syncs), 2),
        "prepared": {"pairs": sum(len(w) for w in work), "seconds": round(run["prepared_s"], 1)},
        "machine": f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "checks": checks,
    }
    print(
        f"offcash load: {fig['backend']}, {a.clients} clients, {a.workers} server worker(s), "
        f"{fig['seconds']} s window on 127.0.0.1 ({fig['machine']})"
    )
    print(
        f"  prepared {fig['prepared']['pairs']} wallet pairs x {a.batch} payments in "
        f"{fig['prepared']['seconds']} s (untimed); {total_syncs} syncs sent in all"
    )
    print(
        f"  payments settled {payments} in {syncs} syncs: {fig['payments_per_s']} payments/s, "
        f"{fig['syncs_per_s']} syncs/s"
    )
    if lat:
        ms = fig["sync_latency_ms"]
        print(
            f"  sync latency p50 {ms[50]} ms, p95 {ms[95]} ms, p99 {ms[99]} ms "
            f"(p99/p50 {ms[99] / ms[50]:.1f})"
        )
    print(
        f"  ceiling: {fig['ceiling_verifications_per_s']} raw P-256 verifications/s on "
        f"{os.cpu_count()} cores (before/after: {fig['ceiling_verifications_per_s_before_after']})"
        f" / {VERIFICATIONS_PER_PAYMENT} = {fig['ceiling_payments_per_s']} payments/s; "
        f"this run: {100 * pps / ceiling_pay:.1f} % of it"
    )
    print(
        f"  server CPU: {fig['server_cpu_ms_per_sync']} ms per sync (user + system, all "
        f"workers, over the {total_syncs} syncs sent)"
    )
    if window < a.seconds - 0.5:
        print(f"  note: a client ran out of prepared pairs at {window:.1f} s (use --pairs)")
    for name, ok in checks.items():
        print(f"  {'ok  ' if ok else 'FAIL'} {name}")
    if a.json:
        print(json.dumps(fig))
    return 0 if all(checks.values()) else 1


def _pair_times(out: dict[str, Any]) -> list[float]:
    """When each sent pair's second sync completed."""
    lat = out.get("latencies", [])
    return [lat[i + 1][0] for i in range(0, len(lat) - 1, 2)]


if __name__ == "__main__":
    raise SystemExit(main())
