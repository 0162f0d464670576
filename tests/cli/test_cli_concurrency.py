"""Several real ``offcash`` processes on one network folder at once (issue 9, finding 6).

Every test starts OS processes (``python -m offcash.cli``) together and checks the outcome
against what the test itself counts: distinct counters, exact balances, no registry entry lost,
and a sync that settles everything with no anomaly (a reused counter or a forgotten payment
would be a double spend or a log that does not reconcile).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from offcash.cli.config import Network
from offcash.protocol import messages as m
from offcash.transports import files

from cli_harness import offline_network, run

ROOT = Path(__file__).resolve().parents[2]
PAYERS = 6


def _env(network: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["OFFCASH_NETWORK"] = str(network)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _start(network: Path, *args: str | Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "offcash.cli", *map(str, args)],
        env=_env(network),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _all(procs: list[subprocess.Popen[bytes]]) -> list[tuple[int, str, str]]:
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=240)
        out.append((p.returncode, stdout.decode(), stderr.decode()))
    return out


def _json(network: Path, *args: str) -> Any:
    r = run("--network", network, *args, "--json")
    assert r.code == 0, r.stderr
    return r.json()


def test_parallel_payments_from_one_wallet_use_distinct_counters(tmp_path: Path) -> None:
    net = offline_network(tmp_path / "net", {"alice": 10_000, "bob": 0})
    root = net.root
    outs = [tmp_path / f"p{i}.cbor" for i in range(PAYERS)]
    procs = [
        _start(
            root,
            "wallet",
            "pay",
            "alice",
            "--to",
            "bob",
            "--amount",
            "1.00",
            "--out",
            out,
            "--no-encrypt",
        )  # in the clear: the test reads the counters
        for out in outs
    ]
    results = _all(procs)
    assert all(code == 0 for code, _, _ in results), results
    payments = [m.parse_payment(files.read_message(str(out))) for out in outs]
    assert sorted(p.counter for p in payments) == list(range(1, PAYERS + 1))
    alice = _json(root, "wallet", "show", "alice")
    assert alice["balance"] == (100 - PAYERS) * 100  # minor units
    assert alice["counter"] == PAYERS and alice["log_entries"] == PAYERS + 1  # + the load
    # bob accepts every one of them (none is a replay of another)
    procs = [_start(root, "wallet", "receive", "bob", out) for out in outs]
    assert all(code == 0 for code, _, _ in _all(procs))
    assert _json(root, "wallet", "show", "bob")["balance"] == PAYERS * 100


def test_pipeline_request_pay_receive(tmp_path: Path) -> None:
    net = offline_network(tmp_path / "net", {"alice": 10_000, "bob": 0})
    env = _env(net.root)
    cli = f"{sys.executable} -m offcash.cli"
    line = (
        f"{cli} wallet request bob 1.00 --out - "
        f"| {cli} wallet pay alice --request - --out - "
        f"| {cli} wallet receive bob - --json"
    )
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", line],
        check=False,
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()
    got = json.loads(done.stdout)
    assert got["amount"] == 100 and got["payer"] == "alice" and not got["duplicate"]
    assert _json(net.root, "wallet", "show", "bob")["balance"] == 100
    assert _json(net.root, "wallet", "show", "alice")["balance"] == 9900


@pytest.fixture
def online(tmp_path: Path) -> Path:
    """A network with a ledger: accounts alice (500.00) and bob, wallets alice-phone (100.00)
    and bob-phone."""
    root = tmp_path / "pilot"
    assert run("network", "init", root, "--currency", "EUR", "--banks", "Bank A").code == 0
    n = ["--network", root]
    for name in ("alice", "bob"):
        assert run(*n, "account", "open", name, "--bank", "Bank A", "--deposit", "500").code == 0
        r = run(*n, "wallet", "create", f"{name}-phone", "--bank", "Bank A", "--owner", name)
        assert r.code == 0, r.stderr
    assert run(*n, "wallet", "fund", "alice-phone", "100").code == 0
    return root


def _settles_cleanly(root: Path) -> None:
    synced = _json(root, "wallet", "sync", "alice-phone")
    assert "anomalies" not in synced["settlement"], synced
    audit = _json(root, "ledger", "audit")
    assert audit["balanced"] and audit["anomalies"] == [] and audit["revoked"] == [], audit


def test_fund_racing_payments_forgets_nothing(online: Path, tmp_path: Path) -> None:
    outs = [tmp_path / f"p{i}.cbor" for i in range(4)]
    procs = [_start(online, "wallet", "fund", "alice-phone", "10.00")]
    procs += [
        _start(
            online,
            "wallet",
            "pay",
            "alice-phone",
            "--to",
            "bob-phone",
            "--amount",
            "1.00",
            "--out",
            out,
            "--no-encrypt",  # in the clear: the test reads the counters
        )
        for out in outs
    ]
    procs.append(_start(online, "wallet", "fund", "alice-phone", "5.00"))
    results = _all(procs)
    assert all(code == 0 for code, _, _ in results), results
    counters = sorted(m.parse_payment(files.read_message(str(o))).counter for o in outs)
    assert len(set(counters)) == len(outs)
    assert _json(online, "wallet", "show", "alice-phone")["balance"] == 11100  # 100+15-4
    assert _json(online, "account", "show", "alice")["balance"] == 38500  # 400-15
    _settles_cleanly(online)


def test_two_unloads_at_once(online: Path) -> None:
    procs = [_start(online, "wallet", "unload", "alice-phone", "30.00") for _ in range(2)]
    results = _all(procs)
    assert [code for code, _, _ in results] == [0, 0], results
    assert _json(online, "wallet", "show", "alice-phone")["balance"] == 4000
    assert _json(online, "account", "show", "alice")["balance"] == 46000
    # a third one asks more than is left: refused, nothing moves
    r = run("--network", online, "wallet", "unload", "alice-phone", "50.00")
    assert r.code != 0
    assert _json(online, "wallet", "show", "alice-phone")["balance"] == 4000
    _settles_cleanly(online)


def test_parallel_account_open_and_wallet_create_lose_nothing(online: Path) -> None:
    names = [f"user{i}" for i in range(PAYERS)]
    procs = [
        _start(online, "account", "open", name, "--bank", "Bank A", "--deposit", "1")
        for name in names
    ]
    # a duplicate, with the same deposit: whichever of the two opens wins, user0 holds 1.00
    procs.append(_start(online, "account", "open", "user0", "--bank", "Bank A", "--deposit", "1"))
    results = _all(procs)
    assert sorted(code for code, _, _ in results) == [0] * PAYERS + [1], results
    procs = [
        _start(online, "wallet", "create", f"{name}-phone", "--bank", "Bank A", "--owner", name)
        for name in names
    ]
    results = _all(procs)
    assert all(code == 0 for code, _, _ in results), results
    net = Network.open(online)
    assert set(names) <= set(net.accounts)
    assert {f"{n}-phone" for n in names} <= set(net.wallets)
    assert len({w.wallet_id for w in net.wallets.values()}) == len(net.wallets)
    for name in names:
        assert _json(online, "account", "show", name)["balance"] == 100


def test_a_terminal_receiving_in_parallel_holds_every_payment(online: Path, tmp_path: Path) -> None:
    n = ["--network", online]
    r = run(*n, "terminal", "create", "till", "--owner", "bob", "--json")
    assert r.code == 0, r.stderr
    till_id = r.json()["wallet_id"]  # type: ignore[index]
    outs = [tmp_path / f"p{i}.cbor" for i in range(4)]
    for out in outs:
        pay = run(
            *n, "wallet", "pay", "alice-phone", "--to", till_id, "--amount", "1", "--out", out
        )
        assert pay.code == 0, pay.stderr
    procs = [_start(online, "terminal", "receive", "till", out) for out in outs]
    procs.append(_start(online, "terminal", "request", "till", "3.00", "--out", tmp_path / "r"))
    results = _all(procs)
    assert all(code == 0 for code, _, _ in results), results
    assert _json(online, "terminal", "show", "till")["held_payments"] == len(outs)
    redeemed = _json(online, "terminal", "redeem", "till")
    assert redeemed["settled"] == len(outs) and redeemed["amount"] == 400
