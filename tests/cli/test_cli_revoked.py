"""A revoked wallet's SE stops paying once the CLI's sync brings it the CRL (issue 9,
finding 8), through the real CLI and ledger."""

from __future__ import annotations

from pathlib import Path

from offcash.cli.config import Network

from cli_harness import run


def test_lost_wallet_found_by_a_thief_stops_paying_after_a_sync(tmp_path: Path) -> None:
    d = tmp_path / "pilot"
    assert run("network", "init", d, "--currency", "EUR", "--banks", "Bank A").code == 0
    n = ["--network", str(d)]
    for name in ("alice", "bob"):
        assert run(*n, "account", "open", name, "--bank", "Bank A", "--deposit", "500").code == 0
        r = run(*n, "wallet", "create", f"{name}-phone", "--bank", "Bank A", "--owner", name)
        assert r.code == 0, r.stderr
    assert run(*n, "wallet", "fund", "alice-phone", "100").code == 0
    pay = ["wallet", "pay", "alice-phone", "--to", "bob-phone", "--amount", "1"]
    assert run(*n, *pay, "--out", tmp_path / "p1.cbor").code == 0  # still pays: nothing known
    assert run(*n, "wallet", "report-lost", "alice-phone").code == 0
    # the thief's copy of the wallet folder does not know it was reported lost (the owner's
    # CLI refuses to pay from a wallet reported lost): only the SE's CRL can stop it
    net = Network.open(d)
    with net.update():
        net.wallet("alice-phone").lost = False
    r = run(*n, "wallet", "sync", "alice-phone")  # refused: revoked; the SE gets the CRL
    assert r.code == 1 and "revoked" in r.stderr
    r = run(*n, *pay, "--out", tmp_path / "p2.cbor")
    assert r.code == 1 and "se-revoked" in r.stderr, r.stderr
    assert not (tmp_path / "p2.cbor").exists()
    shown = run(*n, "wallet", "show", "alice-phone", "--json").json()
    assert isinstance(shown, dict) and shown["balance"] == 9_900, shown
