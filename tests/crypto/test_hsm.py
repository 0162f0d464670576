"""CA keys in a SoftHSM2 token: references, PINs, key attributes, COSE and X.509 signing (checked
by ``cryptography`` and ``openssl``, not by the code under test)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from pkcs11 import Attribute, ObjectClass
from pkcs11.exceptions import AttributeSensitive

from crypto.test_x509sign import openssl_crl_verify, openssl_verify
from offcash.crypto import algorithms, hsm
from offcash.crypto.algorithms import SignatureAlgorithm
from offcash.domain.ids import WalletId
from offcash.domain.limits import DEFAULT_LIMITS
from offcash.issuance import CentralBank
from offcash.protocol import messages as m
from softhsm import SoftHsm, softhsm

T0 = 1_800_000_000
ALGS = [SignatureAlgorithm.P256, SignatureAlgorithm.ED25519]


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SoftHsm, hsm.Token]]:
    s = softhsm()
    monkeypatch.setenv(hsm.PIN_ENV, s.pin)
    yield s, hsm.open_token(s.module, s.label)


def test_key_ref_uri_round_trip() -> None:
    ref = hsm.KeyRef("/usr/lib/x.so", "tok;en", "Bank A/1", b"\x00\xff;=", "/run/pin file")
    uri = ref.uri()
    assert uri.startswith("pkcs11:token=tok%3Ben;object=Bank%20A%2F1;id=%00%FF%3B%3D?")
    assert "module-path=/usr/lib/x.so" in uri and "pin-source=file:/run/pin%20file" in uri
    assert hsm.KeyRef.parse(uri) == ref
    no_pin = hsm.KeyRef("/m.so", "t", "k", b"\x01")
    assert hsm.KeyRef.parse(no_pin.uri()) == no_pin


@pytest.mark.parametrize(
    "uri",
    [
        "pkcs12:token=t;object=k;id=%01?module-path=/m.so",
        "pkcs11:token=t;object=k?module-path=/m.so",
        "pkcs11:token=t;object=k;id=%01",
        "pkcs11:token=t;objectk;id=%01?module-path=/m.so",
        "pkcs11:token=t;object=k;id=%01?module-path=/m.so&pin-source=env:PIN",
    ],
)
def test_key_ref_refuses_bad_uris(uri: str) -> None:
    with pytest.raises(hsm.HsmError):
        hsm.KeyRef.parse(uri)


def test_pin_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(hsm.PIN_ENV, raising=False)
    monkeypatch.delenv(hsm.PIN_FILE_ENV, raising=False)
    with pytest.raises(hsm.HsmError, match="OFFCASH_HSM_PIN"):
        hsm.read_pin()
    (tmp_path / "a").write_text("1111\n")
    (tmp_path / "b").write_text("2222")
    (tmp_path / "empty").write_text("\n")
    assert hsm.read_pin(str(tmp_path / "a")) == "1111"
    with pytest.raises(hsm.HsmError, match="empty"):
        hsm.read_pin(str(tmp_path / "empty"))
    with pytest.raises(hsm.HsmError, match="cannot read"):
        hsm.read_pin(str(tmp_path / "missing"))
    monkeypatch.setenv(hsm.PIN_FILE_ENV, str(tmp_path / "b"))
    assert hsm.read_pin(str(tmp_path / "a")) == "2222"
    monkeypatch.setenv(hsm.PIN_ENV, "3333")
    assert hsm.read_pin(str(tmp_path / "a")) == "3333"


def test_low_s() -> None:
    n = hsm.P256_ORDER
    r = (5).to_bytes(32, "big")
    assert hsm.low_s(r + (n // 2).to_bytes(32, "big")) == r + (n // 2).to_bytes(32, "big")
    assert hsm.low_s(r + (n - 3).to_bytes(32, "big")) == r + (3).to_bytes(32, "big")


@pytest.mark.parametrize("alg", ALGS, ids=lambda a: a.short)
def test_token_key_signs_and_never_leaves(
    alg: SignatureAlgorithm, token: tuple[SoftHsm, hsm.Token]
) -> None:
    _, tok = token
    signer = tok.generate(alg, f"test {alg.short}")
    assert signer.algorithm is alg
    for i in range(24):  # P-256: every signature low-S (about half would not be without it)
        data = b"message %d" % i
        sig = signer.sign(data)
        assert algorithms.verify(signer.public_key(), sig, data)
        if alg is SignatureAlgorithm.P256:
            assert int.from_bytes(sig[32:], "big") <= hsm.P256_ORDER // 2
    assert not algorithms.verify(signer.public_key(), signer.sign(b"a"), b"b")
    private = tok.session.get_key(
        object_class=ObjectClass.PRIVATE_KEY, label=signer.ref.label, id=signer.ref.key_id
    )
    assert private[Attribute.SENSITIVE] and not private[Attribute.EXTRACTABLE]
    assert private[Attribute.TOKEN] and private[Attribute.PRIVATE]
    with pytest.raises(AttributeSensitive):
        private[Attribute.VALUE]
    again = hsm.signer_for(signer.ref.uri())  # found again by its stored reference
    assert algorithms.spki(again.public_key()) == algorithms.spki(signer.public_key())


def test_unknown_key_and_algorithm_mismatch(token: tuple[SoftHsm, hsm.Token]) -> None:
    s, tok = token
    with pytest.raises(hsm.HsmError, match="no unique key"):
        tok.signer(hsm.KeyRef(s.module, s.label, "nobody", b"\x00" * 8))
    signer = tok.generate(SignatureAlgorithm.P256, "mismatch")
    with pytest.raises(hsm.HsmError, match="not ed25519"):
        tok.signer(signer.ref, SignatureAlgorithm.ED25519)


@pytest.mark.parametrize("alg", ALGS, ids=lambda a: a.short)
def test_hsm_signed_chain_crl_and_cose(
    alg: SignatureAlgorithm, token: tuple[SoftHsm, hsm.Token], tmp_path: Path
) -> None:
    _, tok = token
    cb = CentralBank.create("HSM Root", alg, T0, tok.generate(alg, "HSM Root"))
    bank = cb.certify_bank("HSM Bank", T0)
    assert isinstance(bank.key, hsm.HsmSigner)  # made in the token, next to the root key
    wallet_key = alg.generate()
    wallet = bank.certify_key(wallet_key.public_key(), WalletId.random(), DEFAULT_LIMITS, 0, T0)
    serial = x509.load_der_x509_certificate(wallet).serial_number
    crl = bank.crl([(serial, T0 + 60)], 1, T0 + 60)
    if shutil.which("openssl"):
        out = openssl_verify(tmp_path, cb.certificate_der, bank.certificate_der, wallet, None)
        assert out.strip().endswith(": OK"), out
        out = openssl_verify(tmp_path, cb.certificate_der, bank.certificate_der, wallet, crl)
        assert "revoked" in out, out
        assert "verify OK" in openssl_crl_verify(tmp_path, crl, bank.certificate_der)
    voucher = m.parse_voucher(bank.voucher(WalletId.random(), 500, "EUR", T0))
    env = voucher.envelope
    assert env.alg is alg and env.certificate_der == bank.certificate_der
    bank_public = bank.certificate.public_key()
    assert algorithms.verify(bank_public, env.signature, env.to_be_signed())  # type: ignore[arg-type]


def test_untrusted_modules_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lib = tmp_path / "lib.so"
    lib.write_bytes(b"\x7fELF")
    lib.chmod(0o666)
    with pytest.raises(hsm.HsmError, match="writable by others"):
        hsm.check_module(str(lib))
    lib.chmod(0o644)
    hsm.check_module(str(lib))  # tmp_path's folders are the user's, not writable by others
    with pytest.raises(hsm.HsmError, match="absolute"):
        hsm.check_module("lib.so")
    with pytest.raises(hsm.HsmError, match="no PKCS#11 module"):
        hsm.check_module(str(tmp_path / "missing.so"))
    with pytest.raises(hsm.HsmError, match="not a regular file"):
        hsm.check_module(str(tmp_path))
    monkeypatch.setenv(hsm.PIN_ENV, "1234")
    lib.chmod(0o646)
    with pytest.raises(hsm.HsmError, match="writable by others"):  # a reference in the ledger
        hsm.signer_for(hsm.KeyRef(str(lib), "t", "k", b"\x01").uri())


@dataclass(frozen=True)
class FakeAlgorithm:
    short: str


def test_algorithms_without_a_pkcs11_mechanism_are_refused(
    token: tuple[SoftHsm, hsm.Token],
) -> None:
    """ML-DSA (added by another branch) has no PKCS#11 v2.40 / SoftHSM2 mechanism: refused."""
    _, tok = token
    ml_dsa = FakeAlgorithm("ml-dsa-65")
    with pytest.raises(hsm.HsmError, match="ml-dsa-65 keys cannot be kept in a PKCS#11 token"):
        tok.generate(ml_dsa, "pq")  # type: ignore[arg-type]
