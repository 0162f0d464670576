"""``offcash serve`` as a real process on a loopback port, and the online commands over HTTP.

The server is started as a subprocess (``python -m offcash serve``) on a free 127.0.0.1
port, waited for by polling ``/openapi.json`` a bounded number of times, and terminated at the
end. The CLI runs in process with ``--server URL``, so every settlement call crosses real HTTP
through ``offcash.api.client.Client``.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from offcash.cli.config import Network, WalletEntry

from cli_harness import run

READY_TRIES = 150  # x 0.1 s: bounded wait for the server to listen
START_ATTEMPTS = 3  # a free port can be taken between choosing it and binding it


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(network: Path, log: Path, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``offcash serve`` on a free loopback port; return it once it answers."""
    for _ in range(START_ATTEMPTS):
        port = _free_port()
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "offcash",
                    "--network",
                    str(network),
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    *extra,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}"
        for _ in range(READY_TRIES):
            if proc.poll() is not None:
                break  # exited (e.g. the port was taken): try another port
            try:
                if httpx.get(f"{url}/openapi.json", timeout=2).status_code == 200:
                    return proc, url
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        stop(proc)
    raise AssertionError(f"offcash serve did not start: {log.read_text()[-2000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate the server (kill it if it does not stop)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[list[str], str]]:
    """A new network (claim window 0) and ``offcash serve`` on its ledger."""
    d = tmp_path / "pilot"
    r = run("network", "init", d, "--banks", "Bank A,Bank B", "--claim-window", "0")
    assert r.code == 0, r.stderr
    proc, url = start_server(d, tmp_path / "serve.log")
    try:
        yield ["--network", str(d)], url
    finally:
        stop(proc)


def _copy_wallet(root: Path, name: str, copy: str) -> None:
    """Mallory's trick: a real copy of a wallet's secure-element file, registered as ``copy``."""
    net = Network.open(root)
    shutil.copyfile(net.se_path(name), net.se_path(copy))
    e = net.wallet(name)
    net.wallets[copy] = WalletEntry(copy, e.wallet_id, e.bank, e.owner)
    net.save_registry()


def test_full_story_over_http(served: tuple[list[str], str], tmp_path: Path) -> None:
    n, url = served
    s = ["--server", url]
    _open_fund_pay_sync(n, s, tmp_path)
    _double_spend_caught(n, s, tmp_path)

    # Lost device, refunded after the (zero) claim window, over HTTP.
    assert run(*n, "wallet", "report-lost", "carol-phone", *s).code == 0
    r = run(*n, "wallet", "refund-lost", "carol-phone", *s, "--json")
    assert r.code == 0, r.stderr
    assert r.json()["refunded"] == 2500 and r.json()["owner"] == "carol"  # type: ignore[index]
    r = run(*n, "ledger", "release-torn", *s, "--json")
    assert r.code == 0 and r.json()["released"] == 0, r.stderr  # type: ignore[index]

    r = run(*n, "ledger", "audit", *s, "--json")
    assert r.code == 0, r.stderr
    audit = r.json()
    assert isinstance(audit, dict) and audit["balanced"]
    (ds,) = audit["double_spends"]
    assert ds["payer"] == "alice-copy"  # one wallet id, two names: the same one everywhere
    assert sorted(ds["payees"]) == ["bob-phone", "carol-phone"] and len(ds["evidence"]) == 2
    assert audit["revoked"] == ["alice-copy (revoked)", "carol-phone (refunded)"]
    # Same result in process, on the same database, as over HTTP.
    r = run(*n, "ledger", "audit", "--json")
    assert r.code == 0 and r.json() == audit
    r = run(*n, "ledger", "audit", *s)
    assert r.code == 0 and "Balanced" in r.stdout and "alice-copy" in r.stdout


def _open_fund_pay_sync(n: list[str], s: list[str], tmp_path: Path) -> None:
    for name, bank in (("alice", "Bank A"), ("bob", "Bank B"), ("carol", "Bank B")):
        r = run(*n, "account", "open", name, "--bank", bank, "--deposit", "500", *s, "--json")
        assert r.code == 0 and r.json()["balance"] == 50000, r.stderr  # type: ignore[index]
        r = run(*n, "wallet", "create", f"{name}-phone", "--bank", bank, "--owner", name, *s)
        assert r.code == 0, r.stderr
    r = run(*n, "wallet", "fund", "alice-phone", "100", *s, "--json")
    assert r.code == 0 and r.json()["balance"] == 10000, r.stderr  # type: ignore[index]
    r = run(*n, "account", "show", "alice", *s, "--json")
    assert r.code == 0 and r.json()["balance"] == 40000  # type: ignore[index]
    # One representation of money in JSON: the CLI's is the API's (minor units and currency);
    # people read the decimal.
    cli = r.json()
    assert isinstance(cli, dict)
    token = Network.open(Path(n[1])).operator_token
    api = httpx.get(
        f"{s[1]}/v1/accounts/{cli['account_id']}", headers={"Authorization": f"Bearer {token}"}
    ).json()
    assert api == {"balance": 40000, "currency": "EUR"} == {k: cli[k] for k in api}
    assert "400.00 EUR" in run(*n, "account", "show", "alice", *s).stdout

    # Offline: a request answered by QR, then a one-way payment; no server involved.
    req, pay, pay2 = tmp_path / "req.png", tmp_path / "pay.png", tmp_path / "pay2.txt"
    assert run(*n, "wallet", "request", "bob-phone", "12.50", "--out", req).code == 0
    assert run(*n, "wallet", "pay", "alice-phone", "--request", req, "--out", pay).code == 0
    assert run(*n, "wallet", "receive", "bob-phone", pay).code == 0
    assert (
        run(
            *n,
            "wallet",
            "pay",
            "alice-phone",
            "--to",
            "carol-phone",
            "--amount",
            "5",
            "--out",
            pay2,
        ).code
        == 0
    )
    assert run(*n, "wallet", "receive", "carol-phone", pay2).code == 0

    # Both sides sync over HTTP.
    for name, balance in (
        ("alice-phone", 8250),
        ("bob-phone", 1250),
        ("carol-phone", 500),
    ):
        r = run(*n, "wallet", "sync", name, *s, "--json")
        assert r.code == 0, r.stderr
        got = r.json()
        assert isinstance(got, dict)
        assert got["balance"] == balance and got["log_entries"] == 0
        assert got["uploaded_entries"] >= 1 and got["settlement"]["settled"] >= 1
    r = run(*n, "wallet", "unload", "bob-phone", "2.50", *s, "--json")
    assert r.code == 0 and r.json()["balance"] == 1000, r.stderr  # type: ignore[index]
    r = run(*n, "account", "show", "bob", *s)
    assert r.code == 0 and "502.50 EUR" in r.stdout


def _double_spend_caught(n: list[str], s: list[str], tmp_path: Path) -> None:
    """A cloned secure element spends the same money twice; settlement over HTTP catches it."""
    _copy_wallet(Path(n[1]), "alice-phone", "alice-copy")
    for who, to, amount in (
        ("alice-phone", "bob-phone", "30"),
        ("alice-copy", "carol-phone", "20"),
    ):
        out = tmp_path / f"{who}.bin"
        assert run(*n, "wallet", "pay", who, "--to", to, "--amount", amount, "--out", out).code == 0
        assert run(*n, "wallet", "receive", to, out).code == 0
    for name in ("bob-phone", "carol-phone"):
        assert run(*n, "wallet", "sync", name, *s).code == 0
    r = run(*n, "wallet", "sync", "alice-phone", *s)
    assert r.code == 1 and r.stderr.count("\n") == 1, r.stderr
    assert "wallet alice-copy is revoked" in r.stderr  # named (the copy shares the id)


def test_http_refusals_are_one_line(
    served: tuple[list[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    n, url = served
    cases = [
        (["account", "show", "nobody", "--server", url], "no account named"),
        (["account", "open", "zed", "--bank", "Bank A", "--server", url + "/nowhere"], "not-found"),
        (
            ["ledger", "audit", "--server", "http://127.0.0.1:9"],
            "settlement server http://127.0.0.1:9: cannot connect (connection refused): is "
            "`offcash serve` running there?",
        ),
        (["ledger", "audit", "--server", "ftp://example"], "http://"),
    ]
    for args, needle in cases:
        r = run(*n, *args)
        assert r.code == 1 and needle in r.stderr, (args, r.stderr)
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    monkeypatch.setenv("OFFCASH_TOKEN", "not-the-token")
    r = run(*n, "ledger", "audit", "--server", url)
    assert r.code == 1 and "unauthorized" in r.stderr
    # OFFCASH_SERVER stands for --server.
    monkeypatch.delenv("OFFCASH_TOKEN")
    monkeypatch.setenv("OFFCASH_SERVER", url)
    assert run(*n, "ledger", "audit").code == 0


def test_serve_refusals(tmp_path: Path) -> None:
    assert run("serve").code == 1  # no network
    d = tmp_path / "pilot"
    assert run("network", "init", d).code == 0
    n = ["--network", str(d)]
    assert run(*n, "serve", "--port", "70000").code == 2
    r = run(*n, "serve", "--db", "nosuchdb://x")  # not a database offcash can use: usage
    assert r.code == 2 and "SQLite" in r.stderr and "PostgreSQL" in r.stderr, r.stderr
    r = run(*n, "serve", "--db", f"sqlite:///{tmp_path}/no/such/dir/x.db")
    assert r.code == 1 and "cannot open the ledger database" in r.stderr, r.stderr
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        r = run(*n, "serve", "--port", port)
    assert r.code == 1 and "cannot listen on 127.0.0.1:" in r.stderr, r.stderr
    assert r.stderr.splitlines()[-1].startswith("offcash: ")
