"""Test harness: a small pilot network that makes enrolled, funded secure elements."""

from __future__ import annotations

from dataclasses import dataclass, field

from offcash.crypto.algorithms import SignatureAlgorithm
from offcash.domain.ids import WalletId
from offcash.domain.limits import DEFAULT_LIMITS, Limits
from offcash.domain.network import NetworkParams
from offcash.issuance import Bank, CentralBank
from offcash.protocol.messages import parse_report
from offcash.se.software import SoftwareSecureElement

T0 = 1_790_000_000  # a fixed "now" (2026-09-21) so tests never read the clock


@dataclass
class PilotNetwork:
    """A central bank, banks and helpers to make enrolled, funded secure elements."""

    params: NetworkParams
    central_bank: CentralBank
    banks: list[Bank]
    crls: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def create(
        cls, algorithm: SignatureAlgorithm = SignatureAlgorithm.P256, currency: str = "EUR"
    ) -> PilotNetwork:
        cb = CentralBank.create("Test Central Bank", algorithm, T0 - 86400)
        banks = [cb.certify_bank(name, T0 - 86400) for name in ("Bank A", "Bank B")]
        return cls(NetworkParams(currency, algorithm), cb, banks)

    def bank(self, name: str = "Bank A") -> Bank:
        return next(b for b in self.banks if b.name == name)

    @property
    def bank_ders(self) -> list[bytes]:
        return [b.certificate_der for b in self.banks]

    def new_se(self) -> SoftwareSecureElement:
        return SoftwareSecureElement(
            SoftwareSecureElement.new_state(self.params, self.central_bank.certificate_der)
        )

    def wallet(
        self,
        balance: int = 0,
        bank: str = "Bank A",
        limits: Limits = DEFAULT_LIMITS,
        now: int = T0,
        se: SoftwareSecureElement | None = None,
    ) -> SoftwareSecureElement:
        """An enrolled SE, funded with ``balance`` by a voucher."""
        se = se or self.new_se()
        b = self.bank(bank)
        cert = b.certify_wallet(se.csr(), WalletId.random(), limits, 0, now)
        se.enroll(cert, self.bank_ders, list(self.crls.values()), now)
        if balance:
            se.load(b.voucher(se.status(now).wallet_id, balance, self.params.currency, now), now)  # type: ignore[arg-type]
        return se

    def sync(self, se: SoftwareSecureElement, now: int, limits: Limits = DEFAULT_LIMITS) -> None:
        """Acknowledge the SE's log and renew its certificate (settlement without the ledger)."""
        status = se.status(now)
        bank = self.bank(status.bank or "")
        upload = se.sync_upload(now)
        report = parse_report(upload.report)
        cert = bank.certify_wallet(se.csr(), status.wallet_id, limits, report.counter, now)  # type: ignore[arg-type]
        se.apply_sync(
            bank.acknowledge(report, status.wallet_id, now),
            cert,
            self.bank_ders,  # type: ignore[arg-type]
            list(self.crls.values()),
            now,
        )
