"""The verifier's trust store: bank CAs validated against the root, CRLs, wallet certificates
checked in full or from the cache (whose time and revocation checks still run every time)."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from offcash.crypto import pki
from offcash.crypto.algorithms import SignatureAlgorithm
from offcash.crypto.signer import as_signer
from offcash.crypto.trust import TrustStore
from offcash.crypto.x509sign import sign_certificate
from offcash.domain.ids import WalletId
from offcash.domain.limits import DEFAULT_LIMITS
from offcash.errors import Rejection, VerificationError
from offcash.issuance import CentralBank

from factories import make_signer
from harness import T0, PilotNetwork

DAY = 86400


def test_trust_store_refusals(network: PilotNetwork) -> None:
    root_der = network.central_bank.certificate_der
    rogue_cb = CentralBank.create("Rogue", network.params.algorithm, T0 - DAY)
    rogue_bank = rogue_cb.certify_bank("Bank A", T0 - DAY)
    cases = [
        (lambda: TrustStore.create(b"junk"), Rejection.BAD_CERTIFICATE),
        (lambda: TrustStore.create(network.bank_ders[0]), Rejection.BAD_CERTIFICATE),
        (
            lambda: TrustStore.create(root_der, [rogue_bank.certificate_der]),
            Rejection.UNKNOWN_ISSUER,
        ),
        (
            lambda: TrustStore.create(root_der, [make_signer(network).cert]),
            Rejection.UNKNOWN_ISSUER,
        ),
        (lambda: TrustStore.create(root_der, [root_der]), Rejection.BAD_CERTIFICATE),
        (
            lambda: TrustStore.create(root_der, [], [rogue_bank.crl([], 1, T0)]),
            Rejection.UNKNOWN_ISSUER,
        ),
    ]
    for action, rejection in cases:
        with pytest.raises(VerificationError) as info:
            action()
        assert info.value.rejection is rejection


def test_bank_certificate_lookup(network: PilotNetwork) -> None:
    trust = TrustStore.create(network.central_bank.certificate_der, network.bank_ders[:1])
    assert pki.der(trust.bank_certificate(network.bank_ders[0])) == network.bank_ders[0]
    with pytest.raises(VerificationError) as info:
        trust.bank_certificate(network.bank_ders[1])
    assert info.value.rejection is Rejection.UNKNOWN_ISSUER
    with pytest.raises(VerificationError) as info:
        trust.bank_certificate(b"junk")
    assert info.value.rejection is Rejection.BAD_CERTIFICATE


def test_crl_numbers_and_issuers(network: PilotNetwork) -> None:
    bank_a, bank_b = network.banks
    s = make_signer(network)
    serial = x509.load_der_x509_certificate(s.cert).serial_number
    trust = TrustStore.create(network.central_bank.certificate_der, network.bank_ders)
    assert trust.add_crl(bank_a.crl([(serial, T0)], 5, T0))
    assert not trust.add_crl(bank_a.crl([], 4, T0))  # an older CRL never replaces a newer one
    assert not trust.add_crl(bank_a.crl([], 5, T0))
    with pytest.raises(VerificationError) as info:
        trust.wallet_certificate(s.cert, T0)
    assert info.value.rejection is Rejection.REVOKED
    assert trust.wallet_certificate(s.cert, None).wallet_id == s.wallet_id  # profile only
    assert trust.add_crl(bank_a.crl([], 6, T0))  # reinstated by a newer CRL
    assert trust.wallet_certificate(s.cert, T0).serial == serial
    assert trust.knows_issuer_of(bank_b.crl([], 1, T0))
    assert not trust.knows_issuer_of(b"junk")
    forged = pki.der(pki.build_crl(bank_b.key, bank_a.certificate, [], 9, T0))
    with pytest.raises(VerificationError) as info:
        trust.add_crl(forged)
    assert info.value.rejection is Rejection.UNKNOWN_ISSUER
    assert len(trust.crl_ders()) == 1 and len(trust.bank_certificates()) == 2


def test_a_copy_is_independent_of_its_original(network: PilotNetwork) -> None:
    """What is added to a copy (a CRL, a bank) is not in the original, nor the reverse; the
    copy trusts what the original did, and verifies a certificate again once (its cache
    starts empty: the memory a holder's caches take does not grow with its copies)."""
    bank_a, bank_b = network.banks
    s = make_signer(network)
    serial = x509.load_der_x509_certificate(s.cert).serial_number
    original = TrustStore.create(network.central_bank.certificate_der, network.bank_ders[:1])
    verified = original.wallet_certificate(s.cert, T0)
    copy = original.copy()
    again = copy.wallet_certificate(s.cert, T0)
    assert again == verified and again is not verified
    assert copy.add_crl(bank_a.crl([(serial, T0)], 1, T0))
    with pytest.raises(VerificationError) as info:
        copy.wallet_certificate(s.cert, T0)
    assert info.value.rejection is Rejection.REVOKED
    assert original.wallet_certificate(s.cert, T0) is verified and original.crl_ders() == []
    original.add_bank(bank_b.certificate_der)
    assert original.knows_issuer_of(bank_b.crl([], 1, T0))
    assert not copy.knows_issuer_of(bank_b.crl([], 1, T0))
    assert copy.bank_certificates() == network.bank_ders[:1]


def test_revocation_in_another_banks_crl_does_not_apply(network: PilotNetwork) -> None:
    s = make_signer(network)
    serial = x509.load_der_x509_certificate(s.cert).serial_number
    crl = network.banks[1].crl([(serial, T0)], 1, T0)
    trust = TrustStore.create(network.central_bank.certificate_der, network.bank_ders, [crl])
    assert trust.wallet_certificate(s.cert, T0).serial == serial


def test_cached_certificate_still_checks_time_and_revocation(network: PilotNetwork) -> None:
    """A verified certificate is cached by its DER, but validity and the CRL apply every time."""
    s = make_signer(network)
    serial = x509.load_der_x509_certificate(s.cert).serial_number
    trust = TrustStore.create(network.central_bank.certificate_der, network.bank_ders)
    first = trust.wallet_certificate(s.cert, T0)
    assert trust.wallet_certificate(s.cert, T0 + 60) is first  # the cached verification
    with pytest.raises(VerificationError) as err:
        trust.wallet_certificate(s.cert, first.not_after + 1)
    assert err.value.rejection is Rejection.CERT_EXPIRED
    with pytest.raises(VerificationError) as err:
        trust.wallet_certificate(s.cert, first.not_before - 1)
    assert err.value.rejection is Rejection.CERT_NOT_YET_VALID
    trust.add_crl(network.banks[0].crl([(serial, T0)], 1, T0))
    with pytest.raises(VerificationError) as err:
        trust.wallet_certificate(s.cert, T0 + 60)
    assert err.value.rejection is Rejection.REVOKED


def test_certificate_cache_is_bounded_and_can_be_disabled(network: PilotNetwork) -> None:
    trust = TrustStore.create(network.central_bank.certificate_der, network.bank_ders)
    trust.certificate_cache = 2
    signers = [make_signer(network) for _ in range(3)]
    for s in signers:
        trust.wallet_certificate(s.cert, T0)
    assert len(trust._verified) <= 2
    trust.certificate_cache = 0
    trust._verified.clear()
    s = signers[0]
    assert trust.wallet_certificate(s.cert, T0) is not trust.wallet_certificate(s.cert, T0)


def test_a_tampered_copy_of_a_cached_certificate_is_not_trusted(network: PilotNetwork) -> None:
    s = make_signer(network)
    trust = TrustStore.create(network.central_bank.certificate_der, network.bank_ders)
    trust.wallet_certificate(s.cert, T0)
    forged = bytearray(s.cert)
    forged[len(forged) // 2] ^= 0x01
    with pytest.raises(VerificationError):
        trust.wallet_certificate(bytes(forged), T0)


def test_an_old_root_vouches_only_for_banks_of_its_own_algorithm() -> None:
    """Attack review: after an algorithm migration the old root is an anchor (OldWithNew) for
    the old banks; one holding its broken key certified a bank CA with an ML-DSA key, whose
    wallet certificates then escaped the legacy bounds (their issuer of the new algorithm).
    An old root certifies banks of its own algorithm only; the real old banks still load."""
    old = CentralBank.create("Central Bank", SignatureAlgorithm.P256, T0)
    old_bank = old.certify_bank("Bank A", T0)
    new, _, old_with_new = old.migrate(SignatureAlgorithm.ML_DSA_44, T0 + DAY)
    new_bank = new.certify_bank("Bank A", T0 + DAY)
    store = TrustStore.create(
        new.certificate_der, [old_with_new, new_bank.certificate_der, old_bank.certificate_der]
    )
    assert len(store.banks) == 2
    forged = pki.issue_bank(
        old.key,
        old.certificate,
        SignatureAlgorithm.ML_DSA_44.generate().public_key(),
        "Bank Z",
        T0 + 2 * DAY,
    )
    with pytest.raises(VerificationError) as info:
        store.add_bank(pki.der(forged))
    assert info.value.rejection is Rejection.BAD_CERTIFICATE


def _wallet_certificate_with(network: PilotNetwork, digest_value: bytes, critical: bool) -> bytes:
    """A wallet certificate the bank signs whose EncryptionKeyDigest extension value is
    ``digest_value`` (made by hand: ``pki.issue_wallet`` only writes a well-formed one)."""
    bank = network.bank()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, str(WalletId.random()))]))
        .issuer_name(bank.certificate.subject)
        .public_key(network.params.algorithm.generate().public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(dt.datetime.fromtimestamp(T0 - 60, dt.UTC))
        .not_valid_after(dt.datetime.fromtimestamp(T0 + DAY, dt.UTC))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(
            x509.UnrecognizedExtension(pki.WALLET_POLICY_OID, pki.encode_policy(DEFAULT_LIMITS, 0)),
            critical=False,
        )
        .add_extension(
            x509.UnrecognizedExtension(pki.ENCRYPTION_KEY_DIGEST_OID, digest_value),
            critical=critical,
        )
    )
    return pki.der(sign_certificate(builder, as_signer(bank.key)))


def test_the_encryption_key_digest_is_read_and_a_malformed_one_refused(
    network: PilotNetwork,
) -> None:
    """EncryptionKeyDigest (docs/PROTOCOL.md section 8): exactly a DER OCTET STRING of 32
    bytes, critical or not; anything else makes the certificate ``BAD_CERTIFICATE``."""
    trust = TrustStore.create(network.central_bank.certificate_der, network.bank_ders)
    digest = bytes(range(32))
    for critical in (False, True):
        cert = trust.wallet_certificate(
            _wallet_certificate_with(network, b"\x04\x20" + digest, critical), T0
        )
        assert cert.encryption_key_digest == digest
    for malformed in (
        b"\x04\x1f" + digest[:31],  # 31 bytes
        b"\x04\x21" + digest + b"\x00",  # 33 bytes
        digest,  # the bare digest, not an OCTET STRING
        b"\x04\x20" + digest + b"\x00",  # a trailing byte
        b"\x04\x81\x20" + digest,  # a non-minimal length
        b"\x04\x00",  # empty
    ):
        der = _wallet_certificate_with(network, malformed, False)
        with pytest.raises(VerificationError) as info:
            trust.wallet_certificate(der, T0)
        assert info.value.rejection is Rejection.BAD_CERTIFICATE, malformed.hex()


def test_a_malformed_certificate_is_said_without_a_parser_dump(network: PilotNetwork) -> None:
    """New-user trial: a tampered payment showed cryptography's Rust ``ParseError { kind: ...
    }`` in the CLI's one-line refusal. Every one-byte change that cryptography cannot parse
    as DER is now said as such, and still refused as a malformed certificate."""
    s = make_signer(network)
    trust = TrustStore.create(network.central_bank.certificate_der, network.bank_ders)
    parse_errors = 0
    for index in range(len(s.cert)):
        forged = bytearray(s.cert)
        forged[index] ^= 0x20
        with pytest.raises(VerificationError) as info:
            trust.wallet_certificate(bytes(forged), T0)
        assert "ParseError" not in str(info.value), (index, str(info.value))
        if "not valid DER (ASN.1)" in str(info.value):
            assert info.value.rejection is Rejection.BAD_CERTIFICATE
            parse_errors += 1
    assert parse_errors > 0  # the case the message is for did occur
