"""Online commands against a real ledger (SQLite in the network folder), and the demo."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from offcash.cli.config import now

from cli_harness import run

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def net(tmp_path: Path) -> list[str]:
    """A network with alice (Bank A, wallet funded 100.00) and bob (Bank B, empty wallet)."""
    d = tmp_path / "pilot"
    r = run("network", "init", d, "--currency", "EUR", "--banks", "Bank A,Bank B")
    assert r.code == 0, r.stderr
    n = ["--network", str(d)]
    for name, bank in (("alice", "Bank A"), ("bob", "Bank B")):
        assert run(*n, "account", "open", name, "--bank", bank, "--deposit", "500").code == 0
        r = run(*n, "wallet", "create", f"{name}-phone", "--bank", bank, "--owner", name)
        assert r.code == 0, r.stderr
    assert run(*n, "wallet", "fund", "alice-phone", "100").code == 0
    return n


def test_accounts_wallets_sync_audit(net: list[str], tmp_path: Path) -> None:
    r = run(*net, "account", "show", "alice", "--json")
    assert r.code == 0 and r.json()["balance"] == 40000  # type: ignore[index]
    w = run(*net, "wallet", "show", "alice-phone", "--json").json()
    assert isinstance(w, dict) and w["balance"] == 10000 and w["bank"] == "Bank A"
    pay = tmp_path / "p.png"
    assert (
        run(
            *net,
            "wallet",
            "pay",
            "alice-phone",
            "--to",
            "bob-phone",
            "--amount",
            "30",
            "--out",
            pay,
        ).code
        == 0
    )
    assert run(*net, "wallet", "receive", "bob-phone", pay).code == 0
    for name in ("alice-phone", "bob-phone"):
        r = run(*net, "wallet", "sync", name, "--json")
        assert r.code == 0, r.stderr
        assert r.json()["log_entries"] == 0  # type: ignore[index]
    r = run(*net, "wallet", "unload", "bob-phone", "10", "--json")
    assert r.code == 0 and r.json()["balance"] == 2000, r.stderr  # type: ignore[index]
    assert run(*net, "account", "show", "bob", "--json").json()["balance"] == 51000  # type: ignore[index]
    r = run(*net, "ledger", "audit", "--json")
    assert r.code == 0, r.stderr
    audit = r.json()
    assert isinstance(audit, dict) and audit["balanced"] and audit["double_spends"] == []
    assert run(*net, "ledger", "audit").code == 0


def test_refusals_online(net: list[str]) -> None:
    cases = [
        ["account", "open", "alice", "--bank", "Bank A"],  # exists
        ["account", "open", "zed", "--bank", "Bank Z"],  # unknown bank
        ["account", "show", "nobody"],
        ["wallet", "create", "x", "--bank", "Bank B", "--owner", "alice"],  # wrong bank
        ["wallet", "fund", "alice-phone", "1000.00"],  # account holds 400
        ["wallet", "unload", "bob-phone", "1"],  # empty wallet
    ]
    for args in cases:
        r = run(*net, *args)
        assert r.code == 1, (args, r.stdout, r.stderr)
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert run(*net, "network", "init", net[1]).code == 1  # already a network there
    assert run("network", "init", "x", "--alg", "rsa").code == 2
    assert run(*net, "wallet", "fund", "alice-phone", "3.999").code == 2
    assert (
        run(*net, "wallet", "create", "bad/name", "--bank", "Bank A", "--owner", "alice").code == 2
    )


def test_report_lost_then_sync_refused(net: list[str]) -> None:
    r = run(*net, "wallet", "report-lost", "alice-phone", "--json")
    assert r.code == 0 and r.json()["revoked"] is True  # type: ignore[index]
    r = run(*net, "wallet", "sync", "alice-phone")
    assert r.code == 1 and "revoked" in r.stderr
    r = run(
        *net, "wallet", "pay", "alice-phone", "--to", "bob-phone", "--amount", "1", "--out", "-"
    )
    assert r.code == 1 and "reported lost: it cannot pay" in r.stderr
    audit = run(*net, "ledger", "audit", "--json").json()
    assert isinstance(audit, dict) and audit["revoked"] == ["alice-phone (revoked)"]
    # The default claim window is 30 days: no refund yet.
    r = run(*net, "wallet", "refund-lost", "alice-phone")
    assert r.code == 1 and "claim-not-ready" in r.stderr and r.stderr.count("\n") == 1
    # ... said as a date, not as seconds since 1970
    assert re.search(r"claim window is open until \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ", r.stderr), (
        r.stderr
    )


def test_lost_wallet_refunded_after_claim_window(tmp_path: Path) -> None:
    d = tmp_path / "pilot"
    r = run("network", "init", d, "--claim-window", "0", "--json")
    assert r.code == 0 and r.json()["claim_window"] == 0, r.stderr  # type: ignore[index]
    n = ["--network", str(d)]
    assert run(*n, "account", "open", "alice", "--bank", "Bank A", "--deposit", "500").code == 0
    assert (
        run(*n, "wallet", "create", "alice-phone", "--bank", "Bank A", "--owner", "alice").code == 0
    )
    assert run(*n, "wallet", "fund", "alice-phone", "100").code == 0
    pay = tmp_path / "p.txt"
    assert (
        run(*n, "wallet", "pay", "alice-phone", "--to", "bob", "--amount", "1", "--out", pay).code
        == 1
    )  # no wallet named bob: refused, nothing spent
    r = run(*n, "wallet", "refund-lost", "alice-phone")
    assert r.code == 1 and "claim-not-ready" in r.stderr, r.stderr
    assert "wallet alice-phone was not reported lost (active)" in r.stderr, r.stderr
    assert "None" not in r.stderr, r.stderr
    assert run(*n, "wallet", "report-lost", "alice-phone").code == 0
    r = run(*n, "wallet", "refund-lost", "alice-phone", "--json")
    assert r.code == 0, r.stderr
    assert r.json() == {
        "wallet": "alice-phone",  # the 100.00 loaded since its last sync
        "wallet_id": r.json()["wallet_id"],  # type: ignore[index]
        "owner": "alice",
        "refunded": 10000,
        "currency": "EUR",
        "owner_balance": 50000,
    }
    r = run(*n, "wallet", "refund-lost", "alice-phone")  # once only; named, not by id
    assert r.code == 1 and "wallet alice-phone was already refunded" in r.stderr, r.stderr
    audit = run(*n, "ledger", "audit", "--json").json()
    assert isinstance(audit, dict) and audit["balanced"]
    assert audit["revoked"] == ["alice-phone (refunded)"] and audit["float"] == 0
    assert run(*n, "wallet", "show", "alice-phone").code == 0  # the SE file is still readable


def test_release_torn(net: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Alice pays Bob and syncs; Bob never does. Once the payment is too old for any payee to
    accept, release-torn pays it to Bob's account; Bob's late sync moves it to his float."""
    pay = tmp_path / "p.bin"
    assert (
        run(
            *net,
            "wallet",
            "pay",
            "alice-phone",
            "--to",
            "bob-phone",
            "--amount",
            "7.50",
            "--out",
            pay,
        ).code
        == 0
    )
    assert run(*net, "wallet", "receive", "bob-phone", pay).code == 0
    assert run(*net, "wallet", "sync", "alice-phone").code == 0
    audit = run(*net, "ledger", "audit", "--json").json()
    assert isinstance(audit, dict) and audit["suspense"] == 750
    r = run(*net, "ledger", "release-torn", "--json")
    assert r.code == 0 and r.json() == {"released": 0, "currency": "EUR", "suspense": 750}
    monkeypatch.setenv("OFFCASH_NOW", str(now() + 8 * 24 * 3600))  # the documented clock pin
    r = run(*net, "ledger", "release-torn")
    assert r.code == 0 and "Released 1" in r.stdout and "0.00 EUR" in r.stdout, r.stderr
    assert run(*net, "account", "show", "bob", "--json").json()["balance"] == 50750  # type: ignore[index]
    monkeypatch.delenv("OFFCASH_NOW")
    assert run(*net, "wallet", "sync", "bob-phone").code == 0
    assert run(*net, "account", "show", "bob", "--json").json()["balance"] == 50000  # type: ignore[index]
    audit = run(*net, "ledger", "audit", "--json").json()
    assert isinstance(audit, dict) and audit["balanced"] and audit["suspense"] == 0


def test_offline_after_ledger_deleted(net: list[str], tmp_path: Path) -> None:
    for f in Path(net[1]).glob("ledger.sqlite*"):
        f.unlink()
    req, pay = tmp_path / "r.png", tmp_path / "p.png"
    assert run(*net, "wallet", "request", "bob-phone", "1.25", "--out", req).code == 0
    assert run(*net, "wallet", "pay", "alice-phone", "--request", req, "--out", pay).code == 0
    assert run(*net, "wallet", "receive", "bob-phone", pay).code == 0
    assert run(*net, "wallet", "show", "bob-phone").code == 0
    assert not list(Path(net[1]).glob("ledger.sqlite*"))


def test_demo_json_and_png(tmp_path: Path) -> None:
    keep = tmp_path / "demo"
    r = run("demo", "--keep", keep, "--json")
    assert r.code == 0, r.stderr
    result = r.json()
    assert isinstance(result, dict)
    steps = {s["step"]: s for s in result["steps"]}
    assert steps["bob receives"]["payer"] == "alice"
    assert steps["carol receives"]["payer"] == "bob"
    assert steps["dave receives"]["amount"] == steps["erin receives"]["amount"] == 5000
    assert steps["sync mallory"]["code"] == "wallet-revoked"
    audit = steps["audit"]
    assert audit["balanced"]
    (ds,) = audit["double_spends"]
    assert ds["payer"] == "mallory" and sorted(ds["payees"]) == ["dave", "erin"]
    assert ds["bank"] == "Bank B" and len(ds["evidence"]) == 2
    for png in (keep / "qr").glob("*.png"):
        assert zxingcpp.read_barcodes(Image.open(png)), png


def test_demo_subprocess_no_traceback() -> None:
    p = subprocess.run(
        [sys.executable, "-m", "offcash", "demo"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert p.returncode == 0, p.stderr
    assert "Caught: mallory" in p.stdout and "Books balanced: yes" in p.stdout


def test_readme_walkthrough(tmp_path: Path) -> None:
    """Every shell line of the README's walkthrough runs, in order, in an empty folder; then the
    block that serves the ledger over HTTP (on a free loopback port instead of 8080)."""
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    walk = next(b for b in blocks if "network init" in b)
    served = next(b for b in blocks if "offcash serve" in b)
    assert "offcash demo" in blocks[0]
    assert shutil.which("curl"), "the README's server block waits for the server with curl"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    served = served.replace("8080", str(port))
    bin_dir = tmp_path / "bin"  # `offcash` as a real executable, so `kill $!` stops the server
    bin_dir.mkdir()
    (bin_dir / "offcash").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m offcash "$@"\n')
    (bin_dir / "offcash").chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    # If a line fails, the EXIT trap still stops the server the script started.
    script = "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("OFFCASH_NETWORK", "OFFCASH_SERVER", "OFFCASH_TOKEN", "OFFCASH_NOW")
    }
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    p = subprocess.run(
        ["bash", "-c", script + walk + served],
        cwd=work,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env=env,
    )
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    audits = [json.loads(x) for x in re.findall(r'^\{\n  "currency".*?^\}$', p.stdout, re.S | re.M)]
    assert len(audits) == 2 and all(a["balanced"] for a in audits)
    assert audits[0]["revoked"] == ["alice-phone (refunded)"]
    assert zxingcpp.read_barcodes(Image.open(work / "payment.png"))
    assert "Uvicorn running" in (work / "server.log").read_text()


def test_pin_file(net: list[str], tmp_path: Path) -> None:
    pin = tmp_path / "pin.txt"
    pin.write_text("correct horse\n")
    r = run(
        *net,
        "wallet",
        "create",
        "alice-card",
        "--bank",
        "Bank A",
        "--owner",
        "alice",
        "--pin-file",
        pin,
    )
    assert r.code == 0, r.stderr
    r = run(*net, "wallet", "show", "alice-card")
    assert r.code == 1 and "wrong-pin" in r.stderr
    assert run(*net, "wallet", "show", "alice-card", "--pin-file", pin).code == 0
    assert run(*net, "wallet", "fund", "alice-card", "5", "--pin-file", pin).code == 0


def test_unexpected_error_is_one_line(net: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from offcash.cli import service

    def boom(*_: object) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(service.Service, "balance", boom)
    r = run(*net, "account", "show", "alice")
    assert r.code == 1 and r.stderr.startswith("offcash: internal-error")
    assert r.stderr.count("\n") == 1


def test_cli_defaults_agree_with_the_ledger() -> None:
    from offcash.cli import config
    from offcash.ledger import service as ledger_service

    assert config.DEFAULT_CLAIM_WINDOW == ledger_service.DEFAULT_CLAIM_WINDOW
    # Offline commands start without loading the ledger (SQLAlchemy).
    code = "import sys, offcash.cli.main; sys.exit('sqlalchemy' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False, timeout=60).returncode == 0


def test_progress_spinner_on_terminals_only(
    net: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from rich.console import Console

    from offcash.cli import output

    err = io.StringIO()
    monkeypatch.setattr(output, "err_console", Console(file=err, force_terminal=True))
    r = run(*net, "wallet", "sync", "alice-phone", "--json")
    assert r.code == 0 and r.json()["log_entries"] == 0  # type: ignore[index]
    assert "Settling alice-phone's 1 log entry" in err.getvalue()


def test_unload_of_money_received_offline_syncs_first(net: list[str], tmp_path: Path) -> None:
    """Bob received 30.00 offline and unloads 20.00 before any sync: the ledger pays out only
    what it can account for, so the command syncs bob's log first, then the unload is paid."""
    pay = tmp_path / "p.txt"
    r = run(
        *net, "wallet", "pay", "alice-phone", "--to", "bob-phone", "--amount", "30", "--out", pay
    )
    assert r.code == 0, r.stderr
    assert run(*net, "wallet", "receive", "bob-phone", pay).code == 0
    r = run(*net, "wallet", "unload", "bob-phone", "20", "--json")
    assert r.code == 0, r.stderr
    shown = r.json()
    assert isinstance(shown, dict) and shown["balance"] == 1000
    assert shown["log_entries"] == 1  # the unload alone: the receipt was synced first
    assert run(*net, "account", "show", "bob", "--json").json()["balance"] == 52000  # type: ignore[index]
    assert run(*net, "ledger", "audit", "--json").json()["balanced"]  # type: ignore[index]
