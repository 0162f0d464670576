"""``offcash terminal``: a receive-only terminal created, paid offline, redeemed online."""

from __future__ import annotations

from pathlib import Path

from cli_harness import run


def test_terminal_create_receive_redeem(tmp_path: Path) -> None:
    d = tmp_path / "pilot"
    assert run("network", "init", d, "--currency", "EUR", "--banks", "Bank A,Bank B").code == 0
    n = ["--network", str(d)]
    assert run(*n, "account", "open", "alice", "--bank", "Bank A", "--deposit", "100").code == 0
    assert run(*n, "account", "open", "shop", "--bank", "Bank B").code == 0
    r = run(*n, "wallet", "create", "alice-phone", "--bank", "Bank A", "--owner", "alice")
    assert r.code == 0, r.stderr
    assert run(*n, "wallet", "fund", "alice-phone", "50").code == 0

    r = run(*n, "terminal", "create", "till", "--owner", "shop", "--json")
    assert r.code == 0, r.stderr
    created = r.json()
    assert isinstance(created, dict) and created["bank"] == "Bank B"
    assert created["held_payments"] == 0
    # names are unique across wallets and terminals; the owner must exist
    assert run(*n, "terminal", "create", "till", "--owner", "shop").code == 1
    assert run(*n, "terminal", "create", "alice-phone", "--owner", "shop").code == 1
    r = run(*n, "terminal", "create", "other", "--owner", "nobody")
    assert r.code == 1 and "no account named 'nobody'" in r.stderr

    req, pay = tmp_path / "req.txt", tmp_path / "pay.png"
    r = run(*n, "terminal", "request", "till", "12.50", "--reference", "order 7", "--out", req)
    assert r.code == 0, r.stderr
    assert run(*n, "wallet", "pay", "alice-phone", "--request", req, "--out", pay).code == 0
    r = run(*n, "terminal", "receive", "till", pay, "--json")
    assert r.code == 0, r.stderr
    got = r.json()
    assert isinstance(got, dict)
    assert (got["amount"], got["payer"], got["duplicate"]) == (1250, "alice-phone", False)
    again = run(*n, "terminal", "receive", "till", pay, "--json").json()
    assert isinstance(again, dict) and again["duplicate"] and again["held_payments"] == 1
    r = run(*n, "terminal", "receive", "till", req)  # a request is not a payment
    assert r.code == 1 and "decode-error" in r.stderr

    r = run(*n, "terminal", "redeem", "till", "--json")
    assert r.code == 0, r.stderr
    redeemed = r.json()
    assert isinstance(redeemed, dict)
    assert (redeemed["settled"], redeemed["amount"], redeemed["owner_balance"]) == (
        1,
        1250,
        1250,
    )
    assert redeemed["held_payments"] == 0 and redeemed["refused"] == []
    r = run(*n, "terminal", "redeem", "till", "--json")  # nothing twice
    again = r.json()
    assert isinstance(again, dict) and again["settled"] == 0 and again["owner_balance"] == 1250
    shown = run(*n, "terminal", "show", "till")
    assert shown.code == 0 and "0 payments held" in shown.stdout
    assert run(*n, "terminal", "show", "nope").code == 1
