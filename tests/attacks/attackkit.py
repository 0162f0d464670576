"""The attacker's tools for the attack catalogue (docs/SECURITY.md).

Everything here goes through what an attacker really has: a sealed secure-element file and its
PIN (copied, rolled back or read out with ``SealedFile``), keys and certificates they can make
themselves, and bytes they can alter. Nothing reaches into a live object's private attributes.

- ``sealed_wallet``: an honest wallet whose SE persists to a PIN-sealed file, enrolled and funded
  through the real ledger;
- ``open_sealed`` / ``copy_file``: a clone or an older copy of that file, opened as an SE;
- ``edit_state``: read, change and re-seal the state bytes (an SE broken open with the PIN);
- ``RogueSE``: the key and state read out of the file, driven by code that checks nothing
  (no limits, no balance, no voucher or replay memory) but keeps a well-formed log and signs
  sync reports like a real SE, so the ledger sees exactly what a broken SE would upload;
- forgers for wallet certificates; ``assert_books`` for conservation after each attack.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from ledgerkit import World

from offcash.crypto import pki
from offcash.crypto.algorithms import PrivateKey, algorithm_of
from offcash.domain.ids import WalletId
from offcash.domain.limits import DEFAULT_LIMITS, Limits
from offcash.encoding import cbor
from offcash.ledger.books import Audit
from offcash.ledger.sync import SyncResult
from offcash.protocol import messages as m
from offcash.se import log
from offcash.se.software import SoftwareSecureElement
from offcash.se.storage import SealedFile

from harness import T0, PilotNetwork

PIN = "246810"
#: scrypt cost for the sealed files of these tests; tests/attacks/test_credentials.py measures
#: the production cost (``offcash.se.storage.SCRYPT_N``).
FAST_N = 2**10
DAY = 86400
#: What the ``world`` fixture issues (10,000,000 into each of two banks).
ISSUED = 20_000_000
#: What ``World.account`` puts in a new customer account.
ACCOUNT = 100_000

# Positions in the sealed state (the CBOR array ``SoftwareSecureElement`` persists): what an
# attacker with the file and the PIN reads out. Kept in one place so a format change fails here.
KEY, CERTIFICATE, COUNTERS, LOG_BASE, ENTRIES, VOUCHERS = 1, 6, 7, 8, 9, 11
BALANCE, COUNTER, SYNC_SEQ = 0, 1, 2


@dataclass
class Party:
    """A wallet in the world: its SE, wallet id, owner account and (if sealed) its file."""

    se: SoftwareSecureElement
    wid: WalletId
    account: str
    path: Path | None = None


def party(world: World, balance: int = 0, bank: str = "Bank A", now: int = T0) -> Party:
    """An honest wallet with an in-memory SE, enrolled and funded through the ledger."""
    se, wid, account = world.wallet(balance, bank, now=now)
    return Party(se, wid, account)


def sealed_wallet(
    world: World,
    path: Path,
    balance: int = 0,
    bank: str = "Bank A",
    now: int = T0,
    limits: Limits | None = None,
) -> Party:
    """An honest wallet whose SE persists to a PIN-sealed file, enrolled and funded."""
    account = world.account(bank)
    state = SoftwareSecureElement.new_state(
        world.net.params, world.net.central_bank.certificate_der
    )
    se = SoftwareSecureElement(state, SealedFile.create(path, PIN, state, scrypt_n=FAST_N))
    e = world.ledger.enroll(se.csr(), account, now, limits)
    se.enroll(e.certificate, e.bank_certificates, e.crls, now)
    if balance:
        se.load(world.ledger.fund(e.wallet_id, balance, now), now)
    return Party(se, e.wallet_id, account, path)


def open_sealed(path: Path, pin: str = PIN) -> SoftwareSecureElement:
    """The SE in a sealed file, persisting back to it (what the wallet app does at start)."""
    store, state = SealedFile.open(path, pin)
    return SoftwareSecureElement(state, store)


def copy_file(source: Path, target: Path) -> Path:
    """A byte-for-byte copy of a sealed SE file (a clone, or a backup to roll back to)."""
    shutil.copyfile(source, target)
    return target


def edit_state(path: Path, change: Callable[[list[Any]], None], pin: str = PIN) -> None:
    """Unseal the state, let ``change`` edit the decoded CBOR array, and seal it back."""
    store, state = SealedFile.open(path, pin)
    value: Any = cbor.decode(state, path="state", max_bytes=64 * 1024 * 1024)
    change(value)
    store.save(cbor.encode(value))


def se_balance(p: Party) -> int:
    """What a party's SE holds."""
    return p.se.status(T0).balance


@dataclass
class RogueSE:
    """A secure element whose key and state were read out of its sealed file, now driven by code
    that enforces nothing. It signs what it is told to and keeps a log chained and reported
    exactly as a real SE does."""

    key: PrivateKey
    cert: bytes
    wallet_id: WalletId
    currency: str
    balance: int
    counter: int
    sync_seq: int
    log_base: bytes
    entries: list[log.Entry] = field(default_factory=list)

    @classmethod
    def extract(cls, path: Path, pin: str = PIN) -> RogueSE:
        """Read the key, certificate, counters and log out of a sealed SE file."""
        _, state = SealedFile.open(path, pin)
        v: Any = cbor.decode(state, path="state", max_bytes=64 * 1024 * 1024)
        key = serialization.load_der_private_key(v[KEY], None)
        cert = x509.load_der_x509_certificate(v[CERTIFICATE])
        return cls(
            key=key,  # type: ignore[arg-type]
            cert=v[CERTIFICATE],
            wallet_id=WalletId.parse(pki.common_name(cert.subject)),
            currency=v[2][0],
            balance=v[COUNTERS][BALANCE],
            counter=v[COUNTERS][COUNTER],
            sync_seq=v[COUNTERS][SYNC_SEQ],
            log_base=v[LOG_BASE],
            entries=[log.Entry.decode(e) for e in v[ENTRIES]],
        )

    def pay(
        self,
        payee: WalletId,
        amount: int,
        now: int,
        *,
        counter: int | None = None,
        time: int | None = None,
        nonce: bytes | None = None,
    ) -> bytes:
        """Sign and log a payment: no limit, balance or counter check."""
        counter = self.counter + 1 if counter is None else counter
        payment = m.sign_payment(
            self.key,
            self.cert,
            payee=payee,
            amount=amount,
            currency=self.currency,
            counter=counter,
            time=now if time is None else time,
            nonce=nonce,
            reference=None,
        )
        self.counter = max(self.counter, counter)
        self.balance -= amount
        self.entries.append(log.Entry(log.EntryType.SENT, now, amount, payment))
        return payment

    def accept(self, payment: bytes, now: int, amount: int | None = None) -> None:
        """Credit and log a received payment without verifying anything (``amount``: what the
        log entry claims, by default the payment's amount)."""
        amount = m.parse_payment(payment).amount if amount is None else amount
        self.balance += amount
        self.entries.append(log.Entry(log.EntryType.RECEIVED, now, amount, payment))

    def upload(self, now: int, balance: int | None = None) -> tuple[bytes, list[bytes]]:
        """A sync report over the whole log, signed with the extracted key (``balance``: what
        the report claims, by default the rogue's own count)."""
        report = m.sign_report(
            self.key,
            self.cert,
            sync_seq=self.sync_seq,
            counter=self.counter,
            balance=self.balance if balance is None else balance,
            currency=self.currency,
            entries=len(self.entries),
            log_digest=log.chain_all(self.log_base, self.entries),
            time=now,
        )
        return report, [e.encode() for e in self.entries]

    def sync(self, world: World, now: int, balance: int | None = None) -> SyncResult:
        """Upload the log to the ledger and, if acknowledged, start a new offline period."""
        report, entries = self.upload(now, balance)
        res = world.ledger.sync(report, entries, pki.make_csr(self.key), now)
        if res.ack is not None and res.certificate is not None:
            ack = m.parse_ack(res.ack)
            self.log_base = ack.log_digest
            self.entries = self.entries[ack.entries :]
            self.sync_seq += 1
            self.cert = res.certificate
        return res


# --- forged wallet certificates -------------------------------------------------------------


def _utc(t: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, dt.UTC)


def self_signed_certificate(
    key: PrivateKey, wid: WalletId, limits: Limits = DEFAULT_LIMITS
) -> bytes:
    """A wallet certificate its own key signed (issuer = subject), with a generous policy."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, str(wid))])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_utc(T0 - DAY))
        .not_valid_after(_utc(T0 + 6 * DAY))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(
            x509.UnrecognizedExtension(pki.WALLET_POLICY_OID, pki.encode_policy(limits, 0)),
            critical=False,
        )
        .sign(key, algorithm_of(key).x509_hash())
    )
    return pki.der(cert)


def forged_payment(
    key: PrivateKey, cert: bytes, payee: WalletId, amount: int, time: int, counter: int = 1
) -> bytes:
    """A payment signed by ``key`` under ``cert`` (whatever issued it)."""
    return m.sign_payment(
        key,
        cert,
        payee=payee,
        amount=amount,
        currency="EUR",
        counter=counter,
        time=time,
        nonce=None,
        reference=None,
    )


def network_key(net: PilotNetwork) -> PrivateKey:
    """A fresh wallet key for the network's algorithm."""
    return net.params.algorithm.generate()


# --- conservation ---------------------------------------------------------------------------


def assert_books(world: World, accounts: dict[str, int] | None = None) -> Audit:
    """The books balance, nothing was issued beyond what the central bank issued, and each
    account in ``accounts`` holds exactly the amount given."""
    audit = world.ledger.audit()
    assert audit.balanced, audit
    assert audit.issued == ISSUED
    assert audit.unbalanced_entries == 0
    for account, amount in (accounts or {}).items():
        assert world.ledger.balance(account) == amount, account
    return audit
