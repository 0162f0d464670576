"""A wallet's sync: verify its SE-signed log, reconcile it, settle it, renew the wallet.

Theory of operation: the report is the authentication (signed inside the secure element).
``verify`` checks, before any transaction, everything that needs no database: the report, and
each entry's message with the core's pure verifiers (a sent payment at its own time, a received
one at the time the payee's SE accepted it, an unload request, a voucher). ``run`` then, in one
transaction holding the wallet's row lock: checks that the upload continues the last
acknowledged sync (its ``sync_seq`` is the next one, or the same again when the SE never got
our acknowledgement), that after an algorithm migration an old-algorithm key re-keys the
wallet only once (``check_rekey``), and that the entries chain from the acknowledged head to
the signed ``log_digest`` (else a typed error, nothing written); gathers the ledger's view of
the wallet; lets the pure ``offcash.ledger.reconcile.reconcile`` decide (the rules: refusals
and charge-backs, problems, the loss, once per ``(wallet, sync_seq)``); writes that, settles
the spends and, unless the wallet was revoked, renews its certificate (counter base = reported
counter) and records its key, and acknowledges.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from offcash.crypto.algorithms import PublicKey, algorithm_of, spki
from offcash.crypto.pki import (
    DEFAULT_WALLET_VALIDITY,
    csr_encryption_key,
    csr_public_key,
    csr_rollover,
)
from offcash.crypto.trust import TrustStore, WalletCertificate
from offcash.domain.ids import WalletId
from offcash.domain.network import NetworkParams
from offcash.errors import DecodeError, Rejection, VerificationError
from offcash.issuance import VOUCHER_VALIDITY
from offcash.ledger import authority, books, checks, reconcile, registry, settle
from offcash.ledger import schema as s
from offcash.ledger.errors import IncompleteLog, NotFound, WalletRevoked
from offcash.ledger.reconcile import Refusal
from offcash.protocol import messages as m
from offcash.se import log
from offcash.verification import legacy_end, verify_report, verify_voucher

__all__ = ["Refusal", "SyncResult", "Upload", "check_rekey", "run", "verify"]


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
    #: the key the renewed certificate is for: the signer's, or after an algorithm migration
    #: the new key the signer handed the wallet over to (``check_csr``)
    key: PublicKey
    #: the SE's KEM public key its CSR asks to bind to the renewed certificate (or None)
    encryption_key: bytes | None
    entries: list[log.Entry]
    checked: dict[int, reconcile.Checked]

    @property
    def spends(self) -> dict[int, settle.Spend]:
        """The spends of the entries whose message verified, by index."""
        return {i: c for i, c in self.checked.items() if isinstance(c, settle.Spend)}


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
    if signer.algorithm is params.legacy and now > legacy_end(params):
        # a report is checked at min(time, not_after): only the ledger's clock ends the old key
        raise VerificationError(
            Rejection.ALGORITHM_NOT_ALLOWED,
            f"{signer.algorithm.short} reports ended at {legacy_end(params)}: report the wallet "
            "lost (its balance is refunded)",
        )
    key = check_csr(csr, signer, params)
    if report.time > now + params.clock_skew:
        raise VerificationError(Rejection.FROM_THE_FUTURE, "report time")
    if report.currency != params.currency:
        raise VerificationError(Rejection.CURRENCY_MISMATCH, report.currency)
    if len(entry_data) != report.entries:
        raise IncompleteLog(f"{len(entry_data)} entries uploaded, {report.entries} reported")
    entries = [log.Entry.decode(e, f"entries[{i}]") for i, e in enumerate(entry_data)]
    checked: dict[int, reconcile.Checked] = {}
    for i, e in enumerate(entries):
        try:
            checked[i] = _check(e, trust, params, signer)
        except (VerificationError, DecodeError) as exc:
            checked[i] = exc
    return Upload(report, signer, key, csr_encryption_key(csr), entries, checked)


def check_csr(csr: bytes, signer: WalletCertificate, params: NetworkParams) -> PublicKey:
    """The key a sync's CSR asks to certify: the reporting key, or, when the reporting key is
    of the algorithm the network migrated from, a key of the network's algorithm that the
    reporting key handed the wallet over to (``pki.csr_rollover``). A wallet on the old
    algorithm is not renewed under it (``ALGORITHM_NOT_ALLOWED``: it must re-key)."""
    key = csr_public_key(csr)
    if spki(key) == spki(signer.public_key):
        if signer.algorithm is not params.algorithm:
            raise VerificationError(
                Rejection.ALGORITHM_NOT_ALLOWED,
                f"no {signer.algorithm.short} certificate is issued after the migration: re-key",
            )
        return key
    if (
        signer.algorithm is params.legacy
        and algorithm_of(key) is params.algorithm
        and csr_rollover(csr, signer.public_key)
    ):
        return key
    raise VerificationError(Rejection.BAD_CERTIFICATE, "CSR is not for the reporting key")


def check_rekey(
    signer: WalletCertificate, key: bytes, certified: frozenset[bytes], params: NetworkParams
) -> None:
    """The re-key rule (pure): once the ledger certified a key of the network's algorithm for
    the wallet (``certified``: their SPKI digests), a report signed by an old-algorithm key is
    accepted only with a CSR for a key certified (``key``: its SPKI digest), i.e. the retry of a
    re-key whose answer the SE never got; any other is refused (``ALGORITHM_NOT_ALLOWED``,
    nothing written): the old key, a clone's or a forger's, re-keys the wallet only once."""
    if signer.algorithm is not params.legacy or not certified or key in certified:
        return
    raise VerificationError(
        Rejection.ALGORITHM_NOT_ALLOWED,
        f"wallet {signer.wallet_id} already re-keyed to {params.algorithm.short}: its "
        f"{signer.algorithm.short} key re-keys it to no other key",
    )


def _check(
    e: log.Entry, trust: TrustStore, params: NetworkParams, signer: WalletCertificate
) -> settle.Spend | m.LoadVoucher:
    """Verify an entry's message: a RECEIVED payment at the time the SE accepted it, a SENT one
    at its own time, an unload request, a voucher (from the wallet's bank, for it)."""
    wid = signer.wallet_id
    if e.type is log.EntryType.LOADED:
        return verify_voucher(
            e.message, trust=trust, params=params, wallet=wid, bank=signer.bank, now=e.time
        )
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
    """Process one verified sync upload in the caller's transaction: lock the wallet and every
    payer of the upload (one statement, id order), gather the ledger's view,
    ``reconcile.reconcile`` it (the rules), write what that decided. The renewed certificate
    is for the reporting key (``verify`` checked that the CSR is for it), valid for
    ``validity``."""
    report, signer = upload.report, upload.signer
    wid = signer.wallet_id
    # one sync of a wallet at a time; its payers' status and torn payments are decided here
    locked = registry.many(conn, {wid.raw} | {sp.payer for sp in upload.spends.values()}, lock=True)
    wallet = locked.get(wid.raw)
    if wallet is None:
        raise NotFound(f"unknown wallet {wid}")
    if wallet.status != "active":
        raise WalletRevoked(f"wallet {wid} is {wallet.status}")
    if report.sync_seq not in (wallet.next_seq, wallet.next_seq - 1):
        raise IncompleteLog(f"sync {report.sync_seq}, expected {wallet.next_seq}")
    if params.legacy is not None and signer.algorithm is params.legacy:
        # read under the wallet's lock: a concurrent re-key of this wallet has committed or waits
        certified = authority.certified_keys(conn, wid, params.algorithm)
        check_rekey(signer, authority.spki_digest(upload.key), certified, params)
    # what the SE holds is known only from its own signed statement: an answer sent is not
    # an answer applied (a replayed upload gets one the SE never sees)
    authority.record_held(conn, wid, report.crls, min(report.time, now))
    view = _view(conn, wallet, upload)
    if log.chain_all(view.base_head, upload.entries) != report.log_digest:
        raise IncompleteLog("entries do not chain to the signed log digest")
    rec = reconcile.reconcile(
        view, upload.entries, upload.checked, balance=report.balance, counter=report.counter
    )
    if rec.stale:
        raise IncompleteLog(
            f"sync {report.sync_seq} was settled with a longer log that begins with this one: "
            "a replay of an earlier upload, nothing done"
        )
    _write(conn, wallet, rec, report.sync_seq, now)
    torn = settle.torn_payees(conn, set(locked))  # after the locks: true for this transaction
    out = settle.settle(conn, auth, rec.spends, now, reporting=wid.raw, locked=locked, torn=torn)
    if wid.raw in torn:
        age = params.max_payment_age + params.clock_skew
        unpresumed = books.Legs()
        settle.unpresume(conn, wallet, report.time, age, unpresumed, now)
        books.post(conn, now, "release-torn", unpresumed, memo=str(wid))
    problems = [p for p, _ in rec.problems]
    for p, amount in rec.problems:
        registry.anomaly(conn, "reconcile", p, now, wid.raw, wallet.bank, amount)
    if rec.revoke:
        registry.revoke(conn, auth, wid, "reconcile", now)
    crls = authority.current_crls(conn)
    settled = out.new + out.moved
    # under its lock, only this transaction could have revoked the wallet: by the rules, or
    # as the payer of a double spend in its own upload
    revoked = rec.revoke or any(payer == wid.raw for payer, _ in out.double_spends)
    if revoked and registry.get(conn, wid).status != "active":
        return SyncResult(None, None, auth.bank_ders, crls, settled, rec.refused, problems)
    bank = auth.bank(wallet.bank)
    _return_expired_vouchers(conn, params, wallet, report.time, now)
    cert = bank.certify_key(
        upload.key, wid, view.limits, report.counter, now, validity, upload.encryption_key
    )
    authority.record_certificate(conn, wid, cert, wallet.bank, upload.key)
    ack = bank.acknowledge(report, wid, now)
    key = {"k_wallet": wid.raw, "k_seq": report.sync_seq}
    if view.settled_head is not None:  # an earlier run of this sync: its row is replaced
        conn.execute(_DELETE_SYNC, key)
    conn.execute(
        _INSERT_SYNC,
        {
            "wallet": wid.raw,
            "seq": report.sync_seq,
            "head": report.log_digest,
            "balance": report.balance,
            "counter": report.counter,
            "time": now,
        },
    )
    conn.execute(_NEXT_SEQ, {**key, "next": report.sync_seq + 1})
    return SyncResult(ack, cert, auth.bank_ders, crls, settled, rec.refused, problems)


# built once (SQLAlchemy then reuses their compiled form): the statements every sync runs
_sy, _r, _v, _sp = s.syncs, s.receipts, s.vouchers, s.spends
_DELETE_SYNC = sa.delete(_sy).where(
    _sy.c.wallet == sa.bindparam("k_wallet"), _sy.c.seq == sa.bindparam("k_seq")
)
_INSERT_SYNC = sa.insert(_sy)
_NEXT_SEQ = (
    sa.update(s.wallets)
    .where(s.wallets.c.id == sa.bindparam("k_wallet"))
    .values(next_seq=sa.bindparam("next"))
)
_SYNC_ROWS = sa.select(_sy).where(
    _sy.c.wallet == sa.bindparam("wallet"), _sy.c.seq.in_(sa.bindparam("seqs", expanding=True))
)
_OWN = sa.select(_sp.c.counter, _sp.c.digest).where(
    _sp.c.payer == sa.bindparam("wallet"), _sp.c.counter.in_(sa.bindparam("ids", expanding=True))
)
_LISTED = sa.select(_r.c.payer, _r.c.counter, _r.c.seq).where(
    _r.c.wallet == sa.bindparam("wallet"),
    sa.tuple_(_r.c.payer, _r.c.counter).in_(sa.bindparam("ids", expanding=True)),
)
_VOUCHERS = sa.select(_v).where(
    _v.c.wallet == sa.bindparam("wallet"), _v.c.id.in_(sa.bindparam("ids", expanding=True))
)
_RECEIPTS = sa.insert(_r)
_APPLY_VOUCHER = (
    sa.update(_v)
    .where(
        _v.c.wallet == sa.bindparam("k_wallet"),
        _v.c.id == sa.bindparam("k_id"),
        _v.c.applied_at.is_(None),
    )
    .values(applied_at=sa.bindparam("at"), applied_seq=sa.bindparam("seq_"))
)


def _view(conn: Connection, wallet: Row[Any], upload: Upload) -> reconcile.View:
    """What the ledger knows of the syncing wallet (one query per kind of fact; none for a
    kind the upload has nothing of)."""
    report, entries, wid = upload.report, upload.entries, bytes(wallet.id)
    rows = {
        int(r.seq): r
        for r in conn.execute(
            _SYNC_ROWS, {"wallet": wid, "seqs": [report.sync_seq - 1, report.sync_seq]}
        )
    }
    base = rows.get(report.sync_seq - 1)
    settled = rows.get(report.sync_seq)  # an earlier run of this same sync
    received = [sp for i, sp in upload.spends.items() if entries[i].type is log.EntryType.RECEIVED]
    vouchers = [c.voucher_id for c in upload.checked.values() if isinstance(c, m.LoadVoucher)]
    return reconcile.View(
        wallet=wid,
        seq=report.sync_seq,
        base_head=bytes(base.head) if base else log.GENESIS,
        base_balance=int(base.balance) if base else 0,
        base_counter=int(base.counter) if base else 0,
        limits=registry.decode_limits(wallet.limits),
        settled_head=bytes(settled.head) if settled else None,
        listed=_listed(conn, wid, received),
        revoked_known=authority.revocations_known_to(
            conn, (sp.payer for sp in received), WalletId(wid)
        ),
        vouchers=_vouchers(conn, wid, vouchers),
        own=_own(conn, wid, upload),
    )


def _own(conn: Connection, wallet: bytes, upload: Upload) -> dict[int, bytes]:
    """``counter -> digest`` of the debits the ledger holds from ``wallet`` with the counters of
    this upload's own debits (one query per 500)."""
    own = (log.EntryType.SENT, log.EntryType.UNLOADED)
    counters = sorted(
        {sp.counter for i, sp in upload.spends.items() if upload.entries[i].type in own}
    )
    out: dict[int, bytes] = {}
    for i in range(0, len(counters), 500):
        rows = conn.execute(_OWN, {"wallet": wallet, "ids": counters[i : i + 500]})
        out.update((int(c), bytes(d)) for c, d in rows)
    return out


def _listed(
    conn: Connection, wallet: bytes, spends: Iterable[settle.Spend]
) -> dict[tuple[bytes, int], int]:
    """``(payer, counter) -> sync seq`` of the payments among ``spends`` that ``wallet``'s logs
    listed as received before (one query per 500)."""
    keys = sorted({(sp.payer, sp.counter) for sp in spends})
    listed: dict[tuple[bytes, int], int] = {}
    for i in range(0, len(keys), 500):
        rows = conn.execute(_LISTED, {"wallet": wallet, "ids": keys[i : i + 500]})
        listed.update(((bytes(p), int(c)), int(q)) for p, c, q in rows)
    return listed


def _vouchers(
    conn: Connection, wallet: bytes, ids: list[bytes]
) -> dict[bytes, reconcile.VoucherView]:
    """The ledger's rows of the vouchers ``ids`` issued to ``wallet``."""
    if not ids:
        return {}
    rows = conn.execute(_VOUCHERS, {"wallet": wallet, "ids": sorted(set(ids))})
    return {
        bytes(r.id): reconcile.VoucherView(
            int(r.amount),
            None if r.applied_seq is None else int(r.applied_seq),
            r.applied_at is not None,
            r.returned_at is not None,
        )
        for r in rows
    }


def _write(
    conn: Connection, wallet: Row[Any], rec: reconcile.Reconciliation, seq: int, now: int
) -> None:
    """Write what reconciliation decided, except settlement and revocation (``run``): the
    receipts, the vouchers applied, the charge-back and the loss, the per-entry anomalies."""
    wid, bank = bytes(wallet.id), wallet.bank
    if rec.receipts:
        conn.execute(
            _RECEIPTS,
            [{"wallet": wid, "payer": p, "counter": c, "seq": seq} for p, c in rec.receipts],
        )
    for vid, time in rec.applied:
        conn.execute(_APPLY_VOUCHER, {"k_wallet": wid, "k_id": vid, "at": time, "seq_": seq})
    registry.anomalies(
        conn,
        [
            {
                "kind": a.kind,
                "detail": a.detail,
                "time": now,
                "wallet": wid,
                "bank": bank,
                "amount": a.amount,
                "evidence": a.evidence,
            }
            for a in rec.anomalies
        ],
    )
    chargeback = books.Legs()
    chargeback.move(str(wallet.account), books.float_of(bank), rec.chargeback)
    books.post(conn, now, "chargeback", chargeback, memo=str(WalletId(wid)))
    if rec.loss:
        # value spent beyond what the ledger knows the SE held was paid out of the float: the
        # bank's loss, booked from its reserve (with the amount on the anomaly)
        overspend = books.Legs()
        overspend.move(books.reserve(bank), books.float_of(bank), rec.loss)
        books.post(conn, now, "overspend-loss", overspend, memo=str(WalletId(wid)))


def _return_expired_vouchers(
    conn: Connection, params: NetworkParams, wallet: Any, report_time: int, now: int
) -> None:
    """Credit back to the owner's account every voucher of ``wallet`` that expired unloaded:
    the log is complete up to ``report_time``, at which the SE would refuse it."""
    key = {"k_wallet": wallet.id, "skew": params.clock_skew, "before": report_time}
    legs = books.Legs()
    for r in conn.execute(_EXPIRED_VOUCHERS, key).all():
        done = conn.execute(_RETURN_VOUCHER, {**key, "k_id": r.id, "at": now}).first()
        if done is not None:
            legs.move(books.float_of(wallet.bank), str(wallet.account), int(r.amount))
    books.post(conn, now, "voucher-expired", legs, str(WalletId(bytes(wallet.id))))


_EXPIRED_VOUCHERS = sa.select(_v.c.id, _v.c.amount).where(
    _v.c.wallet == sa.bindparam("k_wallet"),
    _v.c.applied_at.is_(None),
    _v.c.returned_at.is_(None),
    sa.func.coalesce(_v.c.expires, _v.c.issued_at + VOUCHER_VALIDITY) + sa.bindparam("skew")
    < sa.bindparam("before"),
)
_RETURN_VOUCHER = (
    sa.update(_v)
    .where(
        _v.c.wallet == sa.bindparam("k_wallet"),
        _v.c.id == sa.bindparam("k_id"),
        _v.c.returned_at.is_(None),
    )
    .values(returned_at=sa.bindparam("at"))
    .returning(_v.c.id)
)
