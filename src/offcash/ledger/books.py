"""The double-entry books: account names, balanced journal entries, balances and the audit.

Theory of operation: every movement is one ``journal`` row and its ``postings`` (debit > 0,
credit < 0) summing to zero, written in the caller's transaction, so the books balance by
construction and ``audit`` re-proves it from the rows. Accounts:

- ``issued``: the central bank's issuance (credit balance = CBDC in circulation);
- ``reserve:<bank>``: a bank's reserves at the central bank;
- ``float:<bank>``: the offline float, the value inside the secure elements of that bank's
  wallets (held at the central bank on the bank's behalf, so moving float between banks is a
  reserve transfer through the central bank);
- ``suspense``: payments the payer reported but no payee has yet (torn transfers);
- ``c-...``: customer accounts at a bank.

Double-spend losses and late surfacing after a lost-device refund are charged to the payer's
bank reserve (and listed as anomalies with their amount).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from offcash.ledger import schema as s

ISSUED = "issued"
SUSPENSE = "suspense"
LOSS_KINDS = ("double-spend", "late-surfacing", "reconcile")
#: the bound on any amount and on the issued total (every holding and sum stays within BIGINT)
MAX_TOTAL = 2**63 - 1


def reserve(bank: str) -> str:
    """The reserve account of ``bank``."""
    return f"reserve:{bank}"


def float_of(bank: str) -> str:
    """The offline float account of ``bank``."""
    return f"float:{bank}"


class Legs:
    """Postings being gathered for one journal entry, netted per account."""

    def __init__(self) -> None:
        self.amounts: dict[str, int] = defaultdict(int)

    def move(self, debit_from: str, credit_to: str, amount: int) -> None:
        """Move ``amount`` out of ``debit_from`` into ``credit_to`` (balances as holdings)."""
        self.amounts[debit_from] -= amount
        self.amounts[credit_to] += amount

    def __bool__(self) -> bool:
        return any(self.amounts.values())


def post(conn: Connection, time: int, kind: str, legs: Legs, memo: str = "") -> int | None:
    """Write ``legs`` as one balanced journal entry; returns its id (None if nothing moved).

    Holdings are stored as credits (negative postings): ``move(a, b, x)`` posts +x to ``a``
    (debit) and -x to ``b`` (credit), so an account's holding is minus its posting sum."""
    rows = [(a, v) for a, v in sorted(legs.amounts.items()) if v]
    if not rows:
        return None
    if sum(v for _, v in rows) != 0:
        raise AssertionError("unbalanced journal entry")
    jid = conn.execute(_JOURNAL, {"time": time, "kind": kind, "memo": memo}).scalar_one()
    conn.execute(_POSTINGS, [{"journal_id": jid, "account": a, "amount": -v} for a, v in rows])
    return int(jid)


# built once (SQLAlchemy then reuses their compiled form): every settlement posts
_JOURNAL = sa.insert(s.journal).returning(s.journal.c.id)
_POSTINGS = sa.insert(s.postings)


def holding(conn: Connection, account: str) -> int:
    """What ``account`` holds now (minus the sum of its postings)."""
    return -int(conn.execute(_HOLDING, {"account": account}).scalar_one())


def lock(conn: Connection, account: str) -> None:
    """Lock ``account``'s row until the transaction ends (``SELECT ... FOR UPDATE``): taken
    before a rule reads the account's holding and then moves money by it (see
    docs/SETTLEMENT.md, Concurrency; SQLite serialises writers anyway)."""
    conn.execute(_LOCK, {"account": account})


def ensure_account(
    conn: Connection, account: str, kind: str, bank: str | None, holder: str | None = None
) -> None:
    """Create a system or customer account row if missing."""
    if conn.execute(_ACCOUNT, {"account": account}).first() is None:
        conn.execute(_NEW_ACCOUNT, {"id": account, "kind": kind, "bank": bank, "holder": holder})


# built once (SQLAlchemy then reuses their compiled form): funding and opening accounts run them
_HOLDING = sa.select(sa.func.coalesce(sa.func.sum(s.postings.c.amount), 0)).where(
    s.postings.c.account == sa.bindparam("account")
)
_ACCOUNT = sa.select(s.accounts.c.id).where(s.accounts.c.id == sa.bindparam("account"))
_LOCK = _ACCOUNT.with_for_update()
_NEW_ACCOUNT = sa.insert(s.accounts)
_ACCOUNTS_OF = sa.select(s.accounts.c.id, s.accounts.c.kind, s.accounts.c.bank).where(
    s.accounts.c.id.in_(sa.bindparam("ids", expanding=True))
)


@dataclass(frozen=True)
class BankPosition:
    """One bank's position: what it holds in each kind of account, and its losses."""

    reserve: int
    float: int
    customers: int
    losses: int


@dataclass(frozen=True)
class Audit:
    """The proof that the books balance: ``issued == customers + reserves + float + suspense``."""

    issued: int
    customers: int
    reserves: int
    float: int
    suspense: int
    banks: dict[str, BankPosition] = field(default_factory=dict)
    journal_entries: int = 0
    unbalanced_entries: int = 0

    @property
    def balanced(self) -> bool:
        """Whether the issued total equals what all accounts hold, entry by entry."""
        return self.unbalanced_entries == 0 and self.issued == (
            self.customers + self.reserves + self.float + self.suspense
        )


def audit(conn: Connection) -> Audit:
    """Recompute every holding from the postings and check each journal entry balances."""
    p, a = s.postings, s.accounts
    rows = conn.execute(
        sa.select(a.c.kind, a.c.bank, sa.func.coalesce(sa.func.sum(p.c.amount), 0))
        .select_from(a.outerjoin(p, p.c.account == a.c.id))
        .group_by(a.c.kind, a.c.bank)
    ).all()
    by_kind: dict[str, int] = defaultdict(int)
    per_bank: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for kind, bank, total in rows:
        by_kind[kind] += -int(total)
        if bank is not None:
            per_bank[bank][kind] += -int(total)
    losses = conn.execute(
        sa.select(s.anomalies.c.bank, sa.func.sum(s.anomalies.c.amount))
        .where(s.anomalies.c.kind.in_(LOSS_KINDS))
        .group_by(s.anomalies.c.bank)
    ).all()
    loss_by_bank = {b: int(v) for b, v in losses}
    unbalanced = conn.execute(
        sa.select(sa.func.count()).select_from(
            sa.select(p.c.journal_id)
            .group_by(p.c.journal_id)
            .having(sa.func.sum(p.c.amount) != 0)
            .subquery()
        )
    ).scalar_one()
    entries = conn.execute(sa.select(sa.func.count()).select_from(s.journal)).scalar_one()
    banks = {
        b: BankPosition(v["reserve"], v["float"], v["customer"], loss_by_bank.get(b, 0))
        for b, v in per_bank.items()
    }
    return Audit(
        issued=-by_kind["issued"],
        customers=by_kind["customer"],
        reserves=by_kind["reserve"],
        float=by_kind["float"],
        suspense=by_kind["suspense"],
        banks=banks,
        journal_entries=int(entries),
        unbalanced_entries=int(unbalanced),
    )


def accounts_of(conn: Connection, ids: Iterable[str]) -> dict[str, tuple[str, str | None]]:
    """``id -> (kind, bank)`` for the accounts that exist among ``ids``."""
    rows = conn.execute(_ACCOUNTS_OF, {"ids": list(ids)}).all()
    return {r[0]: (r[1], r[2]) for r in rows}
