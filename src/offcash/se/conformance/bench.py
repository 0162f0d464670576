"""The small network the conformance checks run on: real CAs, a real ledger, SEs of one kind.

Theory of operation: ``Bench.open`` makes a central bank and two banks (``offcash.issuance``),
installs them in an in-process ``LedgerService`` on a SQLite file under the bench's folder and
issues reserves, so an SE under test is enrolled, funded, synced and unloaded by the real
settlement code, exactly as in a pilot. Each SE lives in a folder of its own, made by the
kind's ``SEFactory``. Time is the bench's own fixed ``T0`` onwards: no check reads the clock.
The bench's issuance objects hold the same keys as the ledger, so a check can also sign what
the ledger would refuse to (an over-limit voucher, a short-lived certificate).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from offcash.crypto.algorithms import SignatureAlgorithm
from offcash.domain.ids import WalletId
from offcash.domain.limits import DEFAULT_LIMITS, Limits
from offcash.domain.network import NetworkParams
from offcash.issuance import Bank, CentralBank
from offcash.ledger import LedgerService
from offcash.ledger.sync import SyncResult
from offcash.se.conformance.factory import SEFactory
from offcash.se.interface import SecureElement

#: The bench's "now" (2026-09-21): every check's time is T0 plus a few seconds.
T0 = 1_790_000_000
#: Reserves issued to each bank.
RESERVES = 10_000_000
#: What each new owner account is given.
ACCOUNT = 100_000
BANKS = ("Bank A", "Bank B")


@dataclass
class Held:
    """An SE under test, where it lives, and (once enrolled) its wallet id and owner account."""

    se: SecureElement
    directory: Path
    wallet_id: WalletId | None = None
    account: str | None = None

    @property
    def wid(self) -> WalletId:
        """The wallet id (the SE must be enrolled)."""
        assert self.wallet_id is not None, "not enrolled"
        return self.wallet_id


@dataclass
class Bench:
    """A central bank, two banks, a ledger on SQLite, and SEs of one kind in folders."""

    factory: SEFactory
    root: Path
    params: NetworkParams
    central_bank: CentralBank
    banks: dict[str, Bank]
    ledger: LedgerService
    _made: int = field(default=0)

    @classmethod
    def open(
        cls, factory: SEFactory, root: Path, algorithm: SignatureAlgorithm = SignatureAlgorithm.P256
    ) -> Bench:
        """A fresh network under ``root`` (created; it must not hold a ledger already)."""
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        cb = CentralBank.create("Conformance Central Bank", algorithm, T0 - 86400)
        banks = {name: cb.certify_bank(name, T0 - 86400) for name in BANKS}
        params = NetworkParams("EUR", algorithm)
        ledger = LedgerService.open(f"sqlite:///{root / 'ledger.db'}", workers=0)
        ledger.install(params, cb, list(banks.values()))
        for name in BANKS:
            ledger.issue(name, RESERVES, T0 - 3600)
        return cls(factory, root, params, cb, banks, ledger)

    def close(self) -> None:
        """Close the ledger (the factory is the caller's)."""
        self.ledger.close()

    @property
    def root_certificate(self) -> bytes:
        """The central bank's certificate: the root every SE is made with."""
        return self.central_bank.certificate_der

    @property
    def bank_certificates(self) -> list[bytes]:
        """The banks' CA certificates."""
        return [b.certificate_der for b in self.banks.values()]

    # --- making and breaking SEs -------------------------------------------------------------

    def new(self, params: NetworkParams | None = None) -> Held:
        """A new, unenrolled SE in a fresh folder."""
        self._made += 1
        directory = self.root / f"se{self._made}"
        se = self.factory.create(directory, params or self.params, self.root_certificate)
        return Held(se, directory)

    def reopen(self, h: Held) -> SecureElement:
        """``h``'s SE as after a restart; ``h`` holds the new handle from now on."""
        h.se = self.factory.reopen(h.directory)
        return h.se

    def state(self, h: Held) -> bytes:
        """``h``'s state as a physical attacker reads it."""
        return self.factory.read_state(h.directory)

    # --- the bank's side, through the real ledger --------------------------------------------

    def account(self, bank: str = "Bank A") -> str:
        """A new owner account holding ``ACCOUNT``."""
        account = self.ledger.open_account(bank, "conformance")
        self.ledger.distribute(account, ACCOUNT, T0 - 60)
        return account

    def enrolled(
        self,
        balance: int = 0,
        bank: str = "Bank A",
        limits: Limits | None = None,
        now: int = T0,
    ) -> Held:
        """A new SE, enrolled with the ledger (``limits``: the bank's default) and funded with
        ``balance`` by a ledger voucher."""
        h = self.new()
        h.account = self.account(bank)
        e = self.ledger.enroll(h.se.csr(), h.account, now, limits)
        h.se.enroll(e.certificate, e.bank_certificates, e.crls, now)
        h.wallet_id = e.wallet_id
        if balance:
            h.se.load(self.ledger.fund(e.wallet_id, balance, now), now)
        return h

    def certified(
        self, validity: dt.timedelta, limits: Limits = DEFAULT_LIMITS, now: int = T0
    ) -> Held:
        """A new SE enrolled with a certificate Bank A signs directly (not through the ledger),
        valid for ``validity``."""
        h = self.new()
        h.wallet_id = WalletId.random()
        cert = self.banks["Bank A"].certify_wallet(
            h.se.csr(), h.wallet_id, limits, 0, now, validity
        )
        h.se.enroll(cert, self.bank_certificates, [], now)
        return h

    def sync(self, h: Held, now: int) -> SyncResult:
        """Upload ``h``'s log to the ledger and apply its answer (if it acknowledged)."""
        up = h.se.sync_upload(now)
        res = self.ledger.sync(up.report, up.entries, h.se.csr(), now)
        if res.ack is not None and res.certificate is not None:
            h.se.apply_sync(res.ack, res.certificate, res.bank_certificates, res.crls, now)
        return res
