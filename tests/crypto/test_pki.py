"""The two-tier PKI: chains validate with cryptography's verifier and with ``openssl verify``."""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import verification

from offcash.crypto import der, pki
from offcash.crypto.algorithms import SignatureAlgorithm
from offcash.crypto.trust import TrustStore
from offcash.domain.ids import WalletId
from offcash.domain.limits import DEFAULT_LIMITS, Limits
from offcash.errors import DecodeError
from offcash.issuance import CentralBank

from factories import make_signer
from harness import T0, PilotNetwork

DAY = 86400
needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl CLI")
_MLDSA = (SignatureAlgorithm.ML_DSA_44, SignatureAlgorithm.ML_DSA_65)


def _skip_unless_openssl_knows(alg: SignatureAlgorithm) -> None:
    """Skip an ``openssl verify`` check that this machine's openssl cannot run: ML-DSA needs
    OpenSSL 3.5 (Debian 12 ships 3.0). ML-DSA chains are checked by an independent
    implementation instead (``test_mldsa_chain_verifies_with_an_independent_implementation``)."""
    if alg not in _MLDSA:
        return
    listed = subprocess.run(
        ["openssl", "list", "-signature-algorithms"], capture_output=True, text=True, check=False
    )
    if "ML-DSA" not in listed.stdout.upper():
        version = subprocess.run(
            ["openssl", "version"], capture_output=True, text=True, check=False
        ).stdout
        pytest.skip(f"{version.strip()} has no ML-DSA (OpenSSL 3.5 or later has)")


def _cert(der: bytes) -> x509.Certificate:
    return x509.load_der_x509_certificate(der)


def test_certificate_profiles(network: PilotNetwork) -> None:
    s = make_signer(network, limits=Limits(1, 2, 3, 4, 5), counter_base=9)
    root, bank, wallet = (
        network.central_bank.certificate,
        network.banks[0].certificate,
        _cert(s.cert),
    )
    bc = x509.BasicConstraints
    assert root.extensions.get_extension_for_class(bc).value == bc(ca=True, path_length=1)
    assert bank.extensions.get_extension_for_class(bc).value == bc(ca=True, path_length=0)
    assert wallet.extensions.get_extension_for_class(bc).value == bc(ca=False, path_length=None)
    assert wallet.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    assert wallet.not_valid_after_utc - wallet.not_valid_before_utc == (
        dt.timedelta(days=7) + pki.CERTIFICATE_BACKDATE
    )
    assert dt.timedelta(days=7) == pki.DEFAULT_WALLET_VALIDITY
    assert wallet.issuer == bank.subject and bank.issuer == root.subject
    parsed = TrustStore.create(
        network.central_bank.certificate_der, network.bank_ders
    ).wallet_certificate(s.cert, T0)
    assert (parsed.wallet_id, parsed.limits, parsed.counter_base) == (
        s.wallet_id,
        Limits(1, 2, 3, 4, 5),
        9,
    )
    backdate = int(pki.CERTIFICATE_BACKDATE.total_seconds())
    assert (parsed.not_before, parsed.not_after) == (T0 - backdate, T0 + 7 * DAY)
    assert parsed.bank == "Bank A" and parsed.algorithm is network.params.algorithm


def test_bank_sets_the_validity(network: PilotNetwork) -> None:
    s = make_signer(network, validity=dt.timedelta(hours=1))
    cert = _cert(s.cert)
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == (
        dt.timedelta(hours=1) + pki.CERTIFICATE_BACKDATE
    )


# --- cryptography.x509.verification ----------------------------------------------------------


def test_webpki_validates_p256(p256: PilotNetwork) -> None:
    s = make_signer(p256)
    chain = pki.validate_with_webpki(
        p256.central_bank.certificate_der, [p256.bank_ders[0]], s.cert, T0 + 3600
    )
    assert [pki.common_name(c.subject) for c in chain] == [
        str(s.wallet_id),
        "Bank A",
        "Test Central Bank",
    ]
    with pytest.raises(verification.VerificationError):
        pki.validate_with_webpki(
            p256.central_bank.certificate_der, [p256.bank_ders[0]], s.cert, T0 + 8 * DAY
        )
    with pytest.raises(verification.VerificationError):  # bank B did not issue it
        pki.validate_with_webpki(p256.central_bank.certificate_der, [p256.bank_ders[1]], s.cert, T0)
    rogue = CentralBank.create("Test Central Bank", p256.params.algorithm, T0 - DAY)
    with pytest.raises(verification.VerificationError):
        pki.validate_with_webpki(rogue.certificate_der, [p256.bank_ders[0]], s.cert, T0)


def test_webpki_profile_refuses_ed25519() -> None:
    """A documented limitation: the WebPKI profile of ``cryptography.x509.verification`` admits
    no Ed25519 key, so Ed25519 chains are checked by ``TrustStore`` and ``openssl verify``."""
    net = PilotNetwork.create(SignatureAlgorithm.ED25519)
    s = make_signer(net)
    with pytest.raises(verification.VerificationError, match="public key algorithm"):
        pki.validate_with_webpki(net.central_bank.certificate_der, [net.bank_ders[0]], s.cert, T0)


# --- openssl verify -------------------------------------------------------------------------


def _pem(path: Path, der: bytes, crl: bool = False) -> str:
    obj = x509.load_der_x509_crl(der) if crl else _cert(der)
    path.write_bytes(obj.public_bytes(serialization.Encoding.PEM))
    return str(path)


def _openssl_verify(
    tmp: Path,
    net: PilotNetwork,
    wallet: bytes,
    at: int,
    crl: bytes | None = None,
    bank: int = 0,
) -> subprocess.CompletedProcess[str]:
    cmd = [
        "openssl",
        "verify",
        "-CAfile",
        _pem(tmp / "root.pem", net.central_bank.certificate_der),
        "-untrusted",
        _pem(tmp / "bank.pem", net.bank_ders[bank]),
        "-attime",
        str(at),
    ]
    if crl is not None:
        cmd += ["-crl_check", "-CRLfile", _pem(tmp / "crl.pem", crl, crl=True)]
    cmd.append(_pem(tmp / "wallet.pem", wallet))
    return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=30)


@needs_openssl
def test_openssl_verifies_the_chain(network: PilotNetwork, tmp_path: Path) -> None:
    _skip_unless_openssl_knows(network.params.algorithm)
    s = make_signer(network)
    ok = _openssl_verify(tmp_path, network, s.cert, T0 + 3600)
    assert ok.returncode == 0 and ok.stdout.strip().endswith(": OK"), ok.stdout + ok.stderr
    backdate = int(pki.CERTIFICATE_BACKDATE.total_seconds())
    assert _openssl_verify(tmp_path, network, s.cert, T0 - backdate + 1).returncode == 0
    for at in (T0 - backdate - 60, T0 + 7 * DAY + 60):
        late = _openssl_verify(tmp_path, network, s.cert, at)
        assert late.returncode != 0, late.stdout
    other_bank = _openssl_verify(tmp_path, network, s.cert, T0 + 60, bank=1)
    assert other_bank.returncode != 0


@needs_openssl
def test_openssl_sees_the_revocation(network: PilotNetwork, tmp_path: Path) -> None:
    _skip_unless_openssl_knows(network.params.algorithm)
    s = make_signer(network)
    serial = _cert(s.cert).serial_number
    bank = network.banks[0]
    clean = _openssl_verify(tmp_path, network, s.cert, T0 + 3600, crl=bank.crl([(7, T0)], 1, T0))
    assert clean.returncode == 0, clean.stdout + clean.stderr
    revoked = _openssl_verify(
        tmp_path, network, s.cert, T0 + 3600, crl=bank.crl([(serial, T0)], 2, T0)
    )
    assert revoked.returncode != 0 and "revoked" in (revoked.stdout + revoked.stderr)


@pytest.mark.parametrize("alg", _MLDSA, ids=lambda a: a.short)
def test_mldsa_chain_verifies_with_an_independent_implementation(alg: SignatureAlgorithm) -> None:
    """Every ML-DSA signature of the chain (root self-signature, bank CA, wallet certificate)
    verifies under dilithium-py, a pure-Python FIPS 204 implementation independent of the
    OpenSSL that ``cryptography`` uses; a flipped bit does not."""
    from dilithium_py.ml_dsa import ML_DSA_44, ML_DSA_65

    scheme = ML_DSA_44 if alg is SignatureAlgorithm.ML_DSA_44 else ML_DSA_65
    net = PilotNetwork.create(alg)
    root, bank = net.central_bank.certificate, net.banks[0].certificate
    wallet = _cert(make_signer(net).cert)
    for cert, issuer in ((root, root), (bank, root), (wallet, bank)):
        assert (
            cert.signature_algorithm_oid.dotted_string
            == {
                SignatureAlgorithm.ML_DSA_44: "2.16.840.1.101.3.4.3.17",  # RFC 9881
                SignatureAlgorithm.ML_DSA_65: "2.16.840.1.101.3.4.3.18",
            }[alg]
        )
        raw = issuer.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        assert scheme.verify(raw, cert.tbs_certificate_bytes, cert.signature)
        flipped = bytes([cert.signature[0] ^ 1]) + cert.signature[1:]
        assert not scheme.verify(raw, cert.tbs_certificate_bytes, flipped)


# --- CSRs and the wallet policy ---------------------------------------------------------------


def test_csr_checks(network: PilotNetwork) -> None:
    bank = network.banks[0]
    key = network.params.algorithm.generate()
    csr = pki.make_csr(key)
    loaded = x509.load_der_x509_csr(csr)
    assert loaded.is_signature_valid
    tampered = bytearray(csr)
    tampered[-3] ^= 0x01
    for bad in (b"junk", bytes(tampered)):
        with pytest.raises(DecodeError) as info:
            bank.certify_wallet(bad, WalletId.random(), DEFAULT_LIMITS, 0, T0)
        assert info.value.path == "csr"


def test_wallet_policy_survives_the_certificate(network: PilotNetwork) -> None:
    limits = Limits(
        max_balance=7,
        max_payment=6,
        max_offline_payments=5,
        max_offline_value=4,
        max_offline_seconds=3,
    )
    ext = _cert(
        make_signer(network, limits=limits, counter_base=2).cert
    ).extensions.get_extension_for_oid(pki.WALLET_POLICY_OID)
    assert not ext.critical
    assert pki.decode_policy(ext.value.value) == (limits, 2)


def test_the_bank_binds_the_kem_key_the_csr_carries(network: PilotNetwork) -> None:
    se = network.new_se()
    kem = se._s.encryption_key
    assert kem is not None
    csr = se.csr()
    assert pki.csr_encryption_key(csr) == kem.public()
    request = x509.load_der_x509_csr(csr).extensions.get_extension_for_oid(pki.ENCRYPTION_KEY_OID)
    # the CSR's extnValue is a DER OCTET STRING of the key (read here by hand)
    size = len(kem.public())
    head = b"\x04" + (bytes([size]) if size < 128 else b"\x82" + size.to_bytes(2, "big"))
    assert request.value.value == head + kem.public()  # type: ignore[attr-defined]
    cert = network.bank().certify_wallet(csr, WalletId.random(), DEFAULT_LIMITS, 0, T0)
    parsed = x509.load_der_x509_certificate(cert)
    ext = parsed.extensions.get_extension_for_oid(pki.ENCRYPTION_KEY_DIGEST_OID)
    digest = hashlib.sha256(kem.public()).digest()
    assert not ext.critical and ext.value.value == b"\x04\x20" + digest  # type: ignore[attr-defined]
    with pytest.raises(x509.ExtensionNotFound):  # the key itself stays out of the certificate
        parsed.extensions.get_extension_for_oid(pki.ENCRYPTION_KEY_OID)
    assert kem.public() not in cert
    trust = TrustStore.create(network.central_bank.certificate_der, network.bank_ders)
    bound = trust.wallet_certificate(cert, T0)
    assert bound.encryption_key_digest == digest
    assert bound.certifies_encryption_key(kem.public())
    assert not bound.certifies_encryption_key(kem.public()[:-1] + bytes([kem.public()[-1] ^ 1]))
    # a CSR without it gets a certificate without it
    plain = pki.make_csr(network.params.algorithm.generate())
    cert = network.bank().certify_wallet(plain, WalletId.random(), DEFAULT_LIMITS, 0, T0)
    unbound = trust.wallet_certificate(cert, T0)
    assert unbound.encryption_key_digest is None
    assert not unbound.certifies_encryption_key(kem.public())


def test_a_csr_whose_key_is_not_an_octet_string_is_refused(network: PilotNetwork) -> None:
    """The CSR's EncryptionKey value is a DER OCTET STRING: the raw key (the encoding before
    the digest), or an OCTET STRING with trailing bytes, is a ``DecodeError``."""
    kem = network.new_se()._s.encryption_key
    assert kem is not None
    key = network.params.algorithm.generate()
    for value in (kem.public(), der.encode_octet_string(kem.public()) + b"\x00"):
        builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
        builder = builder.add_extension(
            x509.UnrecognizedExtension(pki.ENCRYPTION_KEY_OID, value), critical=False
        )
        csr = pki.der_csr(builder.sign(key, network.params.algorithm.x509_hash()))
        with pytest.raises(DecodeError) as refused:
            network.bank().certify_wallet(csr, WalletId.random(), DEFAULT_LIMITS, 0, T0)
        assert refused.value.path == "csr.encryption_key"


@pytest.mark.parametrize("key", [bytes(32), b"\x01" * 33], ids=["low-order", "wrong-size"])
def test_a_csr_with_a_key_nothing_can_be_sealed_for_is_refused(
    network: PilotNetwork, key: bytes
) -> None:
    csr = pki.make_csr(network.params.algorithm.generate(), encryption_key=key)
    with pytest.raises(DecodeError) as refused:
        network.bank().certify_wallet(csr, WalletId.random(), DEFAULT_LIMITS, 0, T0)
    assert refused.value.path == "csr.encryption_key"
