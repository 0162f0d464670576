"""Signing certificates and CRLs through a ``Signer`` that ``cryptography`` cannot use directly:
the TBS is signed by the signer and the DER assembled by ``x509sign``; ``cryptography`` and
``openssl`` (independent parsers and verifiers) are the oracles."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from offcash.crypto import algorithms, pki, x509sign
from offcash.crypto.algorithms import PrivateKey, PublicKey, SignatureAlgorithm
from offcash.domain.ids import WalletId
from offcash.domain.limits import DEFAULT_LIMITS
from offcash.issuance import Bank, CentralBank

T0 = 1_800_000_000
ALGS = [SignatureAlgorithm.P256, SignatureAlgorithm.ED25519]
needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl CLI")


@dataclass
class ForeignSigner:
    """A signer that is not a ``KeySigner`` (so ``x509sign`` takes the assembling path), like an
    HSM key, but whose key is in memory so the test needs no token."""

    key: PrivateKey
    corrupt: bool = False

    @property
    def algorithm(self) -> SignatureAlgorithm:
        return algorithms.algorithm_of(self.key)

    def public_key(self) -> PublicKey:
        return self.key.public_key()

    def sign(self, data: bytes) -> bytes:
        sig = algorithms.sign(self.key, data)
        return sig[:-1] + bytes([sig[-1] ^ 1]) if self.corrupt else sig


def test_tlv_lengths() -> None:
    assert x509sign.tlv(0x04, b"") == b"\x04\x00"
    assert x509sign.tlv(0x04, b"a" * 0x7F)[:2] == b"\x04\x7f"
    assert x509sign.tlv(0x04, b"a" * 0x80)[:3] == b"\x04\x81\x80"
    assert x509sign.tlv(0x30, b"a" * 0x100)[:4] == b"\x30\x82\x01\x00"
    assert x509sign.tlv(0x30, b"a" * 0x10000)[:5] == b"\x30\x83\x01\x00\x00"


@pytest.mark.parametrize("alg", ALGS, ids=lambda a: a.short)
def test_split_and_assemble_round_trip_cryptography_der(alg: SignatureAlgorithm) -> None:
    cb = CentralBank.create("Root", alg, T0)
    der = cb.certificate_der
    tbs, algorithm_identifier, signature = x509sign.split_signed(der)
    assert tbs == cb.certificate.tbs_certificate_bytes
    assert signature == cb.certificate.signature
    assert x509sign.assemble(tbs, algorithm_identifier, signature) == der
    crl = cb.certify_bank("B", T0).crl([(5, T0)], 1, T0)
    assert x509sign.assemble(*x509sign.split_signed(crl)) == crl


def test_split_refuses_malformed() -> None:
    der = CentralBank.create("Root", SignatureAlgorithm.P256, T0).certificate_der
    for bad in (der + b"\x00", der[:-1], b"\x31" + der[1:]):
        with pytest.raises(ValueError):
            x509sign.split_signed(bad)
    tbs, alg, sig = x509sign.split_signed(der)
    unused_bits = x509sign.tlv(0x30, tbs + alg + x509sign.tlv(0x03, b"\x01" + sig))
    with pytest.raises(ValueError, match="unused bits"):
        x509sign.split_signed(unused_bits)


def test_x509_signature_forms() -> None:
    r, s = 7, 2**255 + 3
    cose = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert x509sign.x509_signature(SignatureAlgorithm.P256, cose) == encode_dss_signature(r, s)
    assert x509sign.x509_signature(SignatureAlgorithm.ED25519, b"e" * 64) == b"e" * 64
    with pytest.raises(ValueError):
        x509sign.x509_signature(SignatureAlgorithm.P256, cose[:-1])


def chain(alg: SignatureAlgorithm) -> tuple[CentralBank, Bank, bytes, bytes]:
    """Root, bank, wallet certificate and CRL, all signed by ``ForeignSigner``s."""
    root_key = ForeignSigner(alg.generate())
    cb = CentralBank.create("Foreign Root", alg, T0, root_key)
    bank_key = ForeignSigner(alg.generate())
    bank = Bank(
        bank_key, pki.issue_bank(root_key, cb.certificate, bank_key.public_key(), "Bank F", T0)
    )
    wallet = bank.certify_key(
        alg.generate().public_key(), WalletId.random(), DEFAULT_LIMITS, 0, T0 + 10
    )
    crl = bank.crl([(x509.load_der_x509_certificate(wallet).serial_number, T0 + 20)], 1, T0 + 20)
    return cb, bank, wallet, crl


@pytest.mark.parametrize("alg", ALGS, ids=lambda a: a.short)
def test_foreign_signer_chain_verifies(alg: SignatureAlgorithm) -> None:
    cb, bank, wallet, crl = chain(alg)
    bank_cert = bank.certificate
    cb.certificate.verify_directly_issued_by(cb.certificate)
    bank_cert.verify_directly_issued_by(cb.certificate)
    x509.load_der_x509_certificate(wallet).verify_directly_issued_by(bank_cert)
    assert x509.load_der_x509_crl(crl).is_signature_valid(bank_cert.public_key())
    aki = bank_cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = cb.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest


def test_a_bad_token_signature_is_caught() -> None:
    bad = ForeignSigner(SignatureAlgorithm.ED25519.generate(), corrupt=True)
    with pytest.raises(InvalidSignature):
        pki.issue_root(bad, "Root", T0)


def openssl_verify(
    tmp: Path, root: bytes, bank: bytes, leaf: bytes, crl: bytes | None, at: int | None = T0 + 3600
) -> str:
    """``openssl verify`` of ``leaf`` under ``bank`` and ``root`` (with ``crl``) at time ``at``
    (None: now); its output."""

    def pem(name: str, der: bytes, is_crl: bool = False) -> str:
        obj = x509.load_der_x509_crl(der) if is_crl else x509.load_der_x509_certificate(der)
        (tmp / name).write_bytes(obj.public_bytes(serialization.Encoding.PEM))
        return str(tmp / name)

    cmd = ["openssl", "verify", "-CAfile", pem("root.pem", root), "-untrusted"]
    cmd += [pem("bank.pem", bank)] + (["-attime", str(at)] if at is not None else [])
    if crl is not None:
        cmd += ["-crl_check", "-CRLfile", pem("crl.pem", crl, True)]
    done = subprocess.run(
        [*cmd, pem("leaf.pem", leaf)], capture_output=True, text=True, timeout=30, check=False
    )
    return done.stdout + done.stderr


def openssl_crl_verify(tmp: Path, crl: bytes, issuer: bytes) -> str:
    """``openssl crl -verify`` of ``crl`` against ``issuer``; its output."""
    (tmp / "c.der").write_bytes(crl)
    (tmp / "i.pem").write_bytes(
        x509.load_der_x509_certificate(issuer).public_bytes(serialization.Encoding.PEM)
    )
    cmd = ["openssl", "crl", "-inform", "DER", "-in", str(tmp / "c.der"), "-noout", "-verify"]
    done = subprocess.run(
        [*cmd, "-CAfile", str(tmp / "i.pem")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.stdout + done.stderr


@needs_openssl
@pytest.mark.parametrize("alg", ALGS, ids=lambda a: a.short)
def test_openssl_verifies_foreign_signed_chain(alg: SignatureAlgorithm, tmp_path: Path) -> None:
    cb, bank, wallet, crl = chain(alg)
    bank_der = bank.certificate_der
    out = openssl_verify(tmp_path, cb.certificate_der, bank_der, wallet, None)
    assert out.strip().endswith(": OK"), out
    out = openssl_verify(tmp_path, cb.certificate_der, bank_der, wallet, crl)
    assert "revoked" in out, out
    assert "verify OK" in openssl_crl_verify(tmp_path, crl, bank_der)
    assert "verify OK" not in openssl_crl_verify(tmp_path, crl, cb.certificate_der)
