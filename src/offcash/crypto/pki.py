"""The two-tier PKI: central bank root CA, bank CAs, short-lived wallet certificates, CRLs.

Theory of operation: the central bank's self-signed root certifies each bank's CA (path length
0); a bank certifies a wallet's key from a CSR that the wallet's secure element made, so the
private key never leaves it. A wallet certificate is short-lived (default 7 days) and renewed
at every sync; it carries, in the ``WalletPolicy`` extension, the bank's offline limits and the
secure element's counter at that sync, so any verifier can check them offline. Banks revoke
wallets with X.509 CRLs.

``TrustStore`` is what a verifier holds: the root, the bank CA certificates it validated against
the root once, and the latest CRL of each bank. Checking a wallet certificate then costs one
signature verification (the bank's over the wallet certificate). The chains also validate with
``cryptography.x509.verification`` (``validate_with_webpki``; its profile admits P-256 but not
Ed25519) and with ``openssl verify`` (tested).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import verification
from cryptography.x509.oid import NameOID

from offcash.crypto.algorithms import PrivateKey, PublicKey, SignatureAlgorithm, algorithm_of
from offcash.domain.ids import WalletId
from offcash.domain.limits import Limits
from offcash.encoding import cbor
from offcash.encoding.fields import Field, read, uint
from offcash.errors import DecodeError, Rejection, VerificationError

#: OID of the WalletPolicy extension (a UUID-derived OID under 2.25, ITU-T X.667).
WALLET_POLICY_OID = x509.ObjectIdentifier("2.25.166370285791478513092418765421860617001")
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


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


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
    subject: str,
    issuer: x509.Certificate | None,
    public_key: PublicKey,
    signer: PrivateKey,
    path_length: int,
    now: int,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.subject if issuer else _name(subject))
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
    return builder.sign(signer, algorithm_of(signer).x509_hash())


def issue_root(key: PrivateKey, name: str, now: int) -> x509.Certificate:
    """The central bank's self-signed root CA certificate (path length 1: banks below it)."""
    return _ca_certificate(name, None, key.public_key(), key, 1, now)


def issue_bank(
    root_key: PrivateKey, root: x509.Certificate, bank_public_key: PublicKey, name: str, now: int
) -> x509.Certificate:
    """A bank's intermediate CA certificate, signed by the root (path length 0)."""
    return _ca_certificate(name, root, bank_public_key, root_key, 0, now)


def make_csr(key: PrivateKey) -> bytes:
    """A DER CSR proving possession of ``key`` (made inside the secure element)."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(_name("offcash wallet"))
    return der_csr(builder.sign(key, algorithm_of(key).x509_hash()))


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


def issue_wallet(
    bank_key: PrivateKey,
    bank: x509.Certificate,
    csr_der: bytes,
    wallet_id: WalletId,
    limits: Limits,
    counter_base: int,
    now: int,
    validity: dt.timedelta = DEFAULT_WALLET_VALIDITY,
) -> x509.Certificate:
    """A short-lived wallet certificate for the key in ``csr_der``, with its policy, valid from
    ``CERTIFICATE_BACKDATE`` before ``now`` until ``validity`` after it.

    Raises ``DecodeError`` if the CSR is malformed or its proof of possession fails.
    """
    try:
        csr = x509.load_der_x509_csr(csr_der)
        valid = csr.is_signature_valid
        public_key = csr.public_key()
        algorithm_of(public_key)  # type: ignore[arg-type]
    except (ValueError, TypeError) as exc:
        raise DecodeError("csr", f"not a usable CSR: {exc}") from None
    if not valid:
        raise DecodeError("csr", "CSR signature does not verify")
    return (
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
        .sign(bank_key, algorithm_of(bank_key).x509_hash())
    )


def build_crl(
    bank_key: PrivateKey,
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
    return builder.sign(bank_key, algorithm_of(bank_key).x509_hash())


@dataclass(frozen=True, slots=True)
class WalletCertificate:
    """A wallet certificate that verified against a bank in the trust store."""

    der: bytes
    wallet_id: WalletId
    serial: int
    bank: str
    not_before: int
    not_after: int
    public_key: PublicKey
    algorithm: SignatureAlgorithm
    limits: Limits
    counter_base: int


def _is_ca(cert: x509.Certificate, path_length: int) -> bool:
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return bc.ca and bc.path_length == path_length and ku.key_cert_sign


@dataclass
class TrustStore:
    """What a verifier trusts: the root, bank CAs validated against it, each bank's latest CRL."""

    root: x509.Certificate
    algorithm: SignatureAlgorithm
    banks: dict[bytes, x509.Certificate] = field(default_factory=dict)
    crls: dict[bytes, x509.CertificateRevocationList] = field(default_factory=dict)
    #: Verified wallet certificates kept (0 disables the cache; benchmarks measure both).
    certificate_cache: int = 4096
    _revoked: dict[bytes, frozenset[int]] = field(default_factory=dict)
    _bank_keys: dict[bytes, PublicKey] = field(default_factory=dict)
    _verified: dict[bytes, tuple[bytes, WalletCertificate]] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        root_der: bytes,
        bank_ders: Iterable[bytes] = (),
        crl_ders: Iterable[bytes] = (),
    ) -> TrustStore:
        """A trust store from DER certificates and CRLs; bad ones raise ``VerificationError``."""
        try:
            root = x509.load_der_x509_certificate(root_der)
            root.verify_directly_issued_by(root)
            alg = algorithm_of(root.public_key())  # type: ignore[arg-type]
        except Exception as exc:
            raise VerificationError(Rejection.BAD_CERTIFICATE, f"root: {exc}") from None
        if not _is_ca(root, 1):
            raise VerificationError(
                Rejection.BAD_CERTIFICATE, "root is not a CA with path length 1"
            )
        store = cls(root=root, algorithm=alg)
        for bank in bank_ders:
            store.add_bank(bank)
        for crl in crl_ders:
            store.add_crl(crl)
        return store

    def add_bank(self, bank_der: bytes) -> x509.Certificate:
        """Validate a bank CA certificate against the root and trust it."""
        try:
            bank = x509.load_der_x509_certificate(bank_der)
            bank.verify_directly_issued_by(self.root)
        except Exception as exc:
            raise VerificationError(Rejection.UNKNOWN_ISSUER, f"bank CA: {exc}") from None
        if not _is_ca(bank, 0):
            raise VerificationError(
                Rejection.BAD_CERTIFICATE, "bank is not a CA with path length 0"
            )
        self.banks[bank.subject.public_bytes()] = bank
        self._bank_keys.pop(bank.subject.public_bytes(), None)
        self._verified.clear()
        return bank

    def knows_issuer_of(self, crl_der: bytes) -> bool:
        """Whether this store holds the bank that issued ``crl_der``."""
        try:
            return x509.load_der_x509_crl(crl_der).issuer.public_bytes() in self.banks
        except Exception:  # malformed DER, or a malformed issuer name (parsed lazily)
            return False

    def add_crl(self, crl_der: bytes) -> bool:
        """Install a bank's CRL if it verifies and is newer than the one held; True if installed."""
        try:
            crl = x509.load_der_x509_crl(crl_der)
            bank = self.banks.get(crl.issuer.public_bytes())
            if bank is None:
                raise ValueError("CRL from a bank this store does not know")
            if not crl.is_signature_valid(bank.public_key()):  # type: ignore[arg-type]
                raise ValueError("CRL signature does not verify")
            number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        except Exception as exc:
            raise VerificationError(Rejection.UNKNOWN_ISSUER, f"CRL: {exc}") from None
        key = crl.issuer.public_bytes()
        held = self.crls.get(key)
        if held is not None:
            held_number = held.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
            if number <= held_number:
                return False
        self.crls[key] = crl
        self._revoked[key] = frozenset(r.serial_number for r in crl)
        return True

    @property
    def root_der(self) -> bytes:
        """The root certificate, DER."""
        return der(self.root)

    def bank_certificates(self) -> list[bytes]:
        """The DER bank CA certificates held."""
        return [der(b) for b in self.banks.values()]

    def crl_ders(self) -> list[bytes]:
        """The DER CRLs held."""
        return [der(c) for c in self.crls.values()]

    def wallet_certificate(self, cert_der: bytes, at: int | None) -> WalletCertificate:
        """Check a wallet certificate: issued by a known bank, valid at ``at``, not revoked.
        With ``at=None`` only the issuer's signature and the profile are checked.

        The issuer's signature and the profile are checked once per distinct certificate
        (``certificate_cache`` entries are kept, keyed by the exact DER bytes); the validity
        time and the CRL are checked on every call."""
        hit = self._verified.get(cert_der)
        issuer_key, parsed = hit if hit is not None else self._verify_certificate(cert_der)
        if at is None:
            return parsed
        if at < parsed.not_before:
            raise VerificationError(Rejection.CERT_NOT_YET_VALID)
        if at > parsed.not_after:
            raise VerificationError(Rejection.CERT_EXPIRED)
        if parsed.serial in self._revoked.get(issuer_key, frozenset()):
            raise VerificationError(Rejection.REVOKED, f"wallet {parsed.wallet_id}")
        return parsed

    def _verify_certificate(self, cert_der: bytes) -> tuple[bytes, WalletCertificate]:
        try:
            cert = x509.load_der_x509_certificate(cert_der)
            issuer_key = cert.issuer.public_bytes()
        except Exception as exc:
            raise VerificationError(Rejection.BAD_CERTIFICATE, str(exc)) from None
        bank = self.banks.get(issuer_key)
        if bank is None:
            raise VerificationError(Rejection.UNKNOWN_ISSUER, common_name(cert.issuer))
        if not _issued_by(cert, self._bank_key(issuer_key, bank)):
            raise VerificationError(Rejection.BAD_CERTIFICATE_SIGNATURE)
        result = issuer_key, _wallet_fields(cert, cert_der, bank)
        if self.certificate_cache > 0:
            if len(self._verified) >= self.certificate_cache:
                self._verified.clear()
            self._verified[cert_der] = result
        return result

    def _bank_key(self, subject: bytes, bank: x509.Certificate) -> PublicKey:
        """The bank's public key, loaded once per trust store."""
        if subject not in self._bank_keys:
            self._bank_keys[subject] = bank.public_key()  # type: ignore[assignment]
        return self._bank_keys[subject]

    def bank_certificate(self, cert_der: bytes) -> x509.Certificate:
        """A bank CA certificate this store holds, given its DER (for bank-signed messages)."""
        try:  # cryptography parses names lazily: a malformed subject raises here (KeyError...)
            cert = x509.load_der_x509_certificate(cert_der)
            held = self.banks.get(cert.subject.public_bytes())
        except Exception as exc:
            raise VerificationError(Rejection.BAD_CERTIFICATE, str(exc)) from None
        if held is None or der(held) != cert_der:
            raise VerificationError(Rejection.UNKNOWN_ISSUER, common_name(cert.subject))
        return held


def _issued_by(cert: x509.Certificate, issuer_key: PublicKey) -> bool:
    """Whether ``issuer_key`` signed ``cert`` with the algorithm the network uses for it.

    Equivalent to ``Certificate.verify_directly_issued_by`` once the issuer name has matched,
    but with the bank's public key loaded once per trust store rather than per certificate."""
    expected = algorithm_of(issuer_key)
    try:
        if expected is SignatureAlgorithm.P256:
            if cert.signature_algorithm_oid != x509.SignatureAlgorithmOID.ECDSA_WITH_SHA256:
                return False
            issuer_key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))  # type: ignore[call-arg]
        else:
            if cert.signature_algorithm_oid != x509.SignatureAlgorithmOID.ED25519:
                return False
            issuer_key.verify(cert.signature, cert.tbs_certificate_bytes)  # type: ignore[call-arg]
    except (InvalidSignature, ValueError):
        return False
    return True


def _wallet_fields(
    cert: x509.Certificate, cert_der: bytes, bank: x509.Certificate
) -> WalletCertificate:
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        policy = cert.extensions.get_extension_for_oid(WALLET_POLICY_OID).value
        if bc.ca or not ku.digital_signature or not isinstance(policy, x509.UnrecognizedExtension):
            raise ValueError("not an end-entity signing certificate")
        limits, counter_base = decode_policy(policy.value)
        public_key = cert.public_key()
        alg = algorithm_of(public_key)  # type: ignore[arg-type]
        wallet_id = WalletId.parse(common_name(cert.subject))
    except (ValueError, KeyError, x509.ExtensionNotFound, DecodeError) as exc:
        raise VerificationError(Rejection.BAD_CERTIFICATE, str(exc)) from None
    return WalletCertificate(
        der=cert_der,
        wallet_id=wallet_id,
        serial=cert.serial_number,
        bank=common_name(bank.subject),
        not_before=int(cert.not_valid_before_utc.timestamp()),
        not_after=int(cert.not_valid_after_utc.timestamp()),
        public_key=public_key,  # type: ignore[arg-type]
        algorithm=alg,
        limits=limits,
        counter_base=counter_base,
    )


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
