"""The issuing side: the central bank's root CA and each bank's CA operations, without storage.

Theory of operation: ``CentralBank`` certifies banks; ``Bank`` enrols wallets (CSR to a
short-lived certificate with its limits), signs single-use load vouchers, acknowledges syncs
and issues CRLs. These are pure signing operations on keys held in memory; the settlement
service (``offcash.ledger``) decides *when* to call them and records what they produced.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

from cryptography import x509

from offcash.crypto import pki
from offcash.crypto.algorithms import PublicKey, SignatureAlgorithm
from offcash.crypto.signer import SigningKey, as_signer, new_sibling
from offcash.domain.ids import WalletId, new_nonce
from offcash.domain.limits import Limits
from offcash.protocol import messages as m

VOUCHER_VALIDITY = 24 * 3600


@dataclass
class CentralBank:
    """The root certificate authority of one network."""

    key: SigningKey
    certificate: x509.Certificate

    @classmethod
    def create(
        cls, name: str, algorithm: SignatureAlgorithm, now: int, key: SigningKey | None = None
    ) -> CentralBank:
        """A new central bank with a fresh root key (or ``key``, e.g. one made in an HSM)."""
        key = algorithm.generate() if key is None else key
        return cls(key, pki.issue_root(key, name, now))

    def migrate(
        self, algorithm: SignatureAlgorithm, now: int, key: SigningKey | None = None
    ) -> tuple[CentralBank, bytes, bytes]:
        """The new root of an algorithm migration (its name qualified by the algorithm), with
        the NewWithOld certificate (this root vouching for the new one, for holders of this
        root) and the OldWithNew one (the new root vouching for this one, so old wallet
        certificates stay valid until they expire), both DER."""
        key = algorithm.generate() if key is None else key
        name = pki.common_name(self.certificate.subject)
        new = CentralBank(key, pki.issue_root(key, name, now, algorithm.short))
        new_with_old = pki.cross_certify(self.key, self.certificate, new.certificate, now)
        old_with_new = pki.cross_certify(key, new.certificate, self.certificate, now)
        return new, pki.der(new_with_old), pki.der(old_with_new)

    @functools.cached_property
    def certificate_der(self) -> bytes:
        """The root certificate, DER (encoded once)."""
        return pki.der(self.certificate)

    def certify_bank(self, name: str, now: int) -> Bank:
        """A new bank CA with a fresh key, certified by this root (the key is made where the
        root key lives: in memory, or in the same HSM token)."""
        key = new_sibling(self.key, name)
        public_key = as_signer(key).public_key()
        generation = self.certificate.subject.get_attributes_for_oid(
            x509.NameOID.GENERATION_QUALIFIER
        )  # a migrated root's banks carry its qualifier too
        qualifier = str(generation[0].value) if generation else None
        return Bank(
            key, pki.issue_bank(self.key, self.certificate, public_key, name, now, qualifier)
        )


@dataclass
class Bank:
    """A bank's intermediate CA."""

    key: SigningKey
    certificate: x509.Certificate

    @functools.cached_property
    def name(self) -> str:
        """The bank's name (its certificate's common name, read once)."""
        return pki.common_name(self.certificate.subject)

    @functools.cached_property
    def certificate_der(self) -> bytes:
        """The bank CA certificate, DER (encoded once: every acknowledgement carries it)."""
        return pki.der(self.certificate)

    def certify_wallet(
        self,
        csr: bytes,
        wallet_id: WalletId,
        limits: Limits,
        counter_base: int,
        now: int,
        validity: dt.timedelta = pki.DEFAULT_WALLET_VALIDITY,
    ) -> bytes:
        """A wallet certificate (DER) for the key in ``csr``.

        Raises ``DecodeError`` if the CSR is malformed or its proof of possession fails."""
        public_key = pki.csr_public_key(csr)
        kem = pki.csr_encryption_key(csr)
        return self.certify_key(public_key, wallet_id, limits, counter_base, now, validity, kem)

    def certify_key(
        self,
        public_key: PublicKey,
        wallet_id: WalletId,
        limits: Limits,
        counter_base: int,
        now: int,
        validity: dt.timedelta = pki.DEFAULT_WALLET_VALIDITY,
        encryption_key: bytes | None = None,
    ) -> bytes:
        """A wallet certificate (DER) for a key whose CSR the caller has already checked
        (``pki.csr_public_key``), binding the SHA-256 of the SE's KEM public key if given
        (checked by ``pki.csr_encryption_key``)."""
        cert = pki.issue_wallet(
            self.key,
            self.certificate,
            public_key,
            wallet_id,
            limits,
            counter_base,
            now,
            validity,
            encryption_key,
        )
        return pki.der(cert)

    def voucher(
        self,
        wallet: WalletId,
        amount: int,
        currency: str,
        now: int,
        voucher_id: bytes | None = None,
    ) -> bytes:
        """A single-use load voucher for ``wallet``."""
        return m.sign_voucher(
            self.key,
            self.certificate_der,
            wallet=wallet,
            amount=amount,
            currency=currency,
            voucher_id=voucher_id if voucher_id is not None else new_nonce(),
            time=now,
            expires=now + VOUCHER_VALIDITY,
        )

    def acknowledge(self, report: m.SyncReport, wallet: WalletId, now: int) -> bytes:
        """The acknowledgement that ``report``'s log is settled."""
        return m.sign_ack(
            self.key,
            self.certificate_der,
            wallet=wallet.raw,
            sync_seq=report.sync_seq,
            entries=report.entries,
            log_digest=report.log_digest,
            time=now,
        )

    def crl(self, revoked: list[tuple[int, int]], number: int, now: int) -> bytes:
        """A CRL (DER) listing ``(serial, revoked_at)`` pairs."""
        return pki.der(pki.build_crl(self.key, self.certificate, revoked, number, now))
