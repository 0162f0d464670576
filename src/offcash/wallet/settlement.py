"""The settlement service as a wallet, an app or the CLI sees it: one typed protocol.

Theory of operation: settlement is reached in process (``offcash.ledger.LedgerService``, on the
ledger database) or over HTTP (``offcash.api.Client``, against ``offcash serve``). Both
implement ``Settlement`` (what a wallet needs: the network, enrolment, funding, unloading,
sync) and ``Operations`` (that and the operator's calls: accounts, lost devices, audit), and
mypy checks that they do (``tests/wallet/test_settlement.py`` assigns each to a variable of
these types). The answers are described here structurally, as read-only attributes, so this
core module imports neither the ledger nor the HTTP stack; the two implementations return
their own dataclasses, which have these attributes. ``NetworkInfo`` is the one answer defined
here: what a new wallet needs before it has anything else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from offcash.domain.ids import WalletId
from offcash.domain.network import NetworkParams
from offcash.se.log import Entry


@dataclass(frozen=True)
class NetworkInfo:
    """The network parameters and trust anchors a new wallet needs (``GET /v1/network``)."""

    #: currency, signature algorithm, maximum payment age and clock skew
    params: NetworkParams
    #: the central bank's root certificate (DER): the one trust anchor
    root: bytes
    #: the banks' CA certificates (DER), each certified by the root (after an algorithm
    #: migration, with the OldWithNew certificate and the old banks' CAs)
    bank_certificates: list[bytes]
    #: after an algorithm migration, the NewWithOld certificate: the old root vouching for the
    #: new one, what a wallet made before the migration needs to follow it (``Wallet.migrate``)
    new_with_old: bytes | None = None


class EnrollmentAnswer(Protocol):
    """What a newly enrolled secure element installs."""

    @property
    def wallet_id(self) -> WalletId:
        """The wallet id the bank gave the SE's key."""

    @property
    def certificate(self) -> bytes:
        """The wallet certificate (DER), with the certified limits."""

    @property
    def bank_certificates(self) -> list[bytes]:
        """The bank CA certificates (DER)."""

    @property
    def crls(self) -> list[bytes]:
        """The current certificate revocation lists (DER)."""


class RefusalAnswer(Protocol):
    """A message settlement refused."""

    @property
    def digest(self) -> bytes:
        """The refused message's digest."""

    @property
    def reason(self) -> str:
        """Why: a ``Rejection`` name or a ledger rule."""


class SyncAnswer(Protocol):
    """What settlement answers a sync; ``ack`` and ``certificate`` are None if it revoked the
    wallet."""

    @property
    def ack(self) -> bytes | None:
        """The bank-signed acknowledgement the SE applies (None: revoked)."""

    @property
    def certificate(self) -> bytes | None:
        """The renewed wallet certificate (None: revoked)."""

    @property
    def bank_certificates(self) -> list[bytes]:
        """The bank CA certificates (DER)."""

    @property
    def crls(self) -> list[bytes]:
        """The current CRLs (DER)."""

    @property
    def settled(self) -> int:
        """How many of the uploaded payments settled now."""

    @property
    def refused(self) -> Sequence[RefusalAnswer]:
        """The uploaded messages settlement refused, with the reason."""

    @property
    def anomalies(self) -> Sequence[str]:
        """What settlement detected about this wallet (each revokes it)."""


class RedeemAnswer(Protocol):
    """The outcome of a terminal's redemption."""

    @property
    def settled(self) -> int:
        """How many payments settled now."""

    @property
    def amount(self) -> int:
        """What they credited to the terminal's owner (minor units)."""

    @property
    def duplicates(self) -> int:
        """How many had settled before (credited once, not again)."""

    @property
    def refused(self) -> Sequence[RefusalAnswer]:
        """The payments settlement refused, with the reason (the terminal keeps them)."""


class TrustAnswer(Protocol):
    """What a verifier needs offline: the root, the bank CAs and the current CRLs."""

    @property
    def root(self) -> bytes:
        """The central bank's root certificate (DER)."""

    @property
    def bank_certificates(self) -> list[bytes]:
        """The bank CA certificates (DER)."""

    @property
    def crls(self) -> list[bytes]:
        """The current CRLs (DER)."""


class BankPositionAnswer(Protocol):
    """One bank's position in the audit."""

    @property
    def reserve(self) -> int:
        """What the bank's reserve account holds (minor units)."""

    @property
    def float(self) -> int:
        """What the bank's wallets hold by the books (its float)."""

    @property
    def customers(self) -> int:
        """What its customers' accounts hold."""

    @property
    def losses(self) -> int:
        """What broken SEs of its wallets cost it."""


class AuditAnswer(Protocol):
    """The proof that the books balance: ``issued == customers + reserves + float + suspense``."""

    @property
    def issued(self) -> int:
        """All money the central bank issued."""

    @property
    def customers(self) -> int:
        """What all customer accounts hold."""

    @property
    def reserves(self) -> int:
        """What all bank reserves hold."""

    @property
    def float(self) -> int:
        """What all wallets hold by the books."""

    @property
    def suspense(self) -> int:
        """What waits for a rule to decide it (torn payments)."""

    @property
    def banks(self) -> Mapping[str, BankPositionAnswer]:
        """Each bank's position, by name."""

    @property
    def journal_entries(self) -> int:
        """How many journal entries the books hold."""

    @property
    def unbalanced_entries(self) -> int:
        """How many of them do not balance (0 in sound books)."""

    @property
    def balanced(self) -> bool:
        """Whether the issued total equals what all accounts hold, entry by entry."""


class AnomalyAnswer(Protocol):
    """Something settlement detected, with its evidence (a signed message) if any."""

    @property
    def kind(self) -> str:
        """``double-spend``, ``reconcile``, ``counterfeit``..."""

    @property
    def wallet(self) -> WalletId | None:
        """The wallet it is about."""

    @property
    def bank(self) -> str | None:
        """The bank that bears it."""

    @property
    def amount(self) -> int:
        """The amount at stake (minor units)."""

    @property
    def time(self) -> int:
        """When settlement detected it (seconds since the epoch)."""

    @property
    def detail(self) -> str:
        """A human explanation."""

    @property
    def evidence(self) -> bytes | None:
        """The signed message that shows it, if any."""


class Settlement(Protocol):
    """What a wallet needs from settlement, in process or over HTTP (see the module doc).

    Every call that creates or moves something takes an optional ``idempotency_key``: a retry
    with the same key takes effect once and gets the first answer."""

    def network(self) -> NetworkInfo:
        """The network's parameters and trust anchors (no credential needed)."""

    def trust_material(self, wallet: WalletId | None, now: int) -> TrustAnswer:
        """The root, bank CAs and current CRLs, for a verifier."""

    def enroll(
        self, csr: bytes, account: str, now: int, *, idempotency_key: str | None = None
    ) -> EnrollmentAnswer:
        """Certify an SE's key (its CSR) for a new wallet owned by ``account`` (operator)."""

    def fund(
        self, wallet: WalletId, amount: int, now: int, idempotency_key: str | None = None
    ) -> bytes:
        """Debit the owner's account for a single-use load voucher for ``wallet`` (operator)."""

    def unload(self, request: bytes, now: int) -> int:
        """Credit an SE-signed unload request to the owner's account; the amount credited."""

    def sync(
        self, report: bytes, entries: Sequence[bytes | Entry], csr: bytes, now: int
    ) -> SyncAnswer:
        """Settle a wallet's SE-signed log (``SecureElement.sync_upload``'s report and
        entries) and renew its certificate from ``csr``."""


class Operations(Settlement, Protocol):
    """``Settlement`` and the operator's calls: accounts, lost devices, torn payments, audit."""

    def issue(self, bank: str, amount: int, now: int, idempotency_key: str | None = None) -> None:
        """The central bank issues ``amount`` into ``bank``'s reserves."""

    def open_account(self, bank: str, holder: str, idempotency_key: str | None = None) -> str:
        """Open a customer account at ``bank``; its id."""

    def distribute(
        self, account: str, amount: int, now: int, idempotency_key: str | None = None
    ) -> None:
        """Move ``amount`` from the account's bank reserves to the account."""

    def balance(self, account: str) -> int:
        """What an account holds (minor units)."""

    def register_terminal(self, account: str, idempotency_key: str | None = None) -> WalletId:
        """Register a receive-only terminal paying into ``account``; its wallet id."""

    def redeem(self, terminal: WalletId, payments: Iterable[bytes], now: int) -> RedeemAnswer:
        """Settle payments a receive-only terminal accepted into its owner's account."""

    def report_lost(self, wallet: WalletId, now: int) -> None:
        """Revoke a lost wallet now (its refund waits for the claim window)."""

    def refund_lost(self, wallet: WalletId, now: int) -> int:
        """After the claim window, refund a lost wallet's balance to its owner (once)."""

    def release_torn(self, now: int) -> int:
        """Pay torn payments too old for any payee to accept to the payees' owners."""

    def audit(self) -> AuditAnswer:
        """The audit of the whole books."""

    def anomalies(self, wallet: WalletId | None = None) -> Sequence[AnomalyAnswer]:
        """What settlement detected (all, or for one wallet), oldest first."""

    def evidence(self, payer: WalletId) -> Sequence[tuple[int, Sequence[bytes]]]:
        """For each double-spent counter of ``payer``: every distinct signed message."""
