"""`offcash network migrate` end to end: a P-256 network with funded wallets moves to
ML-DSA-44; a wallet made before pays one made after, follows the migration and re-keys at its
sync, and is paid back under ML-DSA; a wallet that never synced stops paying when its P-256
certificate expires and re-keys at its late sync; no move back; the books balance."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path

from offcash.cli.config import Network, now
from offcash.encoding import cose, sealed
from offcash.transports import files

from cli_harness import Run, run

WEEK = 7 * 24 * 3600


def _alg(path: Path) -> str:
    return cose.decode_sign1(files.read_message(str(path))).alg.short


def _pay(
    n: list[str], payer: str, payee: str, amount: str, out: Path, env: dict[str, str] | None = None
) -> Run:
    """``wallet pay PAYER --to PAYEE`` (one-way, in the clear: the algorithm is visible)."""
    args = ["wallet", "pay", payer, "--to", payee, "--amount", amount, "--out", out, "--no-encrypt"]
    return run(*n, *args, env=env)


def _p256_network(d: Path) -> list[str]:
    """A P-256 network: alice (Bank A) and bob (Bank B) with wallets funded 100.00, and an
    account for carol (Bank A)."""
    assert run("network", "init", d, "--banks", "Bank A,Bank B").code == 0
    n = ["--network", str(d)]
    for name, bank in (("alice", "Bank A"), ("bob", "Bank B"), ("carol", "Bank A")):
        assert run(*n, "account", "open", name, "--bank", bank, "--deposit", "500").code == 0
    for name, bank in (("alice", "Bank A"), ("bob", "Bank B")):
        r = run(*n, "wallet", "create", f"{name}-phone", "--bank", bank, "--owner", name)
        assert r.code == 0, r.stderr
        assert run(*n, "wallet", "fund", f"{name}-phone", "100").code == 0
    return n


def test_a_network_migrates_and_its_wallets_follow(tmp_path: Path) -> None:
    d = tmp_path / "pilot"
    n = _p256_network(d)

    r = run(*n, "network", "migrate", "--alg", "ml-dsa-44", "--json")
    assert r.code == 0, r.stderr
    moved = r.json()
    assert isinstance(moved, dict)
    assert (moved["algorithm"], moved["legacy_algorithm"]) == ("ml-dsa-44", "p256")
    until = Network.open(d).config.params.legacy_until
    assert now() + WEEK - 60 <= until <= now() + WEEK + 60  # the P-256 certificates' end
    # JSON gives times as `wallet show --json` does: UTC text, not epoch seconds
    assert moved["legacy_until"] == dt.datetime.fromtimestamp(until, dt.UTC).strftime(
        "%Y-%m-%d %H:%M:%SZ"
    )
    for alg in ("p256", "ml-dsa-65"):  # no move back, and no second move
        r = run(*n, "network", "migrate", "--alg", alg)
        assert r.code == 1 and "algorithm not allowed" in r.stderr, r.stderr
    r = run(*n, "network", "migrate", "--alg", "ml-dsa")  # the choices as words, not a list repr
    assert r.code == 2 and "use one of p256, ed25519, ml-dsa-44, ml-dsa-65" in r.stderr, r.stderr

    assert (
        run(*n, "wallet", "create", "carol-phone", "--bank", "Bank A", "--owner", "carol").code == 0
    )
    assert run(*n, "wallet", "fund", "carol-phone", "50").code == 0
    # the old wallet pays the new one offline (P-256), the new one accepts it
    p1 = tmp_path / "p1.txt"
    r = run(
        *n, "wallet", "pay", "alice-phone", "--to", "carol-phone", "--amount", "10", "--out", p1
    )
    assert r.code == 0, r.stderr
    assert _alg(p1) == "p256"
    assert run(*n, "wallet", "receive", "carol-phone", p1).code == 0
    # the other way the old wallet refuses ML-DSA until it follows, at its sync
    p2 = tmp_path / "p2.txt"
    r = _pay(n, "carol-phone", "alice-phone", "5", p2)
    assert r.code == 0 and _alg(p2) == "ml-dsa-44"
    r = run(*n, "wallet", "receive", "alice-phone", p2)
    assert r.code == 1 and "algorithm not allowed" in r.stderr, r.stderr
    r = run(*n, "wallet", "sync", "alice-phone", "--json")
    assert r.code == 0, r.stderr
    assert r.json()["balance"] == 10_000 - 1_000  # type: ignore[index]
    assert run(*n, "wallet", "receive", "alice-phone", p2).code == 0
    p3 = tmp_path / "p3.txt"
    r = _pay(n, "alice-phone", "carol-phone", "2", p3)
    assert r.code == 0 and _alg(p3) == "ml-dsa-44"  # re-keyed: its P-256 key is gone
    assert run(*n, "wallet", "receive", "carol-phone", p3).code == 0
    for name in ("alice-phone", "carol-phone"):
        assert run(*n, "wallet", "sync", name).code == 0, name

    # bob never synced: once his P-256 certificate has expired he pays nothing more...
    late = {"OFFCASH_NOW": str(until + 60)}
    r = _pay(n, "bob-phone", "carol-phone", "1", tmp_path / "p4.txt", env=late)
    assert r.code == 1 and "expired" in r.stderr, r.stderr
    # ...until his late sync follows the migration and re-keys him, balance carried over
    r = run(*n, "wallet", "sync", "bob-phone", "--json", env=late)
    assert r.code == 0, r.stderr
    assert r.json()["balance"] == 10_000  # type: ignore[index]
    p5 = tmp_path / "p5.txt"
    r = _pay(n, "bob-phone", "carol-phone", "1", p5, env=late)
    assert r.code == 0 and _alg(p5) == "ml-dsa-44", r.stderr

    audit = run(*n, "ledger", "audit", "--json")
    assert audit.code == 0, audit.stderr
    body = json.loads(audit.stdout)
    assert body["balanced"] and body["double_spends"] == []


def test_funding_a_wallet_that_has_not_followed_re_keys_it_first(tmp_path: Path) -> None:
    """The new bank signs vouchers under ML-DSA: a P-256 wallet syncs (and re-keys) before it
    loads one, so the owner's account is never debited for a voucher the SE would refuse."""
    n = _p256_network(tmp_path / "pilot")
    assert run(*n, "network", "migrate", "--alg", "ml-dsa-65").code == 0
    r = run(*n, "wallet", "fund", "alice-phone", "20", "--json")
    assert r.code == 0, r.stderr
    assert r.json()["balance"] == 12_000  # type: ignore[index]
    pay = tmp_path / "p.txt"
    assert _pay(n, "alice-phone", "bob-phone", "1", pay).code == 0
    assert _alg(pay) == "ml-dsa-65"
    assert run(*n, "account", "show", "alice", "--json").json()["balance"] == 38_000  # type: ignore[index]


def test_migrate_says_until_when_as_a_date_and_receive_says_to_sync(tmp_path: Path) -> None:
    """Before the fix `network migrate` said "accepted until 1796479002 (epoch seconds)", and a
    wallet that had not synced since refused a re-keyed payer's payment with only "signature
    algorithm not allowed by the network: ml-dsa-44", no next step."""
    n = _p256_network(tmp_path / "pilot")
    r = run(*n, "network", "migrate", "--alg", "ml-dsa-44")
    assert r.code == 0, r.stderr
    until = Network.open(tmp_path / "pilot").config.params.legacy_until
    day = dt.datetime.fromtimestamp(until, dt.UTC).strftime("%Y-%m-%d")
    assert f"p256 certificates are accepted until {day} " in r.stdout, r.stdout
    assert str(until) not in r.stdout
    assert run(*n, "wallet", "sync", "alice-phone").code == 0  # alice re-keys, bob does not
    p = tmp_path / "p.txt"
    assert _pay(n, "alice-phone", "bob-phone", "3", p).code == 0 and _alg(p) == "ml-dsa-44"
    r = run(*n, "wallet", "receive", "bob-phone", p)
    assert r.code == 1 and "`offcash wallet sync bob-phone`" in r.stderr, r.stderr
    assert run(*n, "wallet", "sync", "bob-phone").code == 0
    assert run(*n, "wallet", "receive", "bob-phone", p).code == 0


def test_the_registry_follows_the_sealing_key_to_the_hybrid_suite(tmp_path: Path) -> None:
    """At bob's re-key sync his SE moves from X25519 to ML-KEM-768 + X25519: the registry
    records the new key beside the new certificate, a one-way payment by a payer that has
    followed the migration is sealed for it, and one sealed for his X25519 key before the sync
    still opens after it."""
    d = tmp_path / "pilot"
    n = _p256_network(d)
    before = tmp_path / "before.txt"
    r = run(*n, "wallet", "pay", "alice-phone", "--to", "bob-phone", "--amount", "1", "--out",
            before, "--json")  # fmt: skip
    assert r.code == 0 and r.json()["encrypted"] is True, r.stderr  # type: ignore[index]
    key = Network.open(d).wallets["bob-phone"].encryption_key
    assert key is not None and len(base64.b64decode(key)) == 32
    assert run(*n, "network", "migrate", "--alg", "ml-dsa-44").code == 0
    assert run(*n, "wallet", "sync", "bob-phone").code == 0, "re-keys"
    key = Network.open(d).wallets["bob-phone"].encryption_key
    assert key is not None and len(base64.b64decode(key)) == 1_216
    # alice's store cannot verify bob's ML-DSA certificate until she follows: in the clear
    clear = tmp_path / "clear.txt"
    r = run(*n, "wallet", "pay", "alice-phone", "--to", "bob-phone", "--amount", "3", "--out",
            clear, "--json")  # fmt: skip
    assert r.code == 0 and r.json()["encrypted"] is False, r.stderr  # type: ignore[index]
    assert run(*n, "wallet", "sync", "alice-phone").code == 0
    after = tmp_path / "after.txt"
    r = run(*n, "wallet", "pay", "alice-phone", "--to", "bob-phone", "--amount", "2", "--out",
            after, "--json")  # fmt: skip
    assert r.code == 0 and r.json()["encrypted"] is True, r.stderr  # type: ignore[index]
    assert sealed.is_sealed(files.read_message(str(after)))
    for pay, amount in ((before, 100), (after, 200), (clear, 300)):
        r = run(*n, "wallet", "receive", "bob-phone", pay, "--json")
        assert r.code == 0, r.stderr
        got = r.json()
        assert isinstance(got, dict) and got["amount"] == amount
        assert got["encrypted"] is (pay != clear)


def test_a_replayed_pre_migration_directory_entry_is_not_sealed_for(tmp_path: Path) -> None:
    """After bob re-keyed and his X25519 key retired (a sync past its old certificate's end plus
    max_payment_age and clock_skew), a directory put back to his pre-migration certificate and
    X25519 key (both once genuine, so the certificate binds the key) must not make a payer seal
    for it: bob can no longer open such a payment (his money would wait, unspendable, for the
    ledger to release it as torn), and the classical key is what the move to ML-KEM was for.
    That certificate expired long ago: a payer checks it is valid now, as PROTOCOL.md section 8
    ("Re-keying the sealing key") assumes, and a stale entry goes in the clear."""
    d = tmp_path / "pilot"
    n = _p256_network(d)
    old = Network.open(d).wallets["bob-phone"]
    old_certificate, old_key = old.certificate, old.encryption_key
    assert old_certificate is not None and old_key is not None
    assert run(*n, "network", "migrate", "--alg", "ml-dsa-44").code == 0
    params = Network.open(d).config.params
    late = {"OFFCASH_NOW": str(now() + 2 * WEEK + params.max_payment_age + params.clock_skew)}
    for name in ("bob-phone", "alice-phone"):
        assert run(*n, "wallet", "sync", name).code == 0, "re-keys"
        assert run(*n, "wallet", "sync", name, env=late).code == 0, "past the retirement"
    assert _pay_bob_by_an_old_entry(n, d, tmp_path, old_certificate, old_key, late) is False


def test_an_expired_certificate_of_the_networks_algorithm_is_still_sealed_for(
    tmp_path: Path,
) -> None:
    """Without a migration a wallet's sealing key never changes: a directory whose certificate
    of the payee has expired (the payee did not sync, or the folder is behind) still binds the
    key its SE holds, so a one-way payment is sealed for it, not sent in the clear."""
    d = tmp_path / "pilot"
    n = _p256_network(d)
    old = Network.open(d).wallets["bob-phone"]
    old_certificate, old_key = old.certificate, old.encryption_key
    late = {"OFFCASH_NOW": str(now() + WEEK + 3_600)}  # bob's first certificate has expired
    for name in ("bob-phone", "alice-phone"):
        assert run(*n, "wallet", "sync", name, env=late).code == 0
    assert _pay_bob_by_an_old_entry(n, d, tmp_path, old_certificate, old_key, late) is True


def _pay_bob_by_an_old_entry(
    n: list[str],
    d: Path,
    tmp_path: Path,
    certificate: str | None,
    key: str | None,
    env: dict[str, str],
) -> bool:
    """Put bob's directory entry back to ``certificate`` and ``key``, pay him one-way from
    alice and have him receive it; whether the payment was sealed."""
    net = Network.open(d)
    with net.update():
        net.wallets["bob-phone"].certificate = certificate
        net.wallets["bob-phone"].encryption_key = key
    pay = tmp_path / "pay.txt"
    r = run(*n, "wallet", "pay", "alice-phone", "--to", "bob-phone", "--amount", "1", "--out",
            pay, "--json", env=env)  # fmt: skip
    assert r.code == 0, r.stderr
    encrypted = r.json()["encrypted"]  # type: ignore[index]
    r = run(*n, "wallet", "receive", "bob-phone", pay, "--json", env=env)
    assert r.code == 0, r.stderr
    return bool(encrypted)
