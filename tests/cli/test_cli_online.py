"""Online commands against a real ledger (SQLite in the network folder), and the demo."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

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
    assert r.code == 0 and r.json()["balance"] == "400.00"  # type: ignore[index]
    w = run(*net, "wallet", "show", "alice-phone", "--json").json()
    assert isinstance(w, dict) and w["balance"] == "100.00" and w["bank"] == "Bank A"
    pay = tmp_path / "p.png"
    assert run(*net, "wallet", "pay", "alice-phone", "--to", "bob-phone", "--amount", "30",
               "--out", pay).code == 0
    assert run(*net, "wallet", "receive", "bob-phone", pay).code == 0
    for name in ("alice-phone", "bob-phone"):
        r = run(*net, "wallet", "sync", name, "--json")
        assert r.code == 0, r.stderr
        assert r.json()["log_entries"] == 0  # type: ignore[index]
    r = run(*net, "wallet", "unload", "bob-phone", "10", "--json")
    assert r.code == 0 and r.json()["balance"] == "20.00", r.stderr  # type: ignore[index]
    assert run(*net, "account", "show", "bob", "--json").json()["balance"] == "510.00"  # type: ignore[index]
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
        ["wallet", "fund", "alice-phone", "3.999"],
        ["wallet", "unload", "bob-phone", "1"],  # empty wallet
    ]
    for args in cases:
        r = run(*net, *args)
        assert r.code == 1, (args, r.stdout, r.stderr)
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert run(*net, "network", "init", net[1]).code == 1  # already a network there
    assert run("network", "init", "x", "--alg", "rsa").code == 2


def test_report_lost_then_sync_refused(net: list[str]) -> None:
    r = run(*net, "wallet", "report-lost", "alice-phone", "--json")
    assert r.code == 0 and r.json()["revoked"] is True  # type: ignore[index]
    r = run(*net, "wallet", "sync", "alice-phone")
    assert r.code == 1 and "revoked" in r.stderr
    audit = run(*net, "ledger", "audit", "--json").json()
    assert isinstance(audit, dict) and any("alice-phone" in w for w in audit["revoked"])


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
    assert steps["dave receives"]["amount"] == steps["erin receives"]["amount"] == "50.00"
    assert steps["sync mallory"]["code"] == "wallet-revoked"
    audit = steps["audit"]
    assert audit["balanced"]
    (ds,) = audit["double_spends"]
    assert ds["payer"] == "mallory" and sorted(ds["payees"]) == ["dave", "erin"]
    assert ds["bank"] == "Bank B" and len(ds["evidence"]) == 2
    for png in (keep / "qr").glob("*.png"):
        assert zxingcpp.read_barcodes(Image.open(png)), png


def test_demo_subprocess_no_traceback() -> None:
    p = subprocess.run([sys.executable, "-m", "offcash.cli", "demo"], capture_output=True,
                       text=True, timeout=60, check=False)
    assert p.returncode == 0, p.stderr
    assert "Caught: mallory" in p.stdout and "Books balanced: yes" in p.stdout


def test_readme_walkthrough(tmp_path: Path) -> None:
    """Every shell line of the README's walkthrough runs, in order, in an empty folder."""
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    walk = next(b for b in blocks if "network init" in b)
    assert "offcash demo" in blocks[0]
    script = f'set -euo pipefail\noffcash() {{ "{sys.executable}" -m offcash.cli "$@"; }}\n'
    env = {k: v for k, v in os.environ.items() if k != "OFFCASH_NETWORK"}
    p = subprocess.run(["bash", "-c", script + walk], cwd=tmp_path, capture_output=True,
                       text=True, timeout=120, check=False, env=env)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    audit = json.loads(p.stdout[p.stdout.rindex('{\n  "currency"'):])
    assert audit["balanced"]
    assert zxingcpp.read_barcodes(Image.open(tmp_path / "payment.png"))


def test_pin_file(net: list[str], tmp_path: Path) -> None:
    pin = tmp_path / "pin.txt"
    pin.write_text("correct horse\n")
    r = run(*net, "wallet", "create", "alice-card", "--bank", "Bank A", "--owner", "alice",
            "--pin-file", pin)
    assert r.code == 0, r.stderr
    r = run(*net, "wallet", "show", "alice-card")
    assert r.code == 1 and "wrong-pin" in r.stderr
    assert run(*net, "wallet", "show", "alice-card", "--pin-file", pin).code == 0
    assert run(*net, "wallet", "fund", "alice-card", "5", "--pin-file", pin).code == 0


def _api_present() -> bool:
    try:
        import offcash.api.client  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(_api_present(), reason="offcash.api exists: test serve and --server for real")
def test_http_parts_refuse_cleanly_until_the_api_lands(net: list[str]) -> None:
    for args in (["serve", "--port", "0"], ["wallet", "sync", "alice-phone", "--server",
                                            "http://127.0.0.1:9"]):
        r = run(*net, *args)
        assert r.code == 1 and "not available" in r.stderr and r.stderr.count("\n") == 1


def test_unexpected_error_is_one_line(net: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from offcash.cli import service

    def boom(*_: object) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(service.Service, "balance", boom)
    r = run(*net, "account", "show", "alice")
    assert r.code == 1 and r.stderr.startswith("offcash: internal error")
    assert r.stderr.count("\n") == 1
