"""Test harness: a small pilot network that makes enrolled, funded secure elements.

A ``PilotNetwork`` makes in-memory software SEs unless it was given ``SEs`` (``with_ses``): then
every SE it makes is one of that kind's, made by its factory in a folder of its own (the
``network`` and ``p256`` fixtures of the SE-generic suites, tests/se_kinds.py).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from offcash.crypto.algorithms import SignatureAlgorithm
from offcash.domain.ids import WalletId
from offcash.domain.limits import DEFAULT_LIMITS, Limits
from offcash.domain.network import NetworkParams
from offcash.issuance import Bank, CentralBank
from offcash.protocol.messages import parse_report
from offcash.se.conformance import SEFactory
from offcash.se.interface import SecureElement
from offcash.se.software import SoftwareSecureElement

T0 = 1_790_000_000  # a fixed "now" (2026-09-21) so tests never read the clock


@dataclass
class SEs:
    """A test's secure elements of one kind: its factory, and a folder per SE under ``root``."""

    factory: SEFactory
    root: Path
    _made: list[tuple[SecureElement, Path]] = field(default_factory=list)

    @property
    def kind(self) -> str:
        """The kind of SE made here ("software", "card"...)."""
        return self.factory.kind

    def _fresh(self) -> Path:
        n = 1
        while (self.root / f"se{n}").exists():
            n += 1
        return self.root / f"se{n}"

    def new(
        self, params: NetworkParams, root_certificate: bytes, directory: Path | None = None
    ) -> SecureElement:
        """A new, unenrolled SE in ``directory`` (by default a fresh folder under ``root``)."""
        directory = directory or self._fresh()
        se = self.factory.create(directory, params, root_certificate)
        self._made.append((se, directory))
        return se

    def clone(self, se: SecureElement, directory: Path | None = None) -> SecureElement:
        """What an attacker who broke ``se`` open makes: another SE (in ``directory``, by
        default a fresh folder) holding its state: the same key, counter, balance and log."""
        directory = directory or self._fresh()
        self.factory.create(directory, se.params, se.trust.root_der)
        self.factory.write_state(directory, self.state_of(se))
        return self.reopen(directory)

    def directory_of(self, se: SecureElement) -> Path:
        """The folder of an SE made (or reopened) here."""
        return next(d for s, d in self._made if s is se)

    def reopen(self, directory: Path) -> SecureElement:
        """The SE in ``directory`` as after a restart (its state as last persisted)."""
        se = self.factory.reopen(directory)
        self._made.append((se, directory))
        return se

    def state_of(self, se: SecureElement) -> bytes:
        """What an attacker who broke ``se`` open reads: its ``SEState`` bytes."""
        return self.factory.read_state(self.directory_of(se))


@dataclass
class PilotNetwork:
    """A central bank, banks and helpers to make enrolled, funded secure elements."""

    params: NetworkParams
    central_bank: CentralBank
    banks: list[Bank]
    crls: dict[str, bytes] = field(default_factory=dict)
    #: where its SEs come from (None: in-memory software SEs)
    ses: SEs | None = None

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

    def with_ses(self, ses: SEs) -> PilotNetwork:
        """This network (same CAs, same CRLs), making its SEs with ``ses``."""
        return dataclasses.replace(self, ses=ses)

    def new_se(self, directory: Path | None = None) -> SecureElement:
        """A new, unenrolled SE (in ``directory``, if the network has ``ses``)."""
        root = self.central_bank.certificate_der
        if self.ses is not None:
            return self.ses.new(self.params, root, directory)
        return SoftwareSecureElement(SoftwareSecureElement.new_state(self.params, root))

    def wallet(
        self,
        balance: int = 0,
        bank: str = "Bank A",
        limits: Limits = DEFAULT_LIMITS,
        now: int = T0,
        se: SecureElement | None = None,
    ) -> SecureElement:
        """An enrolled SE, funded with ``balance`` by a voucher."""
        se = se or self.new_se()
        b = self.bank(bank)
        cert = b.certify_wallet(se.csr(), WalletId.random(), limits, 0, now)
        se.enroll(cert, self.bank_ders, list(self.crls.values()), now)
        if balance:
            se.load(b.voucher(se.status(now).wallet_id, balance, self.params.currency, now), now)  # type: ignore[arg-type]
        return se

    def sync(self, se: SecureElement, now: int, limits: Limits = DEFAULT_LIMITS) -> None:
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
