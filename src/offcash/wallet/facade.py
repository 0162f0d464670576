"""A wallet: a secure element and the settlement service it is enrolled with, as one object.

Theory of operation: every online step of a wallet pairs one secure-element operation with one
settlement call, in an order that loses nothing if either side fails: enrol (the SE makes the
CSR, the bank certifies it, the SE installs the certificate), fund (the bank debits the owner's
account for a voucher, the SE loads it; a retry with the same idempotency key gets the same
voucher, which the SE credits once), unload (the SE debits and signs, the bank credits; if the
call fails, the next sync settles the signed request), and sync (the SE signs its log,
settlement settles it, the SE applies the acknowledgement and the renewed certificate).
``Wallet`` does exactly that and nothing else, over any ``Settlement`` (in process or HTTP), so
an app does not re-implement the CLI's glue. Offline payments need no settlement: they go
through the sans-I/O exchange (``offcash.protocol.PayerSide`` / ``PayeeSide`` over the SE); the
transport (QR, NFC, file) is the app's.

The SE is used as given: a ``SoftwareSecureElement`` on a ``SealedFile`` persists each
operation atomically; to keep other processes out between the two halves of a step, open the
file with ``SealedFile.locked`` for as long as the ``Wallet`` is used.
"""

from __future__ import annotations

from offcash.domain.ids import WalletId
from offcash.errors import LocalError, OffcashError
from offcash.se.interface import SecureElement, Status
from offcash.wallet.settlement import NetworkInfo, Settlement, SyncAnswer


class RevokedAtSync(LocalError):
    """Settlement revoked the wallet at its sync (a double spend, a log that does not
    reconcile, a loss report): it answered no acknowledgement and no certificate."""

    code = "revoked-at-sync"

    def __init__(self, wallet: WalletId, anomalies: list[str]) -> None:
        reasons = "; ".join(anomalies) or "revoked"
        super().__init__(f"wallet {wallet} was revoked by settlement: {reasons}")
        self.wallet = wallet
        self.anomalies = anomalies


class Wallet:
    """A secure element and the settlement service it syncs with (see the module doc)."""

    def __init__(self, se: SecureElement, settlement: Settlement) -> None:
        #: the wallet's secure element (its key, balance, counter and log)
        self.se = se
        #: the settlement service: ``LedgerService`` in process or ``offcash.api.Client``
        self.settlement = settlement

    @classmethod
    def enrol(
        cls,
        se: SecureElement,
        settlement: Settlement,
        account: str,
        now: int,
        *,
        idempotency_key: str | None = None,
    ) -> Wallet:
        """Enrol a new secure element for ``account`` (its bank certifies the SE's key)."""
        answer = settlement.enroll(se.csr(), account, now, idempotency_key=idempotency_key)
        se.enroll(answer.certificate, answer.bank_certificates, answer.crls, now)
        return cls(se, settlement)

    @property
    def wallet_id(self) -> WalletId:
        """The wallet id the bank certified (``LocalError`` before enrolment)."""
        wid = self.se.status(0).wallet_id
        if wid is None:
            raise LocalError("the wallet is not enrolled yet")
        return wid

    def status(self, now: int) -> Status:
        """Balance, counters, limits and certificate expiry, as the SE sees them."""
        return self.se.status(now)

    def fund(self, amount: int, now: int, *, idempotency_key: str | None = None) -> int:
        """Move ``amount`` (minor units) from the owner's account into the SE; the amount
        credited. Retry a failed call with the same ``idempotency_key``: the account is debited
        once, and the SE refuses to load one voucher twice."""
        voucher = self.settlement.fund(self.wallet_id, amount, now, idempotency_key)
        return self.se.load(voucher, now)

    def unload(self, amount: int, now: int) -> int:
        """Move ``amount`` from the SE back to the owner's account; the amount credited. If
        the call fails after the SE signed, the next ``sync`` settles the unload."""
        request = self.se.unload(amount, now)
        return self.settlement.unload(request, now)

    def migrate(self, network: NetworkInfo) -> None:
        """Follow the network's algorithm migration (``network`` from the settlement service):
        the SE trusts the new root and makes a key of the new algorithm, which the next
        ``sync`` certifies; until then it pays under its old certificate. ``LocalError`` if the
        network has not migrated."""
        if network.new_with_old is None:
            raise LocalError("the network has not migrated to another algorithm")
        self.se.migrate(
            network.params, network.root, network.new_with_old, network.bank_certificates
        )

    def sync(self, now: int) -> SyncAnswer:
        """Settle the SE's log, then apply the acknowledgement and the renewed certificate;
        ``RevokedAtSync`` if settlement revoked the wallet (the SE then holds the CRL that
        lists it, and refuses to pay)."""
        upload = self.se.sync_upload(now)
        try:
            answer = self.settlement.sync(upload.report, upload.entries, self.se.csr(), now)
        except OffcashError as exc:
            if exc.code == "wallet-revoked":  # revoked before: install the CRL that says so
                self.se.install_crls(list(self.settlement.trust_material(None, now).crls), now)
            raise
        if answer.ack is None or answer.certificate is None:
            self.se.install_crls(list(answer.crls), now)  # the SE learns it: it stops paying
            raise RevokedAtSync(self.wallet_id, list(answer.anomalies))
        self.se.apply_sync(
            answer.ack, answer.certificate, answer.bank_certificates, answer.crls, now
        )
        return answer
