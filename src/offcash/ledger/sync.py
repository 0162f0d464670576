"""A wallet's sync: verify its SE-signed log, settle it, reconcile it, renew the wallet.

Theory of operation: the report is the authentication (signed inside the secure element). The
upload must continue the last acknowledged sync: its ``sync_seq`` is the next one (or the same
again, when the SE never received our acknowledgement: then it is re-processed from the same
base, and settlement's uniqueness rules make that harmless), and its entries chain from the
acknowledged head to the signed ``log_digest`` (else ``IncompleteLog``, nothing is written).
Every entry is verified with the core's pure verifiers: a sent payment at its own time, a
received one at the time the payee's SE accepted it. A received payment is refused (charged
back from the payee owner's account, since the SE already credited it) if it does not verify
or if the payee already held a CRL revoking the payer when it accepted it. The wallet must
reconcile (base balance + loaded + received - sent - unloaded = reported balance; debit
counters exactly base+1..reported) or it is reported and revoked. Then, unless the wallet was
revoked, the bank renews its certificate (counter base = reported counter) and acknowledges.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from offcash.crypto.algorithms import spki
from offcash.crypto.pki import DEFAULT_WALLET_VALIDITY, csr_public_key
from offcash.crypto.trust import TrustStore, WalletCertificate
from offcash.domain.ids import WalletId
from offcash.domain.network import NetworkParams
from offcash.errors import DecodeError, Rejection, VerificationError
from offcash.issuance import VOUCHER_VALIDITY
from offcash.ledger import authority, books, checks, registry, settle
from offcash.ledger import schema as s
from offcash.ledger.errors import IncompleteLog, WalletRevoked
from offcash.protocol import messages as m
from offcash.se import log
from offcash.verification import verify_report, verify_voucher


@dataclass(frozen=True)
class Refusal:
    """A message settlement refused, and why (a ``Rejection`` name or a ledger rule)."""

    digest: bytes
    reason: str


@dataclass(frozen=True)
class SyncResult:
    """What the wallet applies to its SE; ``ack`` and ``certificate`` are None if revoked."""

    ack: bytes | None
    certificate: bytes | None
    bank_certificates: list[bytes]
    crls: list[bytes]
    settled: int
    refused: list[Refusal] = field(default_factory=list)
    anomalies: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Upload:
    """A sync upload checked without the database: its verified report and signer, its entries
    decoded, and what checking each entry's message gave, by index: its spend, or the error it
    failed with (``verify``)."""

    report: m.SyncReport
    signer: WalletCertificate
    entries: list[log.Entry]
    checked: dict[int, settle.Spend | VerificationError | DecodeError]

    @property
    def spends(self) -> dict[int, settle.Spend]:
        """The spends of the entries whose message verified, by index."""
        return {i: c for i, c in self.checked.items() if isinstance(c, settle.Spend)}

    def spend(self, i: int) -> settle.Spend:
        """Entry ``i``'s spend; raises the error its message failed with."""
        c = self.checked[i]
        if isinstance(c, settle.Spend):
            return c
        raise c


def verify(
    trust: TrustStore,
    params: NetworkParams,
    report_data: bytes,
    entry_data: Sequence[bytes],
    csr: bytes,
    now: int,
) -> Upload:
    """Verify what needs no database, before the transaction (so that concurrent syncs verify in
    parallel even where the database serialises writers): the report's signature, time and
    currency, that the CSR (for the renewed certificate) is the reporting key's, the entries'
    encoding and count, and every payment and unload request in them (an entry that fails keeps
    its error, which ``run`` records)."""
    report, signer = verify_report(report_data, trust=trust, params=params)
    if spki(csr_public_key(csr)) != spki(signer.public_key):
        raise VerificationError(Rejection.BAD_CERTIFICATE, "CSR is not for the reporting key")
    if report.time > now + params.clock_skew:
        raise VerificationError(Rejection.FROM_THE_FUTURE, "report time")
    if report.currency != params.currency:
        raise VerificationError(Rejection.CURRENCY_MISMATCH, report.currency)
    if len(entry_data) != report.entries:
        raise IncompleteLog(f"{len(entry_data)} entries uploaded, {report.entries} reported")
    entries = [log.Entry.decode(e, f"entries[{i}]") for i, e in enumerate(entry_data)]
    checked: dict[int, settle.Spend | VerificationError | DecodeError] = {}
    for i, e in enumerate(entries):
        if e.type is not log.EntryType.LOADED:
            try:
                checked[i] = _spend(e, trust, params, signer.wallet_id)
            except (VerificationError, DecodeError) as exc:
                checked[i] = exc
    return Upload(report, signer, entries, checked)


def _spend(e: log.Entry, trust: TrustStore, params: NetworkParams, wid: WalletId) -> settle.Spend:
    """Verify a RECEIVED, SENT or UNLOADED entry's message (at the time the SE accepted it, at
    its own time, as an unload)."""
    if e.type is log.EntryType.RECEIVED:
        return checks.payment(e.message, trust, params, e.time, payee=wid)
    if e.type is log.EntryType.SENT:
        return checks.payment(e.message, trust, params, None)
    return checks.unload(e.message, trust, params)


def run(
    conn: Connection,
    auth: authority.Authorities,
    trust: TrustStore,
    params: NetworkParams,
    upload: Upload,
    now: int,
    validity: dt.timedelta = DEFAULT_WALLET_VALIDITY,
) -> SyncResult:
    """Process one verified sync upload in the caller's transaction; the renewed certificate
    is for the reporting key (``verify`` checked that the CSR is for it), valid for
    ``validity``."""
    report, signer, entries = upload.report, upload.signer, upload.entries
    wid = signer.wallet_id
    wallet = registry.get(conn, wid)
    if wallet.status != "active":
        raise WalletRevoked(f"wallet {wid} is {wallet.status}")
    if report.sync_seq not in (wallet.next_seq, wallet.next_seq - 1):
        raise IncompleteLog(f"sync {report.sync_seq}, expected {wallet.next_seq}")
    base = conn.execute(
        sa.select(s.syncs).where(s.syncs.c.wallet == wid.raw, s.syncs.c.seq == report.sync_seq - 1)
    ).first()
    head, balance, counter = (
        (bytes(base.head), int(base.balance), int(base.counter)) if base else (log.GENESIS, 0, 0)
    )
    if log.chain_all(head, entries) != report.log_digest:
        raise IncompleteLog("entries do not chain to the signed log digest")
    # this report continues sync_seq - 1: the SE applied the answers of every earlier sync
    authority.confirm_deliveries(conn, wid, report.sync_seq)
    limits = registry.decode_limits(wallet.limits)

    spends: list[tuple[settle.Spend, settle.Source]] = []
    refused: list[Refusal] = []
    problems: list[str] = []
    chargeback = books.Legs()
    debits: list[int] = []
    uncounted = 0  # float moved by this log that ``balance`` does not show
    sent_value = 0
    peak = balance
    seen_vouchers: set[bytes] = set()
    received = [sp for i, sp in upload.spends.items() if entries[i].type is log.EntryType.RECEIVED]
    receipts = _Receipts.load(conn, wid, report.sync_seq, received)
    known = authority.revocations_known_to(conn, (sp.payer for sp in received), wid)
    for i, e in enumerate(entries):
        counted = False
        try:
            if e.type is log.EntryType.RECEIVED:
                sp = upload.spend(i)
                if not receipts.first(sp):
                    problems.append(
                        f"entry {i}: payment ({sp.payer.hex()}, {sp.counter}) received again"
                    )
                    continue
                balance += e.amount
                counted = True
                since = known.get(sp.payer)
                if since is not None and since <= e.time:
                    raise VerificationError(
                        Rejection.REVOKED, f"payee held a CRL revoking the payer since {since}"
                    )
                spends.append((sp, settle.Source.RECEIVED))
            elif e.type is log.EntryType.LOADED:
                if _apply_voucher(
                    conn, trust, params, e, wallet, now, report.sync_seq, problems, seen_vouchers
                ):
                    balance += e.amount
            else:
                balance -= e.amount
                sp = upload.spend(i)
                if e.type is log.EntryType.SENT:
                    sent_value += e.amount
                    spends.append((sp, settle.Source.SENT))
                else:
                    spends.append((sp, settle.Source.UNLOAD))
                debits.append(sp.counter)
                if sp.payer != wid.raw:
                    problems.append(f"entry {i}: debit signed by another wallet")
            if e.type is not log.EntryType.LOADED and sp.amount != e.amount:
                problems.append(f"entry {i}: amount differs from the signed message")
        except (VerificationError, DecodeError) as exc:
            reason = exc.rejection.name if isinstance(exc, VerificationError) else "DECODE"
            refused.append(Refusal(m.digest(e.message), reason))
            if e.type is log.EntryType.RECEIVED:
                counterfeit = (
                    isinstance(exc, VerificationError) and exc.rejection in checks.COUNTERFEIT
                )
                kind = "counterfeit" if counterfeit else "refused-payment"
                registry.anomaly(
                    conn, kind, f"{reason}: {exc}", now, wid.raw, wallet.bank, e.amount, e.message
                )
                chargeback.move(str(wallet.account), books.float_of(wallet.bank), e.amount)
                if not counted:
                    uncounted += e.amount
            else:
                problems.append(f"entry {i}: own {e.type.name} message invalid: {exc}")
                if e.type is not log.EntryType.LOADED:
                    uncounted += e.amount  # in ``balance``, but settles no float
        peak = max(peak, balance)
    if peak > limits.max_balance:
        problems.append(f"balance reached {peak}, over max_balance {limits.max_balance}")
    if sent_value > limits.max_offline_value:
        problems.append(
            f"sent {sent_value} since the last sync, over max_offline_value "
            f"{limits.max_offline_value}"
        )
    # value spent beyond what the ledger knows the SE held was paid out of the float: the
    # bank's loss, booked from its reserve (with the amount on the anomaly)
    loss = max(0, -(balance + uncounted))
    amounts: dict[int, int] = {}
    if balance != report.balance:
        problems.append(f"balance {report.balance} reported, {balance} expected")
    if loss:
        if balance == report.balance:
            problems.append(f"spent {loss} more than it held")
        amounts[len(problems) - 1] = loss
        overspend = books.Legs()
        overspend.move(books.reserve(wallet.bank), books.float_of(wallet.bank), loss)
        books.post(conn, now, "overspend-loss", overspend, memo=str(wid))
    if sorted(debits) != list(range(counter + 1, report.counter + 1)):
        problems.append(
            f"debit counters {sorted(debits)} do not run {counter + 1}..{report.counter}"
        )
    receipts.save(conn)
    books.post(conn, now, "chargeback", chargeback, memo=str(wid))
    out = settle.settle(conn, auth, spends, now, reporting=wid.raw)
    age = params.max_payment_age + params.clock_skew
    unpresumed = books.Legs()
    settle.unpresume(conn, wallet, report.time, age, unpresumed, now)
    books.post(conn, now, "release-torn", unpresumed, memo=str(wid))
    for n, p in enumerate(problems):
        registry.anomaly(conn, "reconcile", p, now, wid.raw, wallet.bank, amounts.get(n, 0))
    if problems:
        registry.revoke(conn, auth, wid, "reconcile", now)
    crls = authority.current_crls(conn)
    if registry.get(conn, wid).status != "active":
        return SyncResult(None, None, auth.bank_ders, crls, out.new + out.moved, refused, problems)
    bank = auth.bank(wallet.bank)
    _return_expired_vouchers(conn, params, wallet, report.time, now)
    cert = bank.certify_key(signer.public_key, wid, limits, report.counter, now, validity)
    authority.record_certificate(conn, wid, cert, wallet.bank)
    ack = bank.acknowledge(report, wid, now)
    conn.execute(
        sa.delete(s.syncs).where(s.syncs.c.wallet == wid.raw, s.syncs.c.seq == report.sync_seq)
    )
    conn.execute(
        sa.insert(s.syncs).values(
            wallet=wid.raw,
            seq=report.sync_seq,
            head=report.log_digest,
            balance=report.balance,
            counter=report.counter,
            time=now,
        )
    )
    conn.execute(
        sa.update(s.wallets).where(s.wallets.c.id == wid.raw).values(next_seq=report.sync_seq + 1)
    )
    authority.record_delivery(conn, wid, now, pending_seq=report.sync_seq)
    return SyncResult(ack, cert, auth.bank_ders, crls, out.new + out.moved, refused, problems)


@dataclass
class _Receipts:
    """Which payments ``wallet``'s logs listed as received, and in which sync: an SE credits a
    payment once, ever, so a second listing (earlier in this upload, or in an earlier sync) is
    a broken SE's replay; the same sync again (its answer was lost) is not."""

    wallet: bytes
    seq: int
    listed: dict[tuple[bytes, int], int]
    seen: set[tuple[bytes, int]] = field(default_factory=set)
    new: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(
        cls, conn: Connection, wallet: WalletId, seq: int, spends: Iterable[settle.Spend]
    ) -> _Receipts:
        """The listings among ``spends`` recorded before (one query per 500)."""
        r = s.receipts
        keys = sorted({(sp.payer, sp.counter) for sp in spends})
        listed: dict[tuple[bytes, int], int] = {}
        for i in range(0, len(keys), 500):
            rows = conn.execute(
                sa.select(r.c.payer, r.c.counter, r.c.seq).where(
                    r.c.wallet == wallet.raw,
                    sa.tuple_(r.c.payer, r.c.counter).in_(keys[i : i + 500]),
                )
            )
            listed.update(((bytes(p), int(c)), int(q)) for p, c, q in rows)
        return cls(wallet.raw, seq, listed)

    def first(self, sp: settle.Spend) -> bool:
        """Record this sync's listing of ``sp``; False if it is a second listing."""
        key = (sp.payer, sp.counter)
        if key in self.seen:
            return False
        self.seen.add(key)
        if key in self.listed:
            return self.listed[key] == self.seq
        self.new.append(
            {"wallet": self.wallet, "payer": sp.payer, "counter": sp.counter, "seq": self.seq}
        )
        return True

    def save(self, conn: Connection) -> None:
        """Insert the new listings (one statement)."""
        if self.new:
            conn.execute(sa.insert(s.receipts), self.new)


def _return_expired_vouchers(
    conn: Connection, params: NetworkParams, wallet: Any, report_time: int, now: int
) -> None:
    """Credit back to the owner's account every voucher of ``wallet`` that expired unloaded:
    the log is complete up to ``report_time``, at which the SE would refuse it."""
    t = s.vouchers
    expires = sa.func.coalesce(t.c.expires, t.c.issued_at + VOUCHER_VALIDITY)
    rows = conn.execute(
        sa.select(t.c.id, t.c.amount).where(
            t.c.wallet == wallet.id,
            t.c.applied_at.is_(None),
            t.c.returned_at.is_(None),
            expires + params.clock_skew < report_time,
        )
    ).all()
    legs = books.Legs()
    for r in rows:
        done = conn.execute(
            sa.update(t)
            .where(t.c.wallet == wallet.id, t.c.id == r.id, t.c.returned_at.is_(None))
            .values(returned_at=now)
            .returning(t.c.id)
        ).first()
        if done is not None:
            legs.move(books.float_of(wallet.bank), str(wallet.account), int(r.amount))
    books.post(conn, now, "voucher-expired", legs, str(WalletId(bytes(wallet.id))))


def _apply_voucher(
    conn: Connection,
    trust: TrustStore,
    params: NetworkParams,
    e: log.Entry,
    wallet: Any,
    now: int,
    seq: int,
    problems: list[str],
    seen: set[bytes],
) -> bool:
    """Mark the voucher a LOADED entry applied; False (and a problem) if the ledger did not
    issue it, or it was already applied (in this upload or an earlier sync) or returned."""
    wid = WalletId(bytes(wallet.id))
    v = verify_voucher(
        e.message, trust=trust, params=params, wallet=wid, bank=wallet.bank, now=e.time
    )
    t = s.vouchers
    row = conn.execute(sa.select(t).where(t.c.wallet == wid.raw, t.c.id == v.voucher_id)).first()
    if row is None or int(row.amount) != v.amount or v.amount != e.amount:
        registry.anomaly(
            conn,
            "unknown-voucher",
            "voucher this ledger did not issue",
            now,
            wid.raw,
            wallet.bank,
            v.amount,
            e.message,
        )
        problems.append("loaded a voucher the ledger did not issue")
        return True
    earlier = row.applied_at is not None and (row.applied_seq is None or row.applied_seq != seq)
    if v.voucher_id in seen or earlier or row.returned_at is not None:
        problems.append(f"voucher {v.voucher_id.hex()} applied again")
        return False
    seen.add(v.voucher_id)
    conn.execute(
        sa.update(t)
        .where(t.c.wallet == wid.raw, t.c.id == v.voucher_id, t.c.applied_at.is_(None))
        .values(applied_at=e.time, applied_seq=seq)
    )
    return True
