"""The two-tier PKI: central bank root CA, bank CAs, short-lived wallet certificates, CRLs.

Theory of operation: the central bank's self-signed root certifies each bank's CA (path length
0); a bank certifies a wallet's key from a CSR that the wallet's secure element made, so the
private key never leaves it. A wallet certificate is short-lived (default 7 days) and renewed
at every sync; it carries, in the ``WalletPolicy`` extension, the bank's offline limits and the
secure element's counter at that sync, so any verifier can check them offline. Banks revoke
wallets with X.509 CRLs.

This module issues: it builds the certificates, CSRs and CRLs and encodes and decodes the
``WalletPolicy`` extension. Checking them is ``offcash.crypto.trust`` (the verifier's
``TrustStore``), which uses this module's policy decoder and name reader. The chains also
validate with ``cryptography.x509.verification`` (``validate_with_webpki``; its profile admits
P-256 but not Ed25519) and with ``openssl verify`` (tested).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import verification
from cryptography.x509.oid import NameOID

from offcash.crypto import der as der_reader
from offcash.crypto.algorithms import PrivateKey, PublicKey, algorithm_of, sign, spki, verify
from offcash.crypto.signer import SigningKey, as_signer
from offcash.crypto.x509sign import sign_certificate, sign_crl
from offcash.domain.ids import WalletId
from offcash.domain.limits import Limits
from offcash.encoding import cbor, sealed
from offcash.encoding.fields import Field, read, uint
from offcash.errors import DecodeError

#: OID of the WalletPolicy extension (a UUID-derived OID under 2.25, ITU-T X.667).
WALLET_POLICY_OID = x509.ObjectIdentifier("2.25.166370285791478513092418765421860617001")
#: OID of the KeyRollover CSR extension (UUID-derived, under 2.25): the old key's signature
#: over ``ROLLOVER_CONTEXT`` and the new key's SubjectPublicKeyInfo (algorithm migration).
KEY_ROLLOVER_OID = x509.ObjectIdentifier("2.25.299462016813785283468990474542950219425")
#: OID of the EncryptionKey CSR extension (UUID-derived, under 2.25): the SE's KEM public key
#: (``offcash.encoding.sealed``) as a DER OCTET STRING, which the bank checks and binds.
ENCRYPTION_KEY_OID = x509.ObjectIdentifier("2.25.256810669607034826210291007689121365202")
#: OID of the EncryptionKeyDigest wallet-certificate extension (UUID-derived, under 2.25): the
#: SHA-256 of the SE's KEM public key as a DER OCTET STRING of 32 bytes. The key itself (up to
#: 1,216 bytes) travels in the payee directory, not in every payment's certificate.
ENCRYPTION_KEY_DIGEST_OID = x509.ObjectIdentifier("2.25.308929347263820783435099508512189972971")
#: What the old key signs, before the new key's SPKI, to hand the wallet over to the new key.
ROLLOVER_CONTEXT = b"offcash key rollover v1\x00"
DEFAULT_WALLET_VALIDITY = dt.timedelta(days=7)
#: Wallet certificates start this long before their issue time, so a wallet whose clock is a
#: little behind the bank's accepts the certificate it just received and pays under it.
CERTIFICATE_BACKDATE = dt.timedelta(seconds=300)
_CA_VALIDITY = dt.timedelta(days=3650)

_POLICY = {
    1: Field("max_balance", uint()),
    2: Field("max_payment", uint()),
    3: Field("max_offline_payments", uint()),
    4: Field("max_offline_value", uint()),
    5: Field("max_offline_seconds", uint()),
    6: Field("counter_base", uint()),
}


def _utc(epoch: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


def _name(common_name: str, generation: str | None = None) -> x509.Name:
    """``CN=common_name``; a CA made by an algorithm migration also carries a
    ``generationQualifier`` naming its algorithm, so its name differs from the old CA's."""
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if generation is not None:
        attributes.append(x509.NameAttribute(NameOID.GENERATION_QUALIFIER, generation))
    return x509.Name(attributes)


def _serial() -> int:
    return int.from_bytes(os.urandom(8), "big") >> 1 or 1


def der(cert: x509.Certificate | x509.CertificateRevocationList) -> bytes:
    """The DER encoding of a certificate or CRL."""
    return cert.public_bytes(serialization.Encoding.DER)


def common_name(name: x509.Name) -> str:
    """The first common name in ``name`` (offcash's names have exactly one)."""
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else ""


def _ca_certificate(
    subject: x509.Name,
    issuer: x509.Certificate | None,
    public_key: PublicKey,
    signing_key: SigningKey,
    path_length: int,
    now: int,
) -> x509.Certificate:
    signer = as_signer(signing_key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer else subject)
        .public_key(public_key)
        .serial_number(_serial())
        .not_valid_before(_utc(now))
        .not_valid_after(_utc(now) + _CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),
            critical=False,
        )
    return sign_certificate(builder, signer)


def issue_root(
    key: SigningKey, name: str, now: int, generation: str | None = None
) -> x509.Certificate:
    """The central bank's self-signed root CA certificate (path length 1: banks below it)."""
    return _ca_certificate(_name(name, generation), None, as_signer(key).public_key(), key, 1, now)


def issue_bank(
    root_key: SigningKey,
    root: x509.Certificate,
    bank_public_key: PublicKey,
    name: str,
    now: int,
    generation: str | None = None,
) -> x509.Certificate:
    """A bank's intermediate CA certificate, signed by the root (path length 0)."""
    return _ca_certificate(_name(name, generation), root, bank_public_key, root_key, 0, now)


def cross_certify(
    issuer_key: SigningKey, issuer: x509.Certificate, subject: x509.Certificate, now: int
) -> x509.Certificate:
    """``subject`` root's key and name certified by the ``issuer`` root (path length 1): the
    NewWithOld (issuer old, subject new) and OldWithNew (the reverse) certificates of a root
    key update (RFC 4210 section 4.4)."""
    public_key: PublicKey = subject.public_key()  # type: ignore[assignment]
    return _ca_certificate(subject.subject, issuer, public_key, issuer_key, 1, now)


def make_csr(
    key: PrivateKey, previous: PrivateKey | None = None, encryption_key: bytes | None = None
) -> bytes:
    """A DER CSR proving possession of ``key`` (made inside the secure element). With
    ``previous`` (the key the wallet is certified for), it carries the KeyRollover extension:
    ``previous``'s signature handing the wallet over to ``key``; with ``encryption_key`` (the
    SE's KEM public key), the EncryptionKey extension whose digest the bank binds to the
    certificate (``issue_wallet``)."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(_name("offcash wallet"))
    if encryption_key is not None:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(
                ENCRYPTION_KEY_OID, der_reader.encode_octet_string(encryption_key)
            ),
            critical=False,
        )
    if previous is not None:
        handover = sign(previous, ROLLOVER_CONTEXT + spki(key.public_key()))
        builder = builder.add_extension(
            x509.UnrecognizedExtension(KEY_ROLLOVER_OID, handover), critical=False
        )
    return der_csr(builder.sign(key, algorithm_of(key).x509_hash()))


def csr_encryption_key(csr_der: bytes) -> bytes | None:
    """The KEM public key a CSR (already checked by ``csr_public_key``) asks to have bound to
    the wallet, or None; ``DecodeError`` if it is not one a payment can be sealed for."""
    try:
        csr = x509.load_der_x509_csr(csr_der)
        value: bytes = csr.extensions.get_extension_for_oid(ENCRYPTION_KEY_OID).value.value  # type: ignore[attr-defined]
    except x509.ExtensionNotFound:
        return None
    except (ValueError, TypeError) as exc:
        raise DecodeError("csr", f"not a usable CSR: {exc}") from None
    try:
        key = der_reader.octet_string(value)
        sealed.check_public_key(key)
    except ValueError as exc:
        raise DecodeError("csr.encryption_key", str(exc)) from None
    return key


def key_digest(encryption_key: bytes) -> bytes:
    """What a wallet certificate binds of the SE's KEM public key: its SHA-256."""
    return hashlib.sha256(encryption_key).digest()


def decode_key_digest(value: bytes) -> bytes:
    """The digest in an EncryptionKeyDigest extension value: exactly a DER OCTET STRING of 32
    bytes (``ValueError`` otherwise)."""
    digest = der_reader.octet_string(value)
    if len(digest) != 32:
        raise ValueError(f"EncryptionKeyDigest holds {len(digest)} bytes, not a SHA-256 digest")
    return digest


def csr_rollover(csr_der: bytes, previous: PublicKey) -> bool:
    """Whether ``csr_der`` (already checked by ``csr_public_key``) carries a KeyRollover
    signature by ``previous`` over its key."""
    try:
        csr = x509.load_der_x509_csr(csr_der)
        value = csr.extensions.get_extension_for_oid(KEY_ROLLOVER_OID).value
        handover = value.value  # type: ignore[attr-defined]
        new_key: PublicKey = csr.public_key()  # type: ignore[assignment]
    except (ValueError, TypeError, x509.ExtensionNotFound):
        return False
    return verify(previous, handover, ROLLOVER_CONTEXT + spki(new_key))


def der_csr(csr: x509.CertificateSigningRequest) -> bytes:
    """The DER encoding of a CSR."""
    return csr.public_bytes(serialization.Encoding.DER)


def encode_policy(limits: Limits, counter_base: int) -> bytes:
    """The WalletPolicy extension value: the limits and the counter at the sync, as CBOR."""
    return cbor.encode(
        {
            1: limits.max_balance,
            2: limits.max_payment,
            3: limits.max_offline_payments,
            4: limits.max_offline_value,
            5: limits.max_offline_seconds,
            6: counter_base,
        }
    )


def decode_policy(value: bytes) -> tuple[Limits, int]:
    """The limits and counter base from a WalletPolicy extension value."""
    fields = read(cbor.decode(value, path="policy"), "policy", _POLICY)
    counter_base = fields.pop("counter_base")
    return Limits(**fields), counter_base


def csr_public_key(csr_der: bytes) -> PublicKey:
    """The key a CSR asks to have certified, once its proof of possession verifies.

    Raises ``DecodeError`` if the CSR is malformed, of another algorithm or not self-signed."""
    try:
        csr = x509.load_der_x509_csr(csr_der)
        valid = csr.is_signature_valid
        public_key = csr.public_key()
        algorithm_of(public_key)  # type: ignore[arg-type]
    except (ValueError, TypeError) as exc:
        raise DecodeError("csr", f"not a usable CSR: {exc}") from None
    if not valid:
        raise DecodeError("csr", "CSR signature does not verify")
    return public_key  # type: ignore[return-value]


def issue_wallet(
    bank_key: SigningKey,
    bank: x509.Certificate,
    public_key: PublicKey,
    wallet_id: WalletId,
    limits: Limits,
    counter_base: int,
    now: int,
    validity: dt.timedelta = DEFAULT_WALLET_VALIDITY,
    encryption_key: bytes | None = None,
) -> x509.Certificate:
    """A short-lived wallet certificate for ``public_key`` (proven by its CSR: see
    ``csr_public_key``), with its policy (and the SHA-256 of the SE's KEM public key, checked
    by ``csr_encryption_key``, if given: the EncryptionKeyDigest extension), valid from
    ``CERTIFICATE_BACKDATE`` before ``now`` until ``validity`` after it."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(str(wallet_id)))
        .issuer_name(bank.subject)
        .public_key(public_key)
        .serial_number(_serial())
        .not_valid_before(_utc(now) - CERTIFICATE_BACKDATE)
        .not_valid_after(_utc(now) + validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(
            x509.UnrecognizedExtension(WALLET_POLICY_OID, encode_policy(limits, counter_base)),
            critical=False,
        )
    )
    if encryption_key is not None:
        digest = der_reader.encode_octet_string(key_digest(encryption_key))
        builder = builder.add_extension(
            x509.UnrecognizedExtension(ENCRYPTION_KEY_DIGEST_OID, digest), critical=False
        )
    return sign_certificate(builder, as_signer(bank_key))


def build_crl(
    bank_key: SigningKey,
    bank: x509.Certificate,
    revoked: Iterable[tuple[int, int]],
    number: int,
    now: int,
    next_update: dt.timedelta = DEFAULT_WALLET_VALIDITY,
) -> x509.CertificateRevocationList:
    """A bank's CRL listing ``(serial, revoked_at)`` pairs, with a CRL number."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(bank.subject)
        .last_update(_utc(now))
        .next_update(_utc(now) + next_update)
        .add_extension(x509.CRLNumber(number), critical=False)
    )
    for serial, when in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(_utc(when))
            .build()
        )
    return sign_crl(builder, as_signer(bank_key))


def validate_with_webpki(
    root_der: bytes, chain_ders: list[bytes], leaf_der: bytes, at: int
) -> list[x509.Certificate]:
    """Validate a chain with ``cryptography.x509.verification`` (P-256 only: its profile
    refuses Ed25519). Raises ``verification.VerificationError`` on failure."""
    store = verification.Store([x509.load_der_x509_certificate(root_der)])
    verifier = (
        verification.PolicyBuilder()
        .store(store)
        .time(_utc(at))
        .extension_policies(
            ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(),
            ee_policy=verification.ExtensionPolicy.permit_all(),
        )
        .build_client_verifier()
    )
    leaf = x509.load_der_x509_certificate(leaf_der)
    chain = [x509.load_der_x509_certificate(c) for c in chain_ders]
    return list(verifier.verify(leaf, chain).chain)
