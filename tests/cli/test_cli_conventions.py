"""The conventions a user of ``git``, ``gh`` or ``stripe`` expects from ``offcash``: version and
help flags, completion, ``python -m``, list commands, messages in currency units with the next
step, JSON errors, exit codes, clean refusals of bad files and URLs, prompts on a terminal only,
owner-only files, no password in any output, a lean start-up for offline commands."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from offcash import __version__
from offcash.cli.config import Network
from offcash.cli.errors import describe
from offcash.errors import Limit, LimitExceeded

from cli_harness import offline_network, run


def _net(net: Network) -> list[str]:
    return ["--network", str(net.root)]


def _py(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m offcash ARGS`` in a subprocess, with no ``offcash`` command on PATH."""
    dirs = os.environ.get("PATH", "").split(os.pathsep)
    path = os.pathsep.join(d for d in dirs if d and not (Path(d) / "offcash").exists())
    full = {**os.environ, "PATH": path, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "offcash", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=full,
        stdin=subprocess.DEVNULL,
    )


# --- flags, completion, python -m -------------------------------------------------------------


def test_version_help_and_python_m() -> None:
    for flag in ("--version", "-V"):
        r = run(flag)
        assert r.code == 0 and r.stdout.strip() == f"offcash {__version__}"
    for args in (["-h"], ["wallet", "-h"], ["wallet", "pay", "-h"]):
        r = run(*args)
        assert r.code == 0 and "Usage: offcash" in r.stdout, args
    p = _py("--version")
    assert p.returncode == 0 and p.stdout.strip() == f"offcash {__version__}", p.stderr
    assert "--install-completion" in run("--help").stdout


def test_shell_completion() -> None:
    p = _py(
        env={"_OFFCASH_COMPLETE": "complete_bash", "COMP_WORDS": "offcash wal", "COMP_CWORD": "1"}
    )
    assert p.returncode == 0 and "wallet" in p.stdout.split(), (p.stdout, p.stderr)
    p = _py(
        env={
            "_OFFCASH_COMPLETE": "complete_bash",
            "COMP_WORDS": "offcash wallet change",
            "COMP_CWORD": "2",
        }
    )
    assert "change-pin" in p.stdout.split(), (p.stdout, p.stderr)


# --- lists ------------------------------------------------------------------------------------


def test_wallet_list(offline_net: Network, tmp_path: Path) -> None:
    pin = tmp_path / "pin"
    pin.write_text("1234\n")
    new = tmp_path / "new"
    new.write_text("5678\n")
    assert run(*_net(offline_net), "wallet", "change-pin", "carol", "--new-pin-file", new).code == 0
    r = run(*_net(offline_net), "wallet", "list", "--json")
    assert r.code == 0, r.stderr
    got = r.json()
    assert isinstance(got, dict) and got["currency"] == "EUR"
    rows = {w["wallet"]: w for w in got["wallets"]}
    assert sorted(rows) == ["alice", "bob", "carol"]
    assert rows["alice"]["balance"] == 10_000 and rows["bob"]["balance"] == 0
    assert rows["alice"]["wallet_id"] == offline_net.wallets["alice"].wallet_id
    assert rows["alice"]["bank"] == "Bank A" and rows["alice"]["status"] == "active"
    assert rows["carol"]["balance"] is None and "locked" in rows["carol"]["status"]
    # scripts read `state`, one word; `status` says it for people
    assert (rows["alice"]["state"], rows["carol"]["state"]) == ("active", "locked")
    r = run(*_net(offline_net), "wallet", "list")
    assert r.code == 0 and "100.00 EUR" in r.stdout
    # On an 80-column terminal, with carol's long "locked" status, every wallet id is whole
    # on one line (people copy it into `wallet pay --to`): the other columns wrap instead.
    narrow = _py(*_net(offline_net), "wallet", "list", env={"COLUMNS": "80"})
    assert narrow.returncode == 0, narrow.stderr
    for w in offline_net.wallets.values():
        assert w.wallet_id in narrow.stdout, narrow.stdout
    (offline_net.root / "wallets" / "bob.se").unlink()  # one wallet's file lost: still listed
    rows = {
        w["wallet"]: w
        for w in run(*_net(offline_net), "wallet", "list", "--json").json()["wallets"]
    }  # type: ignore[index]
    assert rows["bob"]["balance"] is None and "unreadable" in rows["bob"]["status"]
    assert rows["bob"]["state"] == "unreadable"
    assert rows["alice"]["balance"] == 10_000


def _online(tmp_path: Path) -> list[str]:
    d = tmp_path / "pilot"
    assert run("network", "init", d, "--banks", "Bank A,Bank B", "--claim-window", "0").code == 0
    n = ["--network", str(d)]
    for name, bank in (("alice", "Bank A"), ("bob", "Bank B")):
        assert run(*n, "account", "open", name, "--bank", bank, "--deposit", "500").code == 0
        r = run(*n, "wallet", "create", f"{name}-phone", "--bank", bank, "--owner", name)
        assert r.code == 0, r.stderr
    assert run(*n, "wallet", "fund", "alice-phone", "100").code == 0
    return n


def test_account_list_status_files_and_missing_ledger(tmp_path: Path) -> None:
    n = _online(tmp_path)
    r = run(*n, "account", "list", "--json")
    assert r.code == 0, r.stderr
    got = r.json()
    assert isinstance(got, dict)
    rows = {a["account"]: a for a in got["accounts"]}
    assert rows["alice"]["balance"] == 40_000 and rows["alice"]["bank"] == "Bank A"
    assert rows["bob"]["balance"] == 50_000 and rows["bob"]["wallets"] == ["bob-phone"]
    assert rows["alice"]["account_id"] and rows["alice"]["account_id"] != rows["bob"]["account_id"]

    r = run(*n, "wallet", "fund", "alice-phone", "1000")  # the account holds 400.00
    assert r.code == 1 and "400.00 EUR" in r.stderr and "1000.00 EUR" in r.stderr, r.stderr
    assert "40000" not in r.stderr and "100000" not in r.stderr

    # wallet show: limits and what is left until the next sync; plain status words.
    out = tmp_path / "p.txt"
    pay = ["wallet", "pay", "alice-phone", "--to", "bob-phone", "--amount", "30", "--out", out]
    assert run(*n, *pay).code == 0
    w = run(*n, "wallet", "show", "alice-phone", "--json").json()
    assert isinstance(w, dict) and (w["state"], w["status"]) == ("active", "active")
    assert w["left"]["offline_payments"] == 49 and w["left"]["offline_value"] == 47_000
    assert w["left"]["balance_room"] == 23_000 and w["left"]["max_payment_now"] == 7_000
    text = run(*n, "wallet", "show", "alice-phone").stdout
    assert "49 of 50 left" in text and "470.00 of 500.00 EUR left" in text
    later = str(int(time.time()) + 30 * 86400)  # past the certificate's expiry
    r = run(*n, "wallet", "show", "alice-phone", "--json", env={"OFFCASH_NOW": later})
    assert "certificate expired" in r.json()["status"], r.stdout  # type: ignore[index]
    assert r.json()["state"] == "expired"  # type: ignore[index]
    assert run(*n, "wallet", "report-lost", "bob-phone").code == 0
    bob = run(*n, "wallet", "show", "bob-phone", "--json").json()
    assert isinstance(bob, dict) and bob["status"].startswith("revoked: reported lost")
    assert bob["state"] == "lost"

    # Every file offcash made in the network folder is owner-only, the ledger included.
    root = Path(n[1])
    files = [p for p in root.rglob("*") if p.is_file()]
    assert any(p.name == "ledger.sqlite" for p in files)
    for p in files:
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    for d in (root, root / "wallets"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d

    # A missing ledger is reported, never replaced by an empty one.
    (root / "ledger.sqlite").rename(tmp_path / "moved.sqlite")
    for args in (["ledger", "audit"], ["ledger", "audit", "--json"], ["account", "list"]):
        r = run(*n, *args)
        assert r.code == 1 and "ledger" in r.stderr and "missing" in r.stderr, r.stderr
    assert not (root / "ledger.sqlite").exists()


# --- messages: units, next steps, JSON, exit codes -------------------------------------------


def test_limit_messages_in_units_with_next_step(offline_net: Network, tmp_path: Path) -> None:
    n = _net(offline_net)
    out = tmp_path / "p.txt"
    r = run(*n, "wallet", "pay", "alice", "--to", "bob", "--amount", "100.01", "--out", out)
    assert r.code == 1 and "100.01 EUR" in r.stderr and "100.00 EUR" in r.stderr, r.stderr
    assert "10001" not in r.stderr and "10000" not in r.stderr
    r = run(*n, "wallet", "pay", "bob", "--to", "alice", "--amount", "1", "--out", out)
    assert r.code == 1 and "0.00 EUR" in r.stderr and "1.00 EUR" in r.stderr, r.stderr
    # The receiver over its maximum balance: 300.00 EUR held at most.
    rich = offline_network(tmp_path / "rich", {"payer": 10_000, "full": 29_950})
    o = tmp_path / "q.txt"
    m = _net(rich)
    assert run(*m, "wallet", "pay", "payer", "--to", "full", "--amount", "1", "--out", o).code == 0
    r = run(*m, "wallet", "receive", "full", o)
    assert r.code == 1, r.stderr
    assert "300.50 EUR" in r.stderr and "300.00 EUR" in r.stderr, r.stderr
    assert "30050" not in r.stderr and "30000" not in r.stderr


def test_offline_limits_say_sync_to_reset(offline_net: Network) -> None:
    # The oracle is the limit table, not the CLI: each offline limit is reset by a sync.
    for limit, value, bound, shown in (
        (Limit.MAX_OFFLINE_PAYMENTS, 51, 50, "51"),
        (Limit.MAX_OFFLINE_VALUE, 50_001, 50_000, "500.01 EUR"),
        (Limit.MAX_OFFLINE_SECONDS, 8 * 86400, 7 * 86400, "8 days"),
    ):
        code, text = describe(LimitExceeded(limit, value, bound), offline_net)
        assert code == "limit-exceeded" and shown in text and "sync" in text, text


def test_wrong_pin_names_the_wallet_and_the_way_to_give_it(
    offline_net: Network, tmp_path: Path
) -> None:
    pin = tmp_path / "pin"
    pin.write_text("9999\n")
    r = run(*_net(offline_net), "wallet", "show", "bob", "--pin-file", pin)
    assert r.code == 1 and "wrong-pin" in r.stderr and "bob" in r.stderr, r.stderr
    assert "--pin-file" in r.stderr and "OFFCASH_PIN" in r.stderr


def _json_error(stderr: str) -> dict[str, str]:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    obj = json.loads(lines[0])
    assert set(obj) == {"error"} and set(obj["error"]) == {"code", "message"}, obj
    return dict(obj["error"])


def test_json_errors_keep_exit_codes(offline_net: Network, tmp_path: Path) -> None:
    n = _net(offline_net)
    out = tmp_path / "p.txt"
    r = run(
        *n, "wallet", "pay", "alice", "--to", "bob", "--amount", "100.01", "--out", out, "--json"
    )
    assert r.code == 1 and r.stdout == ""
    err = _json_error(r.stderr)
    assert err["code"] == "limit-exceeded" and "100.00 EUR" in err["message"]
    r = run(*n, "wallet", "pay", "alice", "--to", "bob", "--amount", "x", "--out", out, "--json")
    assert r.code == 2 and _json_error(r.stderr)["code"] == "usage"
    r = run(*n, "wallet", "pay", "alice", "--json", "--out", out)  # neither --to nor --request
    assert r.code == 2 and _json_error(r.stderr)["code"] == "usage"
    r = run(*n, "wallet", "frobnicate", "--json")
    assert r.code == 2 and _json_error(r.stderr)["code"] == "usage"
    r = run(*n, "wallet", "show", "nobody", "--json")
    assert r.code == 1 and _json_error(r.stderr)["code"] == "refused"
    r = run(*n, "wallet", "show", "nobody")  # without --json: one plain line
    assert r.code == 1 and r.stderr.startswith("offcash: refused: no wallet named 'nobody'")


def test_usage_errors_exit_2_and_bad_urls_refused(tmp_path: Path) -> None:
    r = run("network", "init", tmp_path / "a", "--banks", "")
    assert r.code == 2 and "--banks" in r.stderr
    assert run("network", "init", tmp_path / "a", "--banks", "X,X").code == 2
    assert run("network", "init", tmp_path / "a", "--currency", "XYZ").code == 2
    r = run("network", "init", tmp_path / "b", "--db", "mysql://u:s3cretpw@db.example/x")
    assert r.code == 2 and "SQLite" in r.stderr and "PostgreSQL" in r.stderr, r.stderr
    assert "internal" not in r.stderr and "s3cretpw" not in r.stderr
    assert not (tmp_path / "b" / "offcash.json").exists()


def test_db_password_never_shown(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    url = f"postgresql://pilot:s3cretpw@127.0.0.1:{port}/ledger"
    for extra in ([], ["--json"]):
        r = run("network", "init", tmp_path / "pg", "--db", url, *extra)
        assert r.code == 1 and "cannot open the ledger database" in r.stderr, r.stderr
        assert "s3cretpw" not in r.stdout + r.stderr and "pilot:***@" in r.stderr
    # serve: its banner and its refusal, with the URL from --db.
    net = offline_network(tmp_path / "net", {"alice": 0})
    config = json.loads((net.root / "offcash.json").read_text())
    config["operator_token"] = "t"
    (net.root / "offcash.json").write_text(json.dumps(config))
    p = _py("--network", str(net.root), "serve", "--port", str(port), "--db", url)
    assert p.returncode == 1 and "s3cretpw" not in p.stdout + p.stderr, p.stderr
    assert "pilot:***@" in p.stderr


# --- hand-edited files ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "edit", "field"),
    [
        ("offcash.json", lambda c: c.update(banks="Bank A"), "banks"),
        ("offcash.json", lambda c: c.update(claim_window="30d"), "claim_window"),
        ("offcash.json", lambda c: c.update(currency=978), "currency"),
        ("offcash.json", lambda c: c.update(algorithm="rsa"), "rsa"),
        ("offcash.json", lambda c: c.update(db_url="mysql://x/y"), "db_url"),
        ("offcash.json", lambda c: c.update(extra=1), "extra"),
        ("offcash.json", lambda c: c.pop("currency"), "currency"),
        ("wallets.json", lambda c: c["alice"].update(lost="yes"), "lost"),
        ("wallets.json", lambda c: c["alice"].update(wallet_id=7), "wallet_id"),
        ("wallets.json", lambda c: c.update(bob=["not", "an", "entry"]), "object"),
        ("wallets.json", lambda c: c.update(bob={**c["alice"]}), "name"),
    ],
)
def test_hand_edited_files_refused(
    offline_net: Network, tmp_path: Path, file: str, edit: object, field: str
) -> None:
    path = offline_net.root / file
    content = json.loads(path.read_text())
    edit(content)  # type: ignore[operator]
    path.write_text(json.dumps(content))
    r = run(*_net(offline_net), "wallet", "show", "alice")
    assert r.code == 1 and r.stderr.startswith("offcash: refused:"), r.stderr
    assert file in r.stderr and field in r.stderr and "internal" not in r.stderr, r.stderr


def test_network_file_not_an_object(offline_net: Network) -> None:
    (offline_net.root / "wallets.json").write_text("[1, 2]")
    r = run(*_net(offline_net), "wallet", "list")
    assert r.code == 1 and "expected a JSON object" in r.stderr


# --- pay --request: shown, confirmed on a terminal --------------------------------------------


def test_pay_request_shows_payee_and_reference(offline_net: Network, tmp_path: Path) -> None:
    n = _net(offline_net)
    req, out = tmp_path / "r.txt", tmp_path / "p.txt"
    assert (
        run(*n, "wallet", "request", "bob", "12.50", "--reference", "bike", "--out", req).code == 0
    )
    r = run(
        *n, "wallet", "pay", "alice", "--request", req, "--out", out
    )  # no terminal: no question
    assert r.code == 0, r.stderr
    bob_id = offline_net.wallets["bob"].wallet_id
    assert "12.50 EUR" in r.stdout and "bob" in r.stdout and bob_id in r.stdout
    assert "'bike'" in r.stdout


def _on_terminal(args: list[str], answers: list[tuple[str, str]]) -> tuple[int, str]:
    """Run ``python -m offcash ARGS`` on a pseudo-terminal (its controlling terminal); wait for
    each prompt and type the answer. Returns the exit code and everything the terminal showed.

    A prompt is complete when the terminal shows its text and then ends with ``": "``: a hidden
    prompt turns echo off (discarding input typed before) only just before that last space.
    """
    env = {k: v for k, v in os.environ.items() if k != "OFFCASH_PIN"}
    pid, fd = pty.fork()
    if pid == 0:  # the child: the pty is its stdin, stdout, stderr and controlling terminal
        os.execve(sys.executable, [sys.executable, "-m", "offcash", *args], env)
    shown, since = b"", 0
    deadline = time.monotonic() + 90
    pending = list(answers)
    while time.monotonic() < deadline:
        if pending and pending[0][0].encode() in shown[since:] and shown.endswith(b": "):
            os.write(fd, pending.pop(0)[1].encode() + b"\r")
            shown += b"<<typed>>"
            since = len(shown)
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal: it exited
            break
        if not chunk:
            break
        shown += chunk
    else:
        os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), shown.decode(errors="replace")


def test_pay_request_asks_on_a_terminal(offline_net: Network, tmp_path: Path) -> None:
    n = _net(offline_net)
    req, out = tmp_path / "r.txt", tmp_path / "p.txt"
    assert (
        run(*n, "wallet", "request", "bob", "12.50", "--reference", "bike", "--out", req).code == 0
    )
    pay = [*n, "wallet", "pay", "alice", "--request", str(req), "--out", str(out)]
    pin = ("PIN for wallet alice", "")  # Enter: the development PIN
    code, shown = _on_terminal(pay, [pin, ("Pay it?", "n")])
    bob_id = offline_net.wallets["bob"].wallet_id
    assert "12.50 EUR to bob" in shown and bob_id in shown and "'bike'" in shown, shown
    assert code == 1 and "not confirmed" in shown and not out.exists(), shown
    code, shown = _on_terminal(pay, [pin, ("Pay it?", "y")])
    assert code == 0 and out.exists(), shown
    out.unlink()
    code, shown = _on_terminal([*pay, "--yes"], [pin])
    assert code == 0 and "Pay it?" not in shown and out.exists(), shown


def test_pin_prompt_is_hidden_and_change_pin(offline_net: Network, tmp_path: Path) -> None:
    n = _net(offline_net)
    code, shown = _on_terminal(
        [*n, "wallet", "change-pin", "bob"],
        [
            ("PIN for wallet bob", ""),
            ("New PIN for wallet bob", "4711"),
            ("Repeat for confirmation", "4711"),
        ],
    )
    assert code == 0 and "PIN changed" in shown, shown
    assert "4711" not in shown  # typed, never echoed
    r = run(*n, "wallet", "show", "bob")  # the development PIN no longer opens it
    assert r.code == 1 and "wrong PIN for wallet bob" in r.stderr
    code, shown = _on_terminal([*n, "wallet", "show", "bob"], [("PIN for wallet bob", "4711")])
    assert code == 0 and "0.00 EUR" in shown and "4711" not in shown, shown
    pin = tmp_path / "pin"
    pin.write_text("4711\n")
    assert run(*n, "wallet", "show", "bob", "--pin-file", pin).code == 0
    r = run(*n, "wallet", "show", "bob", env={"OFFCASH_PIN": "4711"})
    assert r.code == 0, r.stderr
    # Without a terminal, change-pin needs the new PIN in a file; it never waits for input.
    r = run(*n, "wallet", "change-pin", "bob", "--pin-file", pin)
    assert r.code == 2 and "--new-pin-file" in r.stderr


# --- serve, demo, start-up ---------------------------------------------------------------------


def test_serve_access_log_on_stderr(tmp_path: Path) -> None:
    d = tmp_path / "served"
    assert run("network", "init", d).code == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out, err = tmp_path / "out.log", tmp_path / "err.log"
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen(
            [sys.executable, "-m", "offcash", "--network", str(d), "serve", "--port", str(port)],
            stdout=o,
            stderr=e,
        )
    try:
        for _ in range(150):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=2).is_success:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    assert "GET /openapi.json" in err.read_text(), err.read_text()
    assert out.read_text() == ""


def test_demo_explains_its_terms_and_shows_no_raw_error() -> None:
    p = _py("demo")
    assert p.returncode == 0, p.stderr
    for term in ("secure element", "counter", "float", "suspense", "reserves"):
        assert re.search(rf"^\s*{term}: \S", p.stdout, re.M), term
    assert "mallory tries to sync: refused" in p.stdout
    assert not re.search(r"\b[a-z]+(-[a-z]+)+: ", p.stdout), "an error code in the story"
    assert "Traceback" not in p.stdout + p.stderr


def test_offline_commands_import_only_what_they_need(offline_net: Network, tmp_path: Path) -> None:
    """Offline pay and receive in text form load neither the QR stack, the demo, the ledger
    (SQLAlchemy) nor the HTTP stack; a QR image loads the QR stack."""
    heavy = ["segno", "zxingcpp", "PIL", "offcash.cli.demo", "sqlalchemy", "httpx", "uvicorn"]
    probe = (
        "import runpy, sys\n"
        "sys.argv = ['offcash'] + sys.argv[1:]\n"
        "try:\n    runpy.run_module('offcash', run_name='__main__')\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        f"print('LOADED:' + ','.join(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)\n"
    )
    n = _net(offline_net)
    out = tmp_path / "p.txt"

    def loaded(*args: str) -> list[str]:
        p = subprocess.run(
            [sys.executable, "-c", probe, *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        assert p.returncode == 0, p.stderr
        (line,) = [x for x in p.stderr.splitlines() if x.startswith("LOADED:")]
        return [m for m in line.removeprefix("LOADED:").split(",") if m]

    assert (
        loaded(*n, "wallet", "pay", "alice", "--to", "bob", "--amount", "1", "--out", str(out))
        == []
    )
    assert loaded(*n, "wallet", "receive", "bob", str(out)) == []
    png = tmp_path / "p.png"
    got = loaded(*n, "wallet", "pay", "alice", "--to", "bob", "--amount", "1", "--out", str(png))
    assert "zxingcpp" in got
