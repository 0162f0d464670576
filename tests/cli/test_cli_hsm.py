"""``network init --hsm``: the CA keys live in a SoftHSM2 token, end to end through the CLI.

The ledger database must hold no private key material (every table's bytes are scanned for the
PKCS#8 headers, a scan shown to find them in a network made without an HSM), and everything the
banks sign (bank CA, wallet certificates renewed at sync, CRLs, vouchers, acknowledgements)
verifies with ``openssl`` and with the wallets' own checks. SQLite, and PostgreSQL through
``--db`` in a database made for the test."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography import x509

from backends import PG_URL, pg_required, pg_unreachable
from crypto.test_x509sign import openssl_crl_verify, openssl_verify
from offcash.crypto import hsm
from offcash.encoding import cose
from offcash.ledger.db import normalize_url
from softhsm import SoftHsm, new_softhsm, softhsm

from cli_harness import run

#: DER PrivateKeyInfo headers: version 0 then the id-ecPublicKey / id-Ed25519 AlgorithmIdentifier.
PKCS8_HEADERS = (
    bytes.fromhex("020100301306072a8648ce3d0201"),  # EC (P-256: then the curve OID)
    bytes.fromhex("020100300506032b6570"),  # Ed25519
)
ROOT = Path(__file__).resolve().parents[2]


def all_bytes(url: str) -> list[bytes]:
    """Every value of every table of the ledger at ``url``, as bytes."""
    engine = sa.create_engine(normalize_url(url))
    out: list[bytes] = []
    try:
        meta = sa.MetaData()
        meta.reflect(engine)
        assert "authorities" in meta.tables
        with engine.connect() as conn:
            for table in meta.sorted_tables:
                for row in conn.execute(sa.select(table)):
                    for v in row:
                        if isinstance(v, bytes | bytearray | memoryview):
                            out.append(bytes(v))
                        elif v is not None:
                            out.append(str(v).encode())
    finally:
        engine.dispose()
    return out


def key_material(url: str) -> list[bytes]:
    """The values of the ledger at ``url`` that contain a PKCS#8 private key header."""
    return [v for v in all_bytes(url) if any(h in v for h in PKCS8_HEADERS)]


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    """None (SQLite in the network folder) or a fresh PostgreSQL database's URL."""
    if request.param == "sqlite":
        yield None
        return
    reason = pg_unreachable()
    if reason:
        if pg_required():
            pytest.fail(reason)
        pytest.skip(reason)
    name = "offcash_hsm_" + uuid.uuid4().hex[:10]
    admin = sa.create_engine(normalize_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield PG_URL.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def check_references(url: str, s: SoftHsm) -> list[sa.Row[tuple[object, ...]]]:
    """The authorities rows, once checked to hold PKCS#11 references only (no key, no PIN)."""
    engine = sa.create_engine(normalize_url(url))
    with engine.connect() as c:
        rows = c.execute(sa.text("select name, key_der, cert_der, crl_der from authorities")).all()
    engine.dispose()
    assert {r[0] for r in rows} == {"Central Bank", "Bank A", "Bank B"}
    for _, ref, _, _ in rows:
        parsed = hsm.KeyRef.parse(bytes(ref).decode())
        assert parsed.token == s.label and parsed.pin_source == str(s.pin_file.resolve())
    assert key_material(url) == []
    assert not any(s.pin.encode() in v for v in all_bytes(url) if b"pkcs11:" in v)
    return list(rows)


def test_pilot_with_ca_keys_in_softhsm(
    tmp_path: Path, db_url: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = softhsm()
    monkeypatch.delenv(hsm.PIN_ENV, raising=False)
    monkeypatch.delenv(hsm.PIN_FILE_ENV, raising=False)
    d = tmp_path / "net"
    init = ["network", "init", d, "--banks", "Bank A,Bank B", "--json"]
    init += ["--hsm", s.module, "--hsm-token", s.label, "--hsm-pin-file", s.pin_file]
    r = run(*init, *(["--db", db_url] if db_url else []))
    assert r.code == 0, r.stderr
    assert r.json()["ca_keys"] == "hsm" and "unencrypted" not in r.stderr  # type: ignore[index]
    url = db_url or f"sqlite:///{d / 'ledger.sqlite'}"
    n = ["--network", str(d)]
    for name, bank in (("alice", "Bank A"), ("bob", "Bank B")):
        assert run(*n, "account", "open", name, "--bank", bank, "--deposit", "500").code == 0
        r = run(*n, "wallet", "create", f"{name}-phone", "--bank", bank, "--owner", name)
        assert r.code == 0, r.stderr
    assert run(*n, "wallet", "fund", "alice-phone", "100").code == 0  # voucher signed in the token
    req, pay, pay2 = tmp_path / "req", tmp_path / "pay", tmp_path / "pay2"
    assert run(*n, "wallet", "request", "bob-phone", "2.50", "--out", req).code == 0
    pay_args = ("--no-encrypt",)  # the test reads the payer's certificate from the payment
    assert (
        run(*n, "wallet", "pay", "alice-phone", "--request", req, "--out", pay, *pay_args).code == 0
    )
    assert run(*n, "wallet", "receive", "bob-phone", pay).code == 0
    for name in ("bob-phone", "alice-phone"):  # ack and renewed certificate from the token
        r = run(*n, "wallet", "sync", name, "--json")
        assert r.code == 0, r.stderr
    assert run(*n, "wallet", "request", "bob-phone", "1.00", "--out", req).code == 0
    assert (
        run(*n, "wallet", "pay", "alice-phone", "--request", req, "--out", pay2, *pay_args).code
        == 0
    )
    assert run(*n, "wallet", "receive", "bob-phone", pay2).code == 0
    assert run(*n, "wallet", "sync", "bob-phone").code == 0
    assert run(*n, "wallet", "show", "bob-phone", "--json").json()["balance"] == 350  # type: ignore[index]
    assert run(*n, "wallet", "report-lost", "alice-phone").code == 0  # CRL signed in the token
    audit = run(*n, "ledger", "audit", "--json").json()
    assert isinstance(audit, dict) and audit["balanced"], audit

    rows = check_references(url, s)

    # openssl verifies what the token signed: the bank CA, the renewed wallet certificate, the CRL.
    certs = {r[0]: bytes(r[2]) for r in rows}
    crl = next(bytes(r[3]) for r in rows if r[0] == "Bank A")
    renewed = cose.decode_sign1(pay2.read_bytes()).certificate_der
    first = cose.decode_sign1(pay.read_bytes()).certificate_der
    assert renewed != first
    root, bank_a = certs["Central Bank"], certs["Bank A"]
    for leaf in (first, renewed):
        out = openssl_verify(tmp_path, root, bank_a, leaf, None, at=None)
        assert out.strip().endswith(": OK"), out
    out = openssl_verify(tmp_path, root, bank_a, renewed, crl, at=None)
    assert "revoked" in out, out
    assert "verify OK" in openssl_crl_verify(tmp_path, crl, bank_a)
    wallet = x509.load_der_x509_certificate(renewed)
    assert x509.load_der_x509_crl(crl).get_revoked_certificate_by_serial_number(
        wallet.serial_number
    )


def test_without_hsm_the_scan_finds_the_keys_and_init_warns(tmp_path: Path) -> None:
    d = tmp_path / "net"
    r = run("network", "init", d, "--json")
    assert r.code == 0 and r.json()["ca_keys"] == "ledger-database"  # type: ignore[index]
    assert "stored unencrypted in the ledger database" in r.stderr
    assert len(key_material(f"sqlite:///{d / 'ledger.sqlite'}")) == 3


def _cli(args: list[str | Path], hsm_env: SoftHsm, **env: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a fresh process (its own PKCS#11 login)."""
    full = {**hsm_env.env(), "PYTHONPATH": str(ROOT / "src")}
    full.pop(hsm.PIN_ENV, None)
    full.pop(hsm.PIN_FILE_ENV, None)
    full.update(env)
    return subprocess.run(
        [sys.executable, "-m", "offcash.cli", *map(str, args)],
        env=full,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_hsm_refusals_in_a_fresh_process(tmp_path: Path) -> None:
    s = new_softhsm(tmp_path / "hsm", label="refusals", pin="424242")
    wrong = tmp_path / "wrong"
    wrong.write_text("000000\n")
    base: list[str | Path] = ["network", "init", tmp_path / "n1", "--hsm", s.module]
    r = _cli([*base, "--hsm-token", "refusals", "--hsm-pin-file", wrong], s)
    assert r.returncode == 1 and "wrong PIN" in r.stderr, r.stderr
    r = _cli([*base, "--hsm-token", "nope", "--hsm-pin-file", s.pin_file], s)
    assert r.returncode == 1 and "no PKCS#11 token labelled 'nope'" in r.stderr, r.stderr
    r = _cli([*base, "--hsm-token", "refusals"], s)
    assert r.returncode == 1 and "OFFCASH_HSM_PIN" in r.stderr, r.stderr
    r = _cli(["network", "init", tmp_path / "n2", "--hsm-token", "refusals"], s)
    assert r.returncode == 2 and "need --hsm" in r.stderr
    # A good init, then a command with the PIN file gone: a clear refusal, nothing changed.
    pin = tmp_path / "pin"
    pin.write_text(s.pin)
    r = _cli([*base, "--hsm-token", "refusals", "--hsm-pin-file", pin, "--alg", "ed25519"], s)
    assert r.returncode == 0, r.stderr
    n = ["--network", tmp_path / "n1"]
    pin.unlink()
    r = _cli([*n, "account", "open", "alice", "--bank", "Bank A"], s)
    assert r.returncode == 1 and "cannot read the HSM PIN file" in r.stderr, r.stderr
    r = _cli([*n, "account", "open", "alice", "--bank", "Bank A"], s, OFFCASH_HSM_PIN=s.pin)
    assert r.returncode == 0, r.stderr
    assert os.environ.get("SOFTHSM2_CONF") != str(s.conf)  # the in-process token is untouched
