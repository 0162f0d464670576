"""The settlement service as deployed: ``python -m offcash.api`` in a real child process (uvicorn
on a loopback port), on both backends. Huge bodies are refused without the server's memory
growing (its RSS read from /proc), monitoring answers without a credential, and metrics add up
across processes in prometheus-client's multiprocess mode."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from server_process import ServerProcess, pg_url_with_schema

from offcash.api import limits
from offcash.api.client import Client
from offcash.ledger import LedgerService
from offcash.ledger.db import normalize_url

from harness import PilotNetwork

TOKEN = "server-token"
HUGE = 50_000_000
CUT = sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :r")
pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")


def rss(pid: int) -> int:
    """The resident memory of process ``pid``, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
def server_db(db_target: tuple[str, str | None], p256: PilotNetwork) -> str:
    """The URL a server process opens: an installed ledger on the requested backend."""
    url, schema = db_target
    ledger = LedgerService.open(url, schema=schema)
    ledger.install(p256.params, p256.central_bank, p256.banks)
    ledger.engine.dispose()
    return url if schema is None else pg_url_with_schema(url, schema)


def started(db: str, log: Path, env: dict[str, str] | None = None) -> ServerProcess:
    server = ServerProcess.api(db, TOKEN, log)
    server.env.update(env or {})
    server.start()
    return server


@pytest.fixture
def server(server_db: str, tmp_path: Path) -> Iterator[ServerProcess]:
    s = started(server_db, tmp_path / "server.log")
    yield s
    s.stop()


def raw_request(port: int, head: bytes, body_chunks: Iterator[bytes]) -> tuple[bytes, int]:
    """Send ``head`` then the chunks while reading the answer; (answer, body bytes sent)."""
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        answer = bytearray()

        def read() -> None:
            try:
                while chunk := sock.recv(65536):
                    answer.extend(chunk)
            except OSError:
                pass

        reader = threading.Thread(target=read)
        reader.start()
        sock.sendall(head)
        try:
            for chunk in body_chunks:
                sock.sendall(chunk)
                sent += len(chunk)
        except OSError:  # the server answered and closed: nothing more is read
            pass
        reader.join(30)
        return bytes(answer), sent


def test_huge_bodies_are_refused_without_the_server_growing(server: ServerProcess) -> None:
    assert server.proc is not None
    pid = server.proc.pid
    httpx.get(server.url + "/healthz")
    before = rss(pid)
    # 1. A declared 50 MB sync upload: refused before one byte of it is read.
    head = (
        f"POST /v1/sync HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {HUGE}\r\n\r\n"
    ).encode()
    answer, _ = raw_request(server.port, head, iter(()))
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"application/problem+json" in answer and b"body-too-large" in answer
    # 2. A 50 MB body streamed without a length: refused once past the route's limit (64 KiB).
    chunked = (
        b"POST /v1/unload HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    piece = b"A" * 65536
    frames = [f"{len(piece):x}\r\n".encode() + piece + b"\r\n"] * (HUGE // len(piece))
    answer, sent = raw_request(server.port, chunked, iter(frames))
    assert answer.startswith(b"HTTP/1.1 413"), (answer[:200], sent)
    time.sleep(0.2)
    assert rss(pid) - before < 8_000_000  # neither body was held (it grew 1.1 GB before)
    # 3. The same to the sync route: refused once past its own, largest limit (a server that
    # read it all would answer 400 or 422 about its content, not 413).
    sync = chunked.replace(b"/v1/unload", b"/v1/sync")
    answer, sent = raw_request(server.port, sync, iter(frames))
    assert answer.startswith(b"HTTP/1.1 413"), (answer[:200], sent)
    assert sent + len(frames[0]) * 64 > limits.SYNC_BODY_BYTES  # its own limit, not 64 KiB
    assert rss(pid) - before < 3 * limits.SYNC_BODY_BYTES
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}


def test_monitoring_over_http_needs_no_credential(server: ServerProcess) -> None:
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(server.url + "/readyz").json() == {"status": "ready"}
    r = httpx.get(server.url + "/v1/audit")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    r = httpx.get(server.url + "/v1/audit", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200
    text = httpx.get(server.url + "/metrics").text
    assert "offcash_ledger_up 1.0" in text
    assert 'route="/v1/audit",status="401"' in text
    big = httpx.post(server.url + "/v1/unload", content=b"A" * (limits.DEFAULT_BODY_BYTES + 1))
    assert big.status_code == 413 and big.json()["code"] == "body-too-large"
    text = httpx.get(server.url + "/metrics").text
    assert 'route="/v1/unload",status="413"' in text
    docs = httpx.get(server.url + "/docs").text
    assert "/docs/assets/swagger-ui-bundle.js" in docs and "cdn" not in docs
    assert httpx.get(server.url + "/docs/assets/swagger-ui-bundle.js").status_code == 200


def _count(text: str, name: str, **labels: str) -> float:
    return sum(
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def test_metrics_add_up_across_processes(server_db: str, tmp_path: Path) -> None:
    """Two service processes sharing a PROMETHEUS_MULTIPROC_DIR: either one's /metrics counts
    the requests both answered."""
    shared = tmp_path / "prometheus"
    shared.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(shared)}
    a = started(server_db, tmp_path / "a.log", env)
    try:
        b = started(server_db, tmp_path / "b.log", env)
        try:
            body = {"report": "!!", "entries": [], "csr": ""}
            for s, n in ((a, 3), (b, 4)):
                for _ in range(n):
                    assert httpx.post(s.url + "/v1/sync", json=body).status_code == 400
            for s in (a, b):
                text = httpx.get(s.url + "/metrics").text
                assert _count(text, "offcash_syncs_total", outcome="decode-error") == 7
                assert (
                    _count(text, "offcash_http_request_duration_seconds_count", route="/v1/sync")
                    == 7
                )
                assert "offcash_ledger_up 1.0" in text
        finally:
            b.stop()
    finally:
        a.stop()


def test_several_workers_serve_syncs_on_one_database(
    server_db: str, p256: PilotNetwork, tmp_path: Path
) -> None:
    """``--workers 2``: two worker processes under uvicorn's supervisor, and wallets enrolled,
    funded, paid and synced over HTTP through them settle each payment once."""
    server = ServerProcess.api(server_db, TOKEN, tmp_path / "server.log")
    server.argv += ["--workers", "2"]
    server.start(timeout=300)
    try:
        assert server.proc is not None
        children = [
            Path(f"/proc/{c}/cmdline").read_text()
            for task in Path(f"/proc/{server.proc.pid}/task").iterdir()
            for c in (task / "children").read_text().split()
        ]
        # the two workers (beside multiprocessing's resource tracker, if it started one)
        assert sum("spawn_main" in c and "resource_tracker" not in c for c in children) == 2
        with Client(server.url, TOKEN) as c:
            now = int(time.time())
            c.issue("Bank A", 1_000_000, now)
            ses = []
            for _ in range(2):
                acct = c.open_account("Bank A", "holder")
                c.distribute(acct, 10_000, now)
                se = p256.new_se()
                e = c.enroll(se.csr(), acct, now)
                se.enroll(e.certificate, e.bank_certificates, e.crls, now)
                se.load(c.fund(e.wallet_id, 5_000, now), now)
                ses.append(se)
            payee = ses[1].status(now).wallet_id
            assert payee is not None
            for k in range(3):
                ses[1].receive(ses[0].pay_to(payee, 100 + k, now), now)
            for _ in range(3):
                for se in ses:
                    up = se.sync_upload(now)
                    res = c.sync(up.report, up.entries, se.csr(), now)
                    assert res.ack is not None and res.certificate is not None
                    se.apply_sync(res.ack, res.certificate, res.bank_certificates, res.crls, now)
            audit = c.audit()
        assert audit.balanced and audit.suspense == 0
        assert audit.banks["Bank A"].float == sum(se.status(now).balance for se in ses) == 10_000
    finally:
        server.stop()


def test_readiness_follows_the_database(
    db_target: tuple[str, str | None], p256: PilotNetwork, tmp_path: Path
) -> None:
    """A real server on PostgreSQL through its own role: while the role may not log in (and its
    sessions are cut) ``/readyz`` is a 503 problem and ``/healthz`` still 200; then ready again."""
    url, schema = db_target
    if schema is None:
        pytest.skip("PostgreSQL only: a SQLite file is reachable while the process runs")
    role = f"r_{schema}"
    admin = sa.create_engine(normalize_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE ROLE "{role}" LOGIN SUPERUSER'))
    try:
        ledger = LedgerService.open(url, schema=schema)
        ledger.install(p256.params, p256.central_bank, p256.banks)
        ledger.engine.dispose()
        own = url.replace("postgres@", f"{role}@", 1)
        server = started(pg_url_with_schema(own, schema), tmp_path / "server.log")
        try:
            assert httpx.get(server.url + "/readyz").json() == {"status": "ready"}
            with admin.connect() as c:
                c.execute(sa.text(f'ALTER ROLE "{role}" NOLOGIN'))
                c.execute(CUT, {"r": role})  # its open sessions end
            r = httpx.get(server.url + "/readyz", timeout=30)
            assert r.status_code == 503 and r.json()["code"] == "not-ready", r.text
            assert r.headers["content-type"].startswith("application/problem+json")
            assert httpx.get(server.url + "/healthz").status_code == 200
            assert "offcash_ledger_up 0.0" in httpx.get(server.url + "/metrics").text
            with admin.connect() as c:
                c.execute(sa.text(f'ALTER ROLE "{role}" LOGIN'))
            assert httpx.get(server.url + "/readyz").json() == {"status": "ready"}
        finally:
            server.stop()
    finally:
        with admin.connect() as c:
            c.execute(CUT, {"r": role})
            c.execute(sa.text(f'DROP OWNED BY "{role}"'))
            c.execute(sa.text(f'DROP ROLE "{role}"'))
        admin.dispose()
