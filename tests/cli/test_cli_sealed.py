"""End-to-end encryption in the CLI: a payment answering a request is sealed for the payee by
default, and so is a one-way payment to a wallet whose key the folder's registry holds beside
its certificate (which binds the key's digest); `wallet receive` opens it, `--no-encrypt`
sends it in the clear, a wallet it was not sealed for is refused with a typed error, and a
registry key the certificate does not bind is refused before anything is signed."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest

from offcash.cli.config import Network, now
from offcash.crypto.algorithms import SignatureAlgorithm
from offcash.domain.ids import WalletId
from offcash.encoding import sealed
from offcash.errors import CannotDecrypt
from offcash.protocol import messages as m
from offcash.transports import files

from cli_harness import offline_network, run


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
    error = json.loads(r.stderr)["error"]
    assert error["code"] == "cannot-decrypt"
    assert error["message"].startswith(  # the payee who tried is named, and why it may fail
        "this payment does not open with alice's key: it was sealed for another wallet, or "
        "altered on the way"
    )
    assert "nothing is lost" in error["message"] and "about 7 days after" in error["message"]
    assert run(*n, "wallet", "show", "alice", "--json").json()["balance"] == 9900  # type: ignore[index]
    assert run(*n, "wallet", "receive", "bob", pay).code == 0


@pytest.mark.parametrize(
    "alg", [SignatureAlgorithm.P256, SignatureAlgorithm.ML_DSA_44], ids=lambda a: a.short
)
def test_one_way_payment_is_sealed_for_the_key_the_payees_certificate_binds(
    alg: SignatureAlgorithm, tmp_path: Path
) -> None:
    """The registry holds the payee's KEM key beside its certificate, which binds the key's
    SHA-256: X25519 on a classical network, ML-KEM-768 + X25519 on an ML-DSA one."""
    net = offline_network(tmp_path / "net", {"alice": 10_000, "bob": 0, "carol": 0}, alg)
    n = _net(net)
    bob = net.wallets["bob"]
    assert bob.certificate is not None and bob.encryption_key is not None
    key = base64.b64decode(bob.encryption_key)
    with net.se("bob", "0000") as se:  # the registry's key is bob's SE's; his certificate binds it
        assert key == se._s.encryption_key.public()  # type: ignore[union-attr]
        cert = se.trust.wallet_certificate(base64.b64decode(bob.certificate), None)
    assert cert.encryption_key_digest == hashlib.sha256(key).digest()
    assert len(key) == (1_216 if alg.post_quantum else 32)
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
    with net.update():
        net.wallets["carol"].certificate = None
    r = run(*n, "wallet", "pay", "alice", "--to", "carol", "--amount", "1.00", "--out", clear,
            "--json")  # fmt: skip
    assert r.code == 0 and r.json()["encrypted"] is False  # type: ignore[index]


def _carols_key() -> str:
    """Another wallet's well-formed X25519 key (what a swapped directory entry would hold)."""
    return base64.b64encode(sealed.KemKey.generate(sealed.KemSuite.X25519).public()).decode()


@pytest.mark.parametrize(
    "tampered",
    [_carols_key(), None, "not base64!", base64.b64encode(bytes(32)).decode()],
    ids=["another-key", "missing", "not-base64", "all-zero"],
)
def test_a_directory_key_the_certificate_does_not_bind_is_refused(
    offline_net: Network, tmp_path: Path, tampered: str | None
) -> None:
    """The payee's certificate verifies and binds a key digest, but the registry's key is
    another (swapped, removed or damaged): a tampered directory. The payer neither seals for
    that key (whoever swapped it would read the payment) nor falls back to the clear (a
    silent downgrade): it refuses, before its SE signs or debits anything."""
    n = _net(offline_net)
    with offline_net.update():
        offline_net.wallets["bob"].encryption_key = tampered
    with offline_net.se("alice", "0000") as se:
        before = se.status(now())
    out = tmp_path / "pay.txt"
    r = run(*n, "wallet", "pay", "alice", "--to", "bob", "--amount", "1.00", "--out", out)
    assert r.code == 1
    assert "is not the one its certificate binds" in r.stderr and "nothing was signed" in r.stderr
    assert not out.exists()
    with offline_net.se("alice", "0000") as se:
        after = se.status(now())
    assert (after.balance, after.counter) == (before.balance, before.counter)
    # the payer's explicit choice: in the clear
    r = run(*n, "wallet", "pay", "alice", "--to", "bob", "--amount", "1.00", "--out", out,
            "--no-encrypt", "--json")  # fmt: skip
    assert r.code == 0 and r.json()["encrypted"] is False  # type: ignore[index]


@pytest.mark.parametrize("alg", ["p256", "ml-dsa-44"])
def test_wallet_create_and_sync_record_the_key_the_certificate_binds(
    tmp_path: Path, alg: str
) -> None:
    """Through the ledger: `wallet create` and `wallet sync` record, beside the certificate,
    the KEM key of the CSR the bank certified; a one-way payment is sealed for it."""
    d = tmp_path / "pilot"
    assert run("network", "init", d, "--banks", "Bank A", "--alg", alg).code == 0
    n = ["--network", str(d)]
    for name in ("alice", "bob"):
        assert run(*n, "account", "open", name, "--bank", "Bank A", "--deposit", "50").code == 0
        r = run(*n, "wallet", "create", name, "--bank", "Bank A", "--owner", name)
        assert r.code == 0, r.stderr
    assert run(*n, "wallet", "fund", "alice", "20").code == 0
    for step in ("created", "synced"):
        net = Network.open(d)
        bob = net.wallets["bob"]
        assert bob.certificate is not None and bob.encryption_key is not None, step
        key = base64.b64decode(bob.encryption_key)
        with net.se("bob", "0000") as se:
            assert key == se._s.encryption_key.public(), step  # type: ignore[union-attr]
            cert = se.trust.wallet_certificate(base64.b64decode(bob.certificate), None)
        assert cert.certifies_encryption_key(key), step
        pay = tmp_path / f"{step}.txt"
        r = run(*n, "wallet", "pay", "alice", "--to", "bob", "--amount", "1", "--out", pay,
                "--json")  # fmt: skip
        assert r.code == 0 and r.json()["encrypted"] is True, r.stderr  # type: ignore[index]
        assert run(*n, "wallet", "receive", "bob", pay).code == 0
        if step == "created":
            with net.update():  # the sync records the key again
                net.wallets["bob"].encryption_key = None
            assert run(*n, "wallet", "sync", "bob").code == 0


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


@pytest.mark.parametrize("relayed", ["swapped", "stripped"])
def test_a_request_key_the_payees_certificate_does_not_bind_is_not_sealed_for(
    offline_net: Network, tmp_path: Path, relayed: str
) -> None:
    """A request is unsigned: whoever carries it (the chat that brings it to the payer and the
    payment back) can put its own KEM key in it, open the payment and seal it again for the
    payee, who sees nothing amiss; or remove the key, and read the payment in the clear. A payer
    whose directory holds the payee's certificate, valid and binding a key, seals for that
    certified key instead: the carrier reads nothing and the payee opens it."""
    n = _net(offline_net)
    req, pay = tmp_path / "req.txt", tmp_path / "pay.txt"
    assert run(*n, "wallet", "request", "bob", "4.00", "--out", req).code == 0
    genuine = m.parse_request(files.read_message(str(req)))
    mallory = sealed.KemKey.generate(sealed.KemSuite.X25519)
    key = mallory.public() if relayed == "swapped" else None
    files.write_message(replace(genuine, encryption_key=key).encode(), str(req))
    r = run(*n, "wallet", "pay", "alice", "--request", req, "--out", pay, "--json")
    assert r.code == 0, r.stderr
    assert r.json()["encrypted"] is True  # type: ignore[index]
    data = files.read_message(str(pay))
    with pytest.raises(CannotDecrypt):
        mallory.open(data)
    r = run(*n, "wallet", "receive", "bob", pay, "--json")
    assert r.code == 0, r.stderr
    assert r.json()["amount"] == 400  # type: ignore[index]
