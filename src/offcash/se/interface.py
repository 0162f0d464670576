"""The secure element interface: where a hardware SE, a smart card or a TEE plugs in.

Theory of operation: a secure element holds what must not be copied or altered by its owner:
the wallet's private key, its balance, a monotonic counter, the bank's limits, the trusted root
and CRLs, outstanding request nonces and the log since the last sync. Every method is one
atomic transaction on that state: it either happens entirely (and is persisted) or not at all,
and checks its arguments first (a wrong type is a ``TypeError``, a value out of range a
``ValueError``, with nothing changed).
The wallet talks to the SE only through this interface; ``SoftwareSecureElement`` implements it
in software for development and pilots. The interface is what the wallet (``offcash.wallet``)
and the exchange (``offcash.protocol``) use, nothing more: besides the operations, two public
read-only properties, ``params`` (the network the SE was made for) and ``trust`` (the root, bank
CAs and CRLs it holds, with which a payer checks a receipt). The contract of every operation,
and a suite that checks an implementation against it, is ``offcash.se.conformance``
(docs/SE-CONFORMANCE.md).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

from offcash.crypto.trust import TrustStore
from offcash.domain.ids import WalletId
from offcash.domain.limits import Limits
from offcash.domain.network import NetworkParams
from offcash.errors import SecureElementError
from offcash.se.log import Entry


@dataclass(frozen=True, slots=True)
class Received:
    """The outcome of receiving a payment: what was accepted, and a signed receipt."""

    #: the paying wallet
    payer: WalletId
    #: the amount credited (minor units; credited once, also when ``duplicate``)
    amount: int
    #: the payer's counter for this payment
    counter: int
    #: the payment message's digest
    digest: bytes
    #: the payee SE's signed receipt for the payer (None from a terminal)
    receipt: bytes | None
    #: True if this payment had been received before (a re-send): not credited again
    duplicate: bool


@dataclass(frozen=True, slots=True)
class Status:
    """What the SE shows its owner."""

    #: the wallet id its certificate names (None before enrolment)
    wallet_id: WalletId | None
    #: the bank that certified it (None before enrolment)
    bank: str | None
    #: the network's currency code
    currency: str
    #: what the SE holds (minor units)
    balance: int
    #: the counter of its last signed debit (payment or unload)
    counter: int
    #: the offline limits its certificate carries (None before enrolment)
    limits: Limits | None
    #: when its certificate expires (seconds since the epoch; renewed at each sync)
    certificate_expires: int | None
    #: when it last applied a sync acknowledgement
    last_sync: int | None
    #: payments signed since the last sync
    offline_payments: int
    #: value sent offline since the last sync (minor units)
    offline_value: int
    #: log entries held for the next sync
    log_entries: int


@dataclass(frozen=True, slots=True)
class SyncUpload:
    """What a wallet uploads at a sync: the SE-signed report and the log entries it covers."""

    #: the SE-signed sync report (balance, counters, the digest chaining the entries)
    report: bytes
    #: the log entries since the last acknowledged sync (``Settlement.sync`` takes them as is)
    entries: list[Entry]


class SecureElement(abc.ABC):
    """A wallet's secure element."""

    @property
    @abc.abstractmethod
    def params(self) -> NetworkParams:
        """The network parameters this SE was made for (public data)."""

    @property
    @abc.abstractmethod
    def trust(self) -> TrustStore:
        """The trust anchors it holds: the root, the bank CAs and the CRLs it verifies with
        (public data, for the payer to check a receipt; read it, never change it: an
        implementation may hand out its own store or a copy)."""

    @abc.abstractmethod
    def csr(self) -> bytes:
        """A CSR for the SE's key (generated inside the SE at creation; it never leaves)."""

    def migrate(
        self,
        params: NetworkParams,
        root_certificate: bytes,
        new_with_old: bytes,
        bank_certificates: list[bytes],
    ) -> None:
        """Follow the network's algorithm migration (docs/PROTOCOL.md, "Algorithm
        migration"): trust the new root if the old one vouches for it, and make a key of the
        new algorithm that the next sync certifies. An SE that cannot refuses."""
        raise SecureElementError("this secure element cannot change its signature algorithm")

    @abc.abstractmethod
    def enroll(
        self, certificate: bytes, bank_certificates: list[bytes], crls: list[bytes], now: int
    ) -> None:
        """Install the first wallet certificate, the bank CAs and CRLs."""

    @abc.abstractmethod
    def install_crls(self, crls: list[bytes], now: int) -> bool:
        """Install newer CRLs of the banks the SE holds (others are ignored), e.g. from a sync
        answer that carried no acknowledgement because the bank revoked the wallet; returns
        whether a CRL held now revokes this SE's own certificate (it then refuses to pay)."""

    @abc.abstractmethod
    def status(self, now: int) -> Status:
        """The SE's balance, counters and limits."""

    @abc.abstractmethod
    def request(
        self,
        amount: int,
        now: int,
        reference: str | None = None,
        payee_name: str | None = None,
        nonce: bytes | None = None,
    ) -> bytes:
        """A payment request for ``amount``, remembered as outstanding."""

    @abc.abstractmethod
    def pay(self, request: bytes, now: int) -> bytes:
        """Debit and sign a payment answering ``request``; the same request again (same payee,
        nonce and terms) gets the same payment bytes, never a second payment."""

    @abc.abstractmethod
    def pay_to(self, payee: WalletId, amount: int, now: int, reference: str | None = None) -> bytes:
        """Debit and sign a one-way payment to ``payee`` (no request)."""

    @abc.abstractmethod
    def sent_payment(self, counter: int) -> bytes:
        """The payment signed with ``counter``, to re-send after a torn transfer."""

    @abc.abstractmethod
    def open_sealed(self, data: bytes) -> bytes:
        """The plaintext of a message a payer sealed for this SE's encryption key (the key its
        requests carry); the key never leaves the SE. ``DecodeError`` if ``data`` is not a
        sealed message, ``CannotDecrypt`` if it is not for this SE."""

    @abc.abstractmethod
    def receive(self, payment: bytes, now: int) -> Received:
        """Verify and credit a payment (exactly once; a re-send is reported as a duplicate)."""

    @abc.abstractmethod
    def load(self, voucher: bytes, now: int) -> int:
        """Apply a bank's single-use load voucher; returns the amount credited."""

    @abc.abstractmethod
    def unload(self, amount: int, now: int) -> bytes:
        """Debit ``amount`` and sign a single-use unload request for the bank."""

    @abc.abstractmethod
    def sync_upload(self, now: int) -> SyncUpload:
        """The signed report and the log entries for a sync."""

    @abc.abstractmethod
    def apply_sync(
        self,
        ack: bytes,
        certificate: bytes,
        bank_certificates: list[bytes],
        crls: list[bytes],
        now: int,
    ) -> None:
        """Apply the bank's acknowledgement: drop settled entries, renew the certificate."""
