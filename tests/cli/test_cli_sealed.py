"""End-to-end encryption in the CLI: a payment answering a request is sealed for the payee by
default, and so is a one-way payment to a wallet whose certificate (in the folder's registry)
binds its key; `wallet receive` opens it, `--no-encrypt` sends it in the clear, and a wallet it
was not sealed for is refused with a typed error."""

from __future__ import annotations

import base64
from pathlib import Path

from offcash.cli.config import Network
from offcash.domain.ids import WalletId
from offcash.encoding import sealed
from offcash.protocol import messages as m
from offcash.transports import files

from cli_harness import run


def _net(net: Network) -> list[str]:
    return ["--network", str(net.root)]


def test_payment_is_sealed_for_the_payee_and_opened(offline_net: Network, tmp_path: Path) -> None:
    n = _net(offline_net)
    req, pay = tmp_path / "req.txt", tmp_path / "pay.txt"
    assert run(*n, "wallet", "request", "bob", "12.50", "--out", req).code == 0
    assert m.parse_request(files.read_message(str(req))).encryption_key is not None
    r = run(*n, "wallet", "pay", "alice", "--request", req, "--out", pay, "--json")
    assert r.code == 0, r.stderr
    body = r.json()
    assert isinstance(body, dict) and body["encrypted"] is True
    assert sealed.is_sealed(files.read_message(str(pay)))
    r = run(*n, "wallet", "receive", "bob", pay, "--json")
    assert r.code == 0, r.stderr
    got = r.json()
    assert isinstance(got, dict) and got["encrypted"] is True and got["payer"] == "alice"
    r = run(*n, "wallet", "pay", "alice", "--request", req, "--out", tmp_path / "x.txt")
    assert r.code == 0 and "encrypted for the payee" in r.stdout


def test_no_encrypt_sends_it_in_the_clear(offline_net: Network, tmp_path: Path) -> None:
    n = _net(offline_net)
    req, pay = tmp_path / "req.txt", tmp_path / "pay.txt"
    assert run(*n, "wallet", "request", "bob", "3.00", "--out", req).code == 0
    r = run(*n, "wallet", "pay", "alice", "--request", req, "--out", pay, "--no-encrypt", "--json")
    assert r.code == 0, r.stderr
    body = r.json()
    assert isinstance(body, dict) and body["encrypted"] is False
    assert m.parse_payment(files.read_message(str(pay))).amount == 300
    r = run(*n, "wallet", "receive", "bob", pay, "--json")
    assert r.code == 0 and r.json()["encrypted"] is False  # type: ignore[index]


def test_a_payment_sealed_for_another_wallet_is_refused(
    offline_net: Network, tmp_path: Path
) -> None:
    n = _net(offline_net)
    req, pay = tmp_path / "req.txt", tmp_path / "pay.txt"
    assert run(*n, "wallet", "request", "bob", "1.00", "--out", req).code == 0
    assert run(*n, "wallet", "pay", "alice", "--request", req, "--out", pay).code == 0
    r = run(*n, "wallet", "receive", "alice", pay, "--json")
    assert r.code == 1
    assert "cannot-decrypt" in r.stderr or "not sealed for this key" in r.stderr
    assert run(*n, "wallet", "receive", "bob", pay).code == 0


def test_one_way_payment_is_sealed_for_the_key_in_the_payees_certificate(
    offline_net: Network, tmp_path: Path
) -> None:
    n = _net(offline_net)
    bob = offline_net.wallets["bob"]
    assert bob.certificate is not None
    with offline_net.se("bob", "0000") as se:  # the key bound to bob's certificate is his SE's
        cert = se.trust.wallet_certificate(base64.b64decode(bob.certificate), None)
        assert cert.encryption_key == se._s.encryption_key.public()  # type: ignore[union-attr]
    pay = tmp_path / "pay.txt"
    r = run(*n, "wallet", "pay", "alice", "--to", "bob", "--amount", "2.00", "--out", pay, "--json")
    assert r.code == 0, r.stderr
    assert r.json()["encrypted"] is True  # type: ignore[index]
    data = files.read_message(str(pay))
    assert sealed.is_sealed(data) and WalletId.parse(bob.wallet_id).raw not in data
    r = run(*n, "wallet", "receive", "carol", pay)  # sealed for bob: carol cannot open it
    assert r.code == 1 and ("cannot-decrypt" in r.stderr or "not sealed for this key" in r.stderr)
    r = run(*n, "wallet", "receive", "bob", pay, "--json")
    assert r.code == 0, r.stderr
    got = r.json()
    assert isinstance(got, dict) and got["encrypted"] is True and got["amount"] == 200
    # --no-encrypt, or a payee the folder has no certificate for: in the clear
    clear = tmp_path / "clear.txt"
    r = run(*n, "wallet", "pay", "alice", "--to", "bob", "--amount", "1.00", "--out", clear,
            "--no-encrypt")  # fmt: skip
    assert r.code == 0 and m.parse_payment(files.read_message(str(clear))).amount == 100
    with offline_net.update():
        offline_net.wallets["carol"].certificate = None
    r = run(*n, "wallet", "pay", "alice", "--to", "carol", "--amount", "1.00", "--out", clear,
            "--json")  # fmt: skip
    assert r.code == 0 and r.json()["encrypted"] is False  # type: ignore[index]


def test_a_damaged_registry_certificate_is_no_traceback(
    offline_net: Network, tmp_path: Path
) -> None:
    """Attack review: a registry entry's certificate (the folder is shared; the file may be
    edited) that is not base64, or not a certificate, made `wallet pay --to` crash. The payer
    pays in the clear (no certificate to seal for), nothing else changes."""
    n = _net(offline_net)
    for damaged in ("abc", base64.b64encode(b"junk").decode()):
        with offline_net.update():
            offline_net.wallets["bob"].certificate = damaged
        out = tmp_path / "pay.txt"
        r = run(*n, "wallet", "pay", "alice", "--to", "bob", "--amount", "1.00", "--out", out,
                "--json")  # fmt: skip
        assert r.code == 0, r.stderr
        assert r.json()["encrypted"] is False  # type: ignore[index]
