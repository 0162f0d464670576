"""The attacker's tools for the attack catalogue (docs/SECURITY.md).

Everything here goes through what an attacker really has: a secure element they broke open
(its state read out, copied, rolled back or edited as ``SEState`` bytes, through the SE kind's
``SEFactory.read_state`` / ``write_state``: tests/se_kinds.py runs every attack against each
kind), keys and certificates they can make themselves, and bytes they can alter. Nothing reaches
into a live object's private attributes.

- ``party`` / ``sealed_wallet``: an honest wallet, enrolled and funded through the real ledger,
  its SE in a folder of its own (``sealed_wallet``: a folder the test names, and limits);
- ``reopen`` / ``Party.clone``: the SE again after a restart, or a clone of its state in
  another SE;
- ``edit_state`` / ``Party.state`` / ``Party.restore``: read, change and write back the state
  (an SE broken open: minted value, a forgotten voucher or CRL, a rollback);
- ``RogueSE``: the key and state read out of a broken SE, driven by code that checks nothing
  (no limits, no balance, no voucher or replay memory) but keeps a well-formed log and signs
  sync reports like a real SE, so the ledger sees exactly what a broken SE would upload;
- forgers for wallet certificates; ``assert_books`` for conservation after each attack.
"""

from __future__ import annotations

import datetime as dt
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
from offcash.se.interface import SecureElement

from harness import T0, PilotNetwork, SEs

PIN = "246810"
DAY = 86400
#: What the ``world`` fixture issues (10,000,000 into each of two banks).
ISSUED = 20_000_000
#: What ``World.account`` puts in a new customer account.
ACCOUNT = 100_000

# Positions in the state (the CBOR array of ``SEState.encode``, what ``read_state`` gives): what
# an attacker who broke the SE reads out. Kept in one place so a format change fails here.
KEY, CRLS, CERTIFICATE, COUNTERS, LOG_BASE, ENTRIES, VOUCHERS = 1, 5, 6, 7, 8, 9, 11
BALANCE, COUNTER, SYNC_SEQ = 0, 1, 2


@dataclass
class Party:
    """A wallet in the world: its SE, wallet id, owner account, and where its SE lives."""

    se: SecureElement
    wid: WalletId
    account: str
    directory: Path
    ses: SEs

    def state(self) -> bytes:
        """The SE's state as an attacker who broke it reads it (``SEState`` bytes)."""
        return self.ses.factory.read_state(self.directory)

    def restore(self, state: bytes) -> None:
        """Write ``state`` back into the SE (an older copy: a rollback; an edited one)."""
        self.ses.factory.write_state(self.directory, state)

    def clone(self, directory: Path | None = None) -> SecureElement:
        """Another SE holding this one's state: the same key, counter, balance and log."""
        return self.ses.clone(self.se, directory)


def _ses(world: World) -> SEs:
    assert world.net.ses is not None, "the attack suite's networks make SEs of a kind"
    return world.net.ses


def party(world: World, balance: int = 0, bank: str = "Bank A", now: int = T0) -> Party:
    """An honest wallet, enrolled and funded through the ledger."""
    se, wid, account = world.wallet(balance, bank, now=now)
    ses = _ses(world)
    return Party(se, wid, account, ses.directory_of(se), ses)


def sealed_wallet(
    world: World,
    directory: Path,
    balance: int = 0,
    bank: str = "Bank A",
    now: int = T0,
    limits: Limits | None = None,
) -> Party:
    """An honest wallet whose SE lives in ``directory``, enrolled (with ``limits``) and funded."""
    account = world.account(bank)
    se = world.net.new_se(directory)
    e = world.ledger.enroll(se.csr(), account, now, limits)
    se.enroll(e.certificate, e.bank_certificates, e.crls, now)
    if balance:
        se.load(world.ledger.fund(e.wallet_id, balance, now), now)
    return Party(se, e.wallet_id, account, directory, _ses(world))


def reopen(p: Party) -> SecureElement:
    """The party's SE as the wallet app opens it at start: its state as last persisted. It
    becomes ``p.se``: a restart ends the old handle (a card's session does not survive it)."""
    p.se = p.ses.reopen(p.directory)
    return p.se


def edit_state(p: Party, change: Callable[[list[Any]], None]) -> None:
    """Read the state out of the party's SE, let ``change`` edit the decoded CBOR array, and
    write it back (``reopen`` then sees it)."""
    value: Any = cbor.decode(p.state(), path="state", max_bytes=64 * 1024 * 1024)
    change(value)
    p.restore(cbor.encode(value))


def forget_crls(p: Party) -> SecureElement:
    """A broken SE that drops every CRL it holds (after its report said it held them)."""
    edit_state(p, lambda s: s.__setitem__(CRLS, []))
    return reopen(p)


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
    def extract(cls, p: Party) -> RogueSE:
        """Read the key, certificate, counters and log out of a broken SE."""
        v: Any = cbor.decode(p.state(), path="state", max_bytes=64 * 1024 * 1024)
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
