"""The verifier's trust store: root, bank CAs and CRLs, and the wallet certificate check.

Theory of operation: ``TrustStore`` is what a verifier holds: the root, the bank CA certificates
it validated against the root once (each bank's name, key and algorithm kept parsed), and the
latest CRL of each bank. Checking a wallet certificate then costs one signature verification
(the bank's over the wallet certificate) and one key load: ``cryptography`` parses the
certificate, and the issuer name, the signed TBS bytes, the subject and the extensions are read
in place from the DER (``offcash.crypto.der``), which is several times faster than through
``cryptography``'s objects and is what lets a payee check a stranger's certificate at the cost
of the crypto. A verified certificate is kept (``certificate_cache``, keyed by its exact DER
bytes), so a repeat payer's certificate costs only the validity time and CRL checks, which run
on every use. The certificates are those ``offcash.crypto.pki`` issues, and their
``WalletPolicy`` extension is read with its decoder (``pki.decode_policy``).

After an algorithm migration (docs/PROTOCOL.md, "Algorithm migration") the store's root is the
new (ML-DSA) root, and the old root is trusted through its "OldWithNew" certificate (RFC 4210
section 4.4: the old root's key certified by the new root, a CA with path length 1), which
travels in the list of bank certificates: the old banks, and so the wallet certificates they
issued before the migration, validate under it. ``roll_over`` is how a holder of only the old
root learns the new one: through the "NewWithOld" certificate the old root signed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from offcash.crypto import der as der_reader
from offcash.crypto.algorithms import PublicKey, SignatureAlgorithm, algorithm_of, spki
from offcash.crypto.pki import (
    ENCRYPTION_KEY_DIGEST_OID,
    WALLET_POLICY_OID,
    common_name,
    decode_key_digest,
    decode_policy,
    der,
    key_digest,
)
from offcash.domain.ids import WalletId
from offcash.domain.limits import Limits
from offcash.errors import DecodeError, Rejection, VerificationError

#: The WalletPolicy OID's content octets, as ``der_reader`` keys extensions.
_WALLET_POLICY = der_reader.encode_oid(WALLET_POLICY_OID.dotted_string)
#: The EncryptionKeyDigest OID's content octets (the SHA-256 of the SE's KEM public key).
_KEY_DIGEST = der_reader.encode_oid(ENCRYPTION_KEY_DIGEST_OID.dotted_string)
#: The extensions a wallet certificate check understands (any other may not be critical).
_UNDERSTOOD = frozenset(
    {der_reader.BASIC_CONSTRAINTS, der_reader.KEY_USAGE, _WALLET_POLICY, _KEY_DIGEST}
)
#: BasicConstraints of an end entity: cA absent (FALSE) and no path length, its only DER.
_END_ENTITY = b"\x30\x00"
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
_SIGNATURE_OID = {
    SignatureAlgorithm.P256: x509.SignatureAlgorithmOID.ECDSA_WITH_SHA256,
    SignatureAlgorithm.ED25519: x509.SignatureAlgorithmOID.ED25519,
    SignatureAlgorithm.ML_DSA_44: x509.SignatureAlgorithmOID.ML_DSA_44,
    SignatureAlgorithm.ML_DSA_65: x509.SignatureAlgorithmOID.ML_DSA_65,
}


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
    #: the SHA-256 of the SE's KEM public key the bank bound to the wallet
    #: (EncryptionKeyDigest extension), or None: see ``certifies_encryption_key``
    encryption_key_digest: bytes | None = None
    #: the algorithm of the bank CA key that signed the certificate (after an algorithm
    #: migration an old CA's, for a certificate it issued before; None: not recorded)
    issuer_algorithm: SignatureAlgorithm | None = None

    def certifies_encryption_key(self, encryption_key: bytes) -> bool:
        """Whether ``encryption_key`` (a KEM public key from the payee directory) is the one
        this certificate binds: a one-way payer seals for no other."""
        digest = self.encryption_key_digest
        return digest is not None and key_digest(encryption_key) == digest


def _is_ca(cert: x509.Certificate, path_length: int) -> bool:
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return bc.ca and bc.path_length == path_length and ku.key_cert_sign


@dataclass(frozen=True, slots=True)
class _Issuer:
    """A bank CA the store validated against the root, with what checking the wallet
    certificates it issues needs, parsed once."""

    name: str
    key: PublicKey
    algorithm: SignatureAlgorithm

    def signed(self, cert: x509.Certificate, tbs: bytes) -> bool:
        """Whether this bank's key signed ``tbs`` (the TBS bytes of ``cert``) with the
        signature algorithm the network uses for the key."""
        if cert.signature_algorithm_oid != _SIGNATURE_OID[self.algorithm]:
            return False
        try:
            if isinstance(self.key, ec.EllipticCurvePublicKey):  # X.509 ECDSA is DER, not r||s
                self.key.verify(cert.signature, tbs, _ECDSA_SHA256)
            else:
                self.key.verify(cert.signature, tbs)
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass
class TrustStore:
    """What a verifier trusts: the root, bank CAs validated against it, each bank's latest CRL."""

    root: x509.Certificate
    algorithm: SignatureAlgorithm
    #: The old roots trusted through their OldWithNew certificates, by subject (DER).
    anchors: dict[bytes, x509.Certificate] = field(default_factory=dict)
    banks: dict[bytes, x509.Certificate] = field(default_factory=dict)
    crls: dict[bytes, x509.CertificateRevocationList] = field(default_factory=dict)
    #: Verified wallet certificates kept (0 disables the cache; benchmarks measure both).
    certificate_cache: int = 4096
    _revoked: dict[bytes, frozenset[int]] = field(default_factory=dict)
    _issuers: dict[bytes, _Issuer] = field(default_factory=dict)
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
            raise VerificationError(Rejection.BAD_CERTIFICATE, f"root: {_why(exc)}") from None
        if not _is_ca(root, 1):
            raise VerificationError(
                Rejection.BAD_CERTIFICATE, "root is not a CA with path length 1"
            )
        store = cls(root=root, algorithm=alg)
        subject = root.subject.public_bytes()
        ders = list(
            bank_ders
        )  # the root's own certificates first: an OldWithNew precedes its banks
        for bank in sorted(ders, key=lambda d: _issuer_of(d) != subject):
            store.add_bank(bank)
        for crl in crl_ders:
            store.add_crl(crl)
        return store

    def copy(self) -> TrustStore:
        """An independent store trusting what this one does (the same root, anchors, banks and
        CRLs, nothing re-verified), with an empty certificate cache: adding to either leaves
        the other as it was. What a holder that updates its store all-or-nothing changes,
        instead of re-validating every certificate and CRL from their DER."""
        return replace(
            self,
            anchors=dict(self.anchors),
            banks=dict(self.banks),
            crls=dict(self.crls),
            _revoked=dict(self._revoked),
            _issuers=dict(self._issuers),
            _verified={},
        )

    def add_bank(self, bank_der: bytes) -> x509.Certificate:
        """Validate a bank CA certificate against the root (or an old root the root certified)
        and trust it; an OldWithNew certificate (the root certifying an old root's key, path
        length 1) makes that old root an anchor."""
        try:
            bank = x509.load_der_x509_certificate(bank_der)
            issuer_name = bank.issuer.public_bytes()
            own = issuer_name == self.root.subject.public_bytes()
            bank.verify_directly_issued_by(self.root if own else self.anchors[issuer_name])
        except Exception as exc:
            raise VerificationError(Rejection.UNKNOWN_ISSUER, f"bank CA: {_why(exc)}") from None
        if own and _is_ca(bank, 1):
            subject = bank.subject.public_bytes()
            if subject == self.root.subject.public_bytes():
                raise VerificationError(Rejection.BAD_CERTIFICATE, "the root certifies itself")
            self.anchors[subject] = bank
            return bank
        if not _is_ca(bank, 0):
            raise VerificationError(
                Rejection.BAD_CERTIFICATE, "bank is not a CA with path length 0"
            )
        try:
            subject = bank.subject.public_bytes()
            if der_reader.certificate_parts(bank_der).subject != subject:
                raise ValueError("its name is not in DER")
            key: PublicKey = bank.public_key()  # type: ignore[assignment]
            issuer = _Issuer(common_name(bank.subject), key, algorithm_of(key))
        except Exception as exc:
            raise VerificationError(Rejection.BAD_CERTIFICATE, f"bank CA: {_why(exc)}") from None
        if not own and issuer.algorithm is not algorithm_of(self.anchors[issuer_name].public_key()):  # type: ignore[arg-type]
            # an old root's banks are of its algorithm: another is its broken key's forgery
            raise VerificationError(
                Rejection.BAD_CERTIFICATE, "an old root certifies banks of its own algorithm only"
            )
        self.banks[subject] = bank
        self._issuers[subject] = issuer
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
            raise VerificationError(Rejection.UNKNOWN_ISSUER, f"CRL: {_why(exc)}") from None
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
        """The DER bank CA certificates held (and the OldWithNew certificates, first)."""
        return [der(b) for b in [*self.anchors.values(), *self.banks.values()]]

    def crl_ders(self) -> list[bytes]:
        """The DER CRLs held."""
        return [der(c) for c in self.crls.values()]

    def crl_numbers(self) -> list[tuple[str, int]]:
        """``(bank, crl_number)`` of each CRL held, by bank name."""
        return sorted(  # a bank's old and new CAs sign CRLs with the same number: one pair
            {
                (
                    common_name(c.issuer),
                    c.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number,
                )
                for c in self.crls.values()
            }
        )

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

    def revokes(self, cert_der: bytes) -> bool:
        """Whether a CRL held revokes this wallet certificate (checked as ``wallet_certificate``
        with ``at=None`` first: a certificate no known bank issued raises)."""
        hit = self._verified.get(cert_der)
        issuer_key, parsed = hit if hit is not None else self._verify_certificate(cert_der)
        return parsed.serial in self._revoked.get(issuer_key, frozenset())

    def _verify_certificate(self, cert_der: bytes) -> tuple[bytes, WalletCertificate]:
        try:
            cert = x509.load_der_x509_certificate(cert_der)
            parts = der_reader.certificate_parts(cert_der)
        except Exception as exc:
            raise VerificationError(Rejection.BAD_CERTIFICATE, _why(exc)) from None
        issuer = self._issuers.get(parts.issuer)
        if issuer is None:
            try:  # cryptography parses names lazily: a malformed one raises here
                name = common_name(cert.issuer)
            except Exception as exc:
                raise VerificationError(Rejection.BAD_CERTIFICATE, _why(exc)) from None
            raise VerificationError(Rejection.UNKNOWN_ISSUER, name)
        if not issuer.signed(cert, parts.tbs):
            raise VerificationError(Rejection.BAD_CERTIFICATE_SIGNATURE)
        result = parts.issuer, _wallet_fields(cert, cert_der, parts, issuer)
        if self.certificate_cache > 0:
            if len(self._verified) >= self.certificate_cache:
                self._verified.clear()
            self._verified[cert_der] = result
        return result

    def bank_certificate(self, cert_der: bytes) -> x509.Certificate:
        """A bank CA certificate this store holds, given its DER (for bank-signed messages)."""
        try:  # cryptography parses names lazily: a malformed subject raises here (KeyError...)
            cert = x509.load_der_x509_certificate(cert_der)
            held = self.banks.get(cert.subject.public_bytes())
        except Exception as exc:
            raise VerificationError(Rejection.BAD_CERTIFICATE, _why(exc)) from None
        if held is None or der(held) != cert_der:
            raise VerificationError(Rejection.UNKNOWN_ISSUER, common_name(cert.subject))
        return held


def _issuer_of(cert_der: bytes) -> bytes | None:
    try:
        return der_reader.certificate_parts(cert_der).issuer
    except ValueError:
        return None  # add_bank names the defect


def roll_over(old_root: x509.Certificate, new_root_der: bytes, new_with_old_der: bytes) -> bytes:
    """The new root, once its NewWithOld certificate (RFC 4210 section 4.4: the new root's key
    certified by ``old_root``) shows that the old root vouches for it; ``VerificationError``
    otherwise. Only a move from a classical to a post-quantum root is accepted: the reverse
    (a downgrade) is ``ALGORITHM_NOT_ALLOWED``."""
    new = TrustStore.create(new_root_der).root
    try:
        link = x509.load_der_x509_certificate(new_with_old_der)
        link.verify_directly_issued_by(old_root)
        old_alg = algorithm_of(old_root.public_key())  # type: ignore[arg-type]
        new_alg = algorithm_of(new.public_key())  # type: ignore[arg-type]
    except Exception as exc:
        raise VerificationError(Rejection.UNKNOWN_ISSUER, f"NewWithOld: {_why(exc)}") from None
    if (
        not _is_ca(link, 1)
        or link.subject != new.subject
        or spki(link.public_key()) != spki(new.public_key())  # type: ignore[arg-type]
    ):
        raise VerificationError(Rejection.BAD_CERTIFICATE, "NewWithOld does not certify the root")
    if old_alg.post_quantum or not new_alg.post_quantum:
        raise VerificationError(
            Rejection.ALGORITHM_NOT_ALLOWED,
            f"a root moves from a classical algorithm to ML-DSA, not {old_alg.short} to "
            f"{new_alg.short}",
        )
    return new_root_der


def _wallet_fields(
    cert: x509.Certificate, cert_der: bytes, parts: der_reader.CertificateParts, issuer: _Issuer
) -> WalletCertificate:
    """The wallet certificate's fields, once its issuer's signature has verified: the profile
    is read from the signed DER (``parts``), the key, serial and validity by cryptography."""
    extensions = parts.extensions
    try:
        usage = extensions.get(der_reader.KEY_USAGE)
        if (
            extensions.get(der_reader.BASIC_CONSTRAINTS) != _END_ENTITY
            or usage is None
            or not der_reader.key_usage_bit(usage, 0)
        ):
            raise ValueError("not an end-entity signing certificate")
        unknown = parts.critical - _UNDERSTOOD
        if unknown:  # RFC 5280 section 4.2: a critical extension not understood is refused
            raise ValueError(f"unknown critical extension (OID octets {min(unknown).hex()})")
        policy = extensions.get(_WALLET_POLICY)
        if policy is None:
            raise ValueError("no WalletPolicy extension")
        limits, counter_base = decode_policy(policy)
        digest_value = extensions.get(_KEY_DIGEST)
        digest = None if digest_value is None else decode_key_digest(digest_value)
        public_key: PublicKey = cert.public_key()  # type: ignore[assignment]
        alg = algorithm_of(public_key)
        name = der_reader.common_name(parts.subject)
        wallet_id = WalletId.parse(name)
        if str(wallet_id) != name:  # exactly the canonical text: lowercase, nothing around
            raise ValueError(f"common name {name!r} is not a wallet id's canonical text form")
    except (ValueError, DecodeError) as exc:
        raise VerificationError(Rejection.BAD_CERTIFICATE, _why(exc)) from None
    return WalletCertificate(
        der=cert_der,
        wallet_id=wallet_id,
        serial=cert.serial_number,
        bank=issuer.name,
        not_before=int(cert.not_valid_before_utc.timestamp()),
        not_after=int(cert.not_valid_after_utc.timestamp()),
        public_key=public_key,
        algorithm=alg,
        limits=limits,
        counter_base=counter_base,
        encryption_key_digest=digest,
        issuer_algorithm=issuer.algorithm,
    )


def _why(exc: Exception) -> str:
    """What was wrong with a certificate or CRL, for people: ``cryptography``'s ASN.1 parse
    errors carry a Rust debug dump (``ParseError { kind: UnexpectedTag ... }``), said here as
    what it means; other reasons (ours, or cryptography's plain ones) as they are."""
    text = str(exc)
    return "not valid DER (ASN.1)" if text.startswith("error parsing asn1 value") else text
