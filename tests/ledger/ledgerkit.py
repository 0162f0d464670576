"""Test helpers for the ledger: a pilot network installed in a ledger, with funded wallets."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from offcash.domain.ids import WalletId
from offcash.encoding import cbor
from offcash.ledger import LedgerService, db
from offcash.ledger.sync import SyncResult
from offcash.se.interface import SecureElement
from offcash.se.software import SoftwareSecureElement
from offcash.se.storage import SealedFile

from harness import T0, PilotNetwork

PIN = "2468"
FAST_N = 2**10  # scrypt cost for tests


def sealed_se(net: PilotNetwork, path: Path) -> SoftwareSecureElement:
    """A new SE persisting its state in a PIN-sealed file at ``path`` (as a phone would)."""
    state = SoftwareSecureElement.new_state(net.params, net.central_bank.certificate_der)
    return SoftwareSecureElement(state, SealedFile.create(path, PIN, state, scrypt_n=FAST_N))


def clone(path: Path, to: Path) -> SoftwareSecureElement:
    """What an attacker who broke the SE (holds its file and PIN) makes: a copy of the sealed
    state file, opened as a second SE with the same key, counter and balance."""
    shutil.copyfile(path, to)
    store, state = SealedFile.open(to, PIN)
    return SoftwareSecureElement(state, store)


def minted(path: Path, extra: int, pin: str = PIN) -> SoftwareSecureElement:
    """A broken SE that adds ``extra`` to its balance: the attacker opens the sealed state,
    edits the balance in its CBOR and seals it again (no log entry explains the value)."""
    store, state = SealedFile.open(path, pin)
    fields = cbor.decode(state, max_bytes=len(state))
    fields[7][0] += extra  # [balance, counter, sync_seq, last_sync]
    forged = cbor.encode(fields)
    store.save(forged)
    return SoftwareSecureElement(forged, store)


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

    def wallet(
        self,
        balance: int = 0,
        bank: str = "Bank A",
        account: str | None = None,
        now: int = T0,
        sealed: Path | None = None,
    ) -> tuple[SecureElement, WalletId, str]:
        """An enrolled, funded SE (its state sealed in the file ``sealed`` if given, a software
        SE; otherwise what the network makes: of the test's SE kind if it has ``ses``)."""
        acct = account or self.account(bank)
        se = sealed_se(self.net, sealed) if sealed else self.net.new_se()
        e = self.ledger.enroll(se.csr(), acct, now)
        se.enroll(e.certificate, e.bank_certificates, e.crls, now)
        if balance:
            se.load(self.ledger.fund(e.wallet_id, balance, now), now)
        return se, e.wallet_id, acct

    def sync(self, se: SecureElement, now: int, apply: bool = True) -> SyncResult:
        up = se.sync_upload(now)
        res = self.ledger.sync(up.report, [x.encode() for x in up.entries], se.csr(), now)
        if apply and res.ack is not None and res.certificate is not None:
            se.apply_sync(res.ack, res.certificate, res.bank_certificates, res.crls, now)
        return res


def migrate(engine: sa.Engine, revision: str, down: bool = False) -> None:
    """Upgrade (or with ``down``, downgrade) ``engine``'s database to Alembic ``revision``."""
    cfg = Config(str(db.MIGRATIONS / "alembic.ini"))
    cfg.set_main_option("script_location", str(db.MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)
