"""Test helpers for the ledger: a pilot network installed in a ledger, with funded wallets."""

from __future__ import annotations

from dataclasses import dataclass

from offcash.domain.ids import WalletId
from offcash.ledger import LedgerService
from offcash.ledger.sync import SyncResult
from offcash.se.software import SoftwareSecureElement

from harness import T0, PilotNetwork


@dataclass
class World:
    """A pilot network installed in a fresh ledger, with helpers for funded wallets."""

    net: PilotNetwork
    ledger: LedgerService

    def account(self, bank: str = "Bank A", amount: int = 100_000) -> str:
        acct = self.ledger.open_account(bank, "holder")
        if amount:
            self.ledger.distribute(acct, amount, T0)
        return acct

    def wallet(self, balance: int = 0, bank: str = "Bank A", account: str | None = None,
               now: int = T0) -> tuple[SoftwareSecureElement, WalletId, str]:
        acct = account or self.account(bank)
        se = self.net.new_se()
        e = self.ledger.enroll(se.csr(), acct, now)
        se.enroll(e.certificate, e.bank_certificates, e.crls, now)
        if balance:
            se.load(self.ledger.fund(e.wallet_id, balance, now), now)
        return se, e.wallet_id, acct

    def sync(self, se: SoftwareSecureElement, now: int, apply: bool = True) -> SyncResult:
        up = se.sync_upload(now)
        res = self.ledger.sync(up.report, [x.encode() for x in up.entries], se.csr(), now)
        if apply and res.ack is not None and res.certificate is not None:
            se.apply_sync(res.ack, res.certificate, res.bank_certificates, res.crls, now)
        return res


