"""The reconciliation of a wallet's sync: the rules, as one pure function of the log and the
ledger's view of the wallet.

Theory of operation: ``reconcile`` takes the uploaded log (its entries, each with what checking
its message gave: a verified spend or voucher, or the error) and what the ledger knows of the
wallet (``View``: its acknowledged base, its limits, the payments its earlier logs listed, the
CRLs it held, its vouchers, the log an earlier run of the same sync settled) and returns what
the sync means (``Reconciliation``): the spends to settle, the refusals, the charge-backs and
anomalies, the vouchers it applied, the problems (each revokes the wallet) and the loss. It reads
no database and writes nothing; ``offcash.ledger.sync`` gathers the view and writes the result.

Rules (docs/SETTLEMENT.md, Reconciliation): base balance + loaded + received - sent - unloaded
must equal the reported balance and the debit counters must run base+1..reported; a payment
listed as received before, a voucher the ledger did not issue or already applied, a balance over
``max_balance`` or sent value over ``max_offline_value`` is a problem. An unload is paid only
out of what the log accounts for at that point (the running balance): one that takes it below
zero is refused, nothing paid. Value sent beyond what the SE held is the bank's loss.

Once per ``(wallet, sync_seq)``: a sync whose answer was lost (or a captured upload replayed) is
processed again from the same base, and its log starts with the entries the earlier run
settled (the hash chain reaches that run's head). Those entries' one-off effects (charge-backs,
their anomalies) were booked by that run; only the entries after them get any. A log for the
same sync that does not extend the settled one is a fork (a cloned or rolled-back SE): a
problem, and it is settled whole (an entry both logs share and settlement refused would be
charged back to the owner twice: the clone's owner pays, never the bank).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from offcash.domain.limits import Limits
from offcash.errors import DecodeError, Rejection, VerificationError
from offcash.ledger.checks import COUNTERFEIT
from offcash.ledger.settle import Spend
from offcash.ledger.states import Source
from offcash.protocol import messages as m
from offcash.se import log

Checked = Spend | m.LoadVoucher | VerificationError | DecodeError


@dataclass(frozen=True)
class Refusal:
    """A message settlement refused, and why (a ``Rejection`` name or a ledger rule)."""

    digest: bytes
    reason: str


@dataclass(frozen=True)
class VoucherView:
    """A voucher the ledger issued to the wallet: its amount, the sync that first showed it
    applied (None: none did, or an old row without it), and whether it was applied or returned."""

    amount: int
    applied_seq: int | None
    applied: bool
    returned: bool


@dataclass(frozen=True)
class View:
    """What the ledger knows of the syncing wallet, gathered before reconciling."""

    wallet: bytes
    seq: int  #: the report's sync_seq
    base_head: bytes
    base_balance: int
    base_counter: int
    limits: Limits
    #: the head an earlier run of this same sync settled (None: it was never settled)
    settled_head: bytes | None = None
    #: (payer, counter) of payments the wallet's logs listed as received, and in which sync
    listed: dict[tuple[bytes, int], int] = field(default_factory=dict)
    #: payer -> since when the wallet held a CRL revoking it
    revoked_known: dict[bytes, int] = field(default_factory=dict)
    vouchers: dict[bytes, VoucherView] = field(default_factory=dict)
    #: counter -> digest of the wallet's own debits the ledger holds, for this log's counters
    own: dict[int, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class Anomaly:
    """An anomaly to record about the wallet (its bank is the writer's)."""

    kind: str
    detail: str
    amount: int = 0
    evidence: bytes | None = None


@dataclass
class Reconciliation:
    """What a sync means for the books (see the module docstring)."""

    spends: list[tuple[Spend, Source]] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    #: value the SE credited for received payments settlement refused: back from its owner
    chargeback: int = 0
    anomalies: list[Anomaly] = field(default_factory=list)
    #: (voucher id, time) of the vouchers this log applied first
    applied: list[tuple[bytes, int]] = field(default_factory=list)
    #: (payer, counter) of received payments listed for the first time
    receipts: list[tuple[bytes, int]] = field(default_factory=list)
    #: problems that revoke the wallet, each with the amount it costs the bank (0 or the loss)
    problems: list[tuple[str, int]] = field(default_factory=list)
    #: value spent beyond what the ledger knows the SE held: the bank's loss
    loss: int = 0
    #: how many leading entries an earlier run of this sync already settled
    settled_before: int = 0
    #: a log the settled one extends (every entry already settled as it is): a replay of an
    #: earlier upload of this sync, to refuse with nothing done, not a fork
    stale: bool = False

    @property
    def revoke(self) -> bool:
        """Whether the wallet must be revoked."""
        return bool(self.problems)


def settled_prefix(
    base_head: bytes, entries: Sequence[log.Entry], head: bytes | None
) -> int | None:
    """How many leading ``entries`` chain from ``base_head`` to ``head`` (0 if ``head`` is None
    or the base itself); None if no prefix does (the log differs from the one settled)."""
    if head is None or head == base_head:
        return 0
    d = base_head
    for i, e in enumerate(entries):
        d = log.chain(d, e)
        if d == head:
            return i + 1
    return None


def _already_settled(view: View, entries: Sequence[log.Entry], checked: dict[int, Checked]) -> bool:
    """Whether every entry of a log that does not reach the settled head is already settled
    exactly as it is (own debits by their digest, receipts listed, vouchers applied): the log
    is then a prefix of the settled one, which an honest SE uploaded first and a relay replays.
    A fork has an entry the ledger does not hold (a debit with another digest, a new receipt)."""
    if view.settled_head is None:
        return False
    for e, c in ((e, checked[i]) for i, e in enumerate(entries)):
        if e.type in (log.EntryType.SENT, log.EntryType.UNLOADED):
            if not isinstance(c, Spend) or view.own.get(c.counter) != c.digest:
                return False
        elif e.type is log.EntryType.RECEIVED:
            if not isinstance(c, Spend) or (c.payer, c.counter) not in view.listed:
                return False
        else:
            held = view.vouchers.get(c.voucher_id) if isinstance(c, m.LoadVoucher) else None
            if held is None or not held.applied:
                return False
    return True


def reconcile(
    view: View,
    entries: Sequence[log.Entry],
    checked: dict[int, Checked],
    *,
    balance: int,
    counter: int,
) -> Reconciliation:
    """Reconcile a verified log (``checked``: by index, what checking each entry's message gave;
    every entry has one) and the ``balance`` and ``counter`` its signed report states, against
    ``view`` (pure; see the module docstring)."""
    reported_balance, reported_counter = balance, counter
    out = Reconciliation()
    prefix = settled_prefix(view.base_head, entries, view.settled_head)
    if prefix is None and _already_settled(view, entries, checked):
        out.stale = True  # an earlier, shorter upload of this sync replayed
        return out
    if prefix is None:  # a clone or a rolled-back copy: an honest SE never forks its log
        out.problems.append((f"sync {view.seq} was settled before with another log", 0))
        prefix = 0  # which entries the two logs share is unknown: this one is settled whole
    out.settled_before = prefix
    balance = view.base_balance
    uncounted = 0  # float moved by this log that ``balance`` does not show
    sent_value = 0
    peak = balance
    debits: list[int] = []
    receipts: set[tuple[bytes, int]] = set()
    vouchers: set[bytes] = set()
    for i, e in enumerate(entries):
        new = i >= prefix
        c = checked[i]
        if isinstance(c, VerificationError | DecodeError):
            reason = c.rejection.name if isinstance(c, VerificationError) else "DECODE"
            out.refused.append(Refusal(m.digest(e.message), reason))
            if e.type is log.EntryType.RECEIVED:
                counterfeit = isinstance(c, VerificationError) and c.rejection in COUNTERFEIT
                kind = "counterfeit" if counterfeit else "refused-payment"
                if new:
                    out.chargeback += e.amount
                    out.anomalies.append(Anomaly(kind, f"{reason}: {c}", e.amount, e.message))
                uncounted += e.amount  # credited by the SE, taken back from its owner
            else:
                out.problems.append((f"entry {i}: own {e.type.name} message invalid: {c}", 0))
                if e.type is not log.EntryType.LOADED:
                    balance -= e.amount
                    uncounted += e.amount  # in ``balance``, but settles no float
        elif isinstance(c, m.LoadVoucher):
            balance += _voucher(view, out, vouchers, e, c, i, new)
        elif e.type is log.EntryType.RECEIVED:
            key = (c.payer, c.counter)
            if key in receipts or view.listed.get(key, view.seq) != view.seq:
                out.problems.append(
                    (f"entry {i}: payment ({c.payer.hex()}, {c.counter}) received again", 0)
                )
            else:
                receipts.add(key)
                if key not in view.listed:
                    out.receipts.append(key)
                balance += e.amount
                since = view.revoked_known.get(c.payer)
                if since is not None and since <= e.time:
                    exc = VerificationError(
                        Rejection.REVOKED, f"payee held a CRL revoking the payer since {since}"
                    )
                    out.refused.append(Refusal(m.digest(e.message), Rejection.REVOKED.name))
                    if new:
                        out.chargeback += e.amount
                        out.anomalies.append(
                            Anomaly("refused-payment", f"REVOKED: {exc}", e.amount, e.message)
                        )
                else:
                    out.spends.append((c, Source.RECEIVED))
        else:
            held = balance + uncounted  # what the log accounts for before this debit
            balance -= e.amount
            debits.append(c.counter)
            if c.payer != view.wallet:
                out.problems.append((f"entry {i}: debit signed by another wallet", 0))
            if e.type is log.EntryType.SENT:
                sent_value += e.amount
                out.spends.append((c, Source.SENT))
            elif c.amount > held:
                # an unload is paid only out of what the log accounts for (never a loss)
                uncounted += e.amount
                out.spends.append((c, Source.REFUSED_UNLOAD))
                out.refused.append(Refusal(m.digest(e.message), "OVERDRAWN"))
                out.problems.append(
                    (f"entry {i}: unloaded {c.amount} with {held} accounted for", 0)
                )
            else:
                out.spends.append((c, Source.UNLOAD))
        if isinstance(c, Spend) and c.amount != e.amount:
            out.problems.append((f"entry {i}: amount differs from the signed message", 0))
        peak = max(peak, balance)
    limits = view.limits
    if peak > limits.max_balance:
        out.problems.append((f"balance reached {peak}, over max_balance {limits.max_balance}", 0))
    if sent_value > limits.max_offline_value:
        out.problems.append(
            (
                f"sent {sent_value} since the last sync, over max_offline_value "
                f"{limits.max_offline_value}",
                0,
            )
        )
    out.loss = max(0, -(balance + uncounted))
    if balance != reported_balance:
        out.problems.append((f"balance {reported_balance} reported, {balance} expected", out.loss))
    elif out.loss:
        out.problems.append((f"spent {out.loss} more than it held", out.loss))
    if sorted(debits) != list(range(view.base_counter + 1, reported_counter + 1)):
        out.problems.append(
            (
                f"debit counters {sorted(debits)} do not run "
                f"{view.base_counter + 1}..{reported_counter}",
                0,
            )
        )
    return out


def _voucher(
    view: View,
    out: Reconciliation,
    seen: set[bytes],
    e: log.Entry,
    v: m.LoadVoucher,
    i: int,
    new: bool,
) -> int:
    """Apply a LOADED entry's verified voucher; what it adds to the log's balance."""
    row = view.vouchers.get(v.voucher_id)
    if row is None or row.amount != v.amount or v.amount != e.amount:
        if new:
            out.anomalies.append(
                Anomaly("unknown-voucher", "voucher this ledger did not issue", v.amount, e.message)
            )
        out.problems.append(("loaded a voucher the ledger did not issue", 0))
        return e.amount  # the SE credited it: counted, so the balance check sees the rest
    earlier = row.applied and (row.applied_seq is None or row.applied_seq != view.seq)
    if v.voucher_id in seen or earlier or row.returned:
        out.problems.append((f"voucher {v.voucher_id.hex()} applied again", 0))
        return 0
    seen.add(v.voucher_id)
    if not row.applied:
        out.applied.append((v.voucher_id, e.time))
    return e.amount
