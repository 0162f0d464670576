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

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy.engine import Connection

from offcash.crypto.pki import TrustStore
from offcash.domain.ids import WalletId
from offcash.domain.network import NetworkParams
from offcash.errors import DecodeError, Rejection, VerificationError
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


def _same_key(csr: bytes, public_key: Any) -> bool:
    try:
        theirs = x509.load_der_x509_csr(csr).public_key()
    except ValueError as exc:
        raise DecodeError("csr", str(exc)) from None
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return bool(theirs.public_bytes(*fmt) == public_key.public_bytes(*fmt))


def run(
    conn: Connection,
    auth: authority.Authorities,
    trust: TrustStore,
    params: NetworkParams,
    report_data: bytes,
    entry_data: Sequence[bytes],
    csr: bytes,
    now: int,
) -> SyncResult:
    """Process one sync in the caller's transaction."""
    report, signer = verify_report(report_data, trust=trust, params=params)
    wid = signer.wallet_id
    if report.time > now + params.clock_skew:
        raise VerificationError(Rejection.FROM_THE_FUTURE, "report time")
    if report.currency != params.currency:
        raise VerificationError(Rejection.CURRENCY_MISMATCH, report.currency)
    wallet = registry.get(conn, wid)
    if wallet.status != "active":
        raise WalletRevoked(f"wallet {wid} is {wallet.status}")
    if not _same_key(csr, signer.public_key):
        raise VerificationError(Rejection.BAD_CERTIFICATE, "CSR is not for the reporting key")
    if report.sync_seq not in (wallet.next_seq, wallet.next_seq - 1):
        raise IncompleteLog(f"sync {report.sync_seq}, expected {wallet.next_seq}")
    base = conn.execute(
        sa.select(s.syncs).where(s.syncs.c.wallet == wid.raw, s.syncs.c.seq == report.sync_seq - 1)
    ).first()
    head, balance, counter = (
        (bytes(base.head), int(base.balance), int(base.counter)) if base else (log.GENESIS, 0, 0)
    )
    if len(entry_data) != report.entries:
        raise IncompleteLog(f"{len(entry_data)} entries uploaded, {report.entries} reported")
    entries = [log.Entry.decode(e, f"entries[{i}]") for i, e in enumerate(entry_data)]
    if log.chain_all(head, entries) != report.log_digest:
        raise IncompleteLog("entries do not chain to the signed log digest")

    spends: list[tuple[settle.Spend, settle.Source]] = []
    refused: list[Refusal] = []
    problems: list[str] = []
    chargeback = books.Legs()
    debits: list[int] = []
    for i, e in enumerate(entries):
        try:
            if e.type is log.EntryType.RECEIVED:
                sp = checks.payment(e.message, trust, params, e.time, payee=wid)
                balance += e.amount
                held = authority.revocation_known_to(conn, WalletId(sp.payer), wid, e.time)
                if held is not None:
                    raise VerificationError(Rejection.REVOKED, f"payee held CRL {held}")
                spends.append((sp, settle.Source.RECEIVED))
            elif e.type is log.EntryType.LOADED:
                balance += e.amount
                _apply_voucher(conn, trust, params, e, wallet, now, problems)
            else:
                balance -= e.amount
                if e.type is log.EntryType.SENT:
                    sp = checks.payment(e.message, trust, params, None)
                    spends.append((sp, settle.Source.SENT))
                else:
                    sp = checks.unload(e.message, trust, params)
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
            else:
                problems.append(f"entry {i}: own {e.type.name} message invalid: {exc}")
    if balance != report.balance:
        problems.append(f"balance {report.balance} reported, {balance} expected")
    if sorted(debits) != list(range(counter + 1, report.counter + 1)):
        problems.append(
            f"debit counters {sorted(debits)} do not run {counter + 1}..{report.counter}"
        )
    books.post(conn, now, "chargeback", chargeback, memo=str(wid))
    out = settle.settle(conn, auth, spends, now)
    for p in problems:
        registry.anomaly(conn, "reconcile", p, now, wid.raw, wallet.bank)
    if problems:
        registry.revoke(conn, auth, wid, "reconcile", now)
    crls = authority.current_crls(conn)
    if registry.get(conn, wid).status != "active":
        return SyncResult(None, None, auth.bank_ders, crls, out.new + out.moved, refused, problems)
    bank = auth.bank(wallet.bank)
    limits = registry.decode_limits(wallet.limits)
    cert = bank.certify_wallet(csr, wid, limits, report.counter, now)
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
    authority.record_delivery(conn, wid, now)
    return SyncResult(ack, cert, auth.bank_ders, crls, out.new + out.moved, refused, problems)


def _apply_voucher(
    conn: Connection,
    trust: TrustStore,
    params: NetworkParams,
    e: log.Entry,
    wallet: Any,
    now: int,
    problems: list[str],
) -> None:
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
        return
    conn.execute(
        sa.update(t)
        .where(t.c.wallet == wid.raw, t.c.id == v.voucher_id, t.c.applied_at.is_(None))
        .values(applied_at=e.time)
    )
