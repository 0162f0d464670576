"""Settlement of verified spends, in batches, exactly once per message.

Theory of operation: a *spend* is a verified signed debit of a payer's secure element, a payment
or an unload request, named by ``(payer, counter)``. It reaches the ledger from whoever uploads it
first: the payer's sync (``SENT``), the payee's sync (``RECEIVED``), a terminal's redemption
(``TERMINAL``) or an online unload (``UNLOAD``). ``settle`` takes a batch of them and, in the
caller's transaction:

1. inserts each into ``spends`` (primary key ``(payer, counter)``) with ON CONFLICT DO NOTHING,
   sorted so that concurrent batches lock in the same order. A spend that inserted is new: it
   debits the payer bank's float (its reserve, as a loss, if the payer was already refunded
   as lost) and credits where the uploader says the value is (table below);
2. a spend whose ``(payer, counter)`` exists with the same digest is the same message: at most a
   state transition, made by a conditional UPDATE (so two settlers cannot both make it);
3. one whose ``(payer, counter)`` exists with another digest is a double spend: it goes to
   ``conflicts`` (primary key ``(payer, counter, digest)``); a new conflict is paid like a
   primary but from the payer bank's reserve (the loss), and the payer is revoked at once.

========== ===================== =========================================
source     new spend credits      existing spend in state -> new state
========== ===================== =========================================
RECEIVED   payee bank float      suspense -> held (suspense to float);
                                 released -> held (owner account to float)
SENT       suspense              (nothing: someone already holds it)
TERMINAL   terminal owner        suspense -> redeemed (suspense to owner)
UNLOAD     payer owner account   (nothing)
========== ===================== =========================================

``release_torn`` pays a payment still in suspense to its payee's owner account once no payee
could accept it offline any more (older than max payment age plus clock skew). A payee SE that
reports it later (it accepted it in time but synced late) moves it from the owner's account to
its float: the owner is paid once, in one place or the other.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Row

from offcash.domain.ids import WalletId
from offcash.ledger import authority, books, registry
from offcash.ledger import schema as s


class Source(enum.Enum):
    """Who uploaded a spend."""

    SENT = "sent"
    RECEIVED = "received"
    TERMINAL = "terminal"
    UNLOAD = "unload"


_INITIAL = {
    Source.SENT: "suspense",
    Source.RECEIVED: "held",
    Source.TERMINAL: "redeemed",
    Source.UNLOAD: "unloaded",
}


@dataclass(frozen=True, slots=True)
class Spend:
    """A verified debit of a payer's SE (payment or unload request)."""

    payer: bytes
    counter: int
    digest: bytes
    kind: str  # payment | unload
    payee: bytes | None
    amount: int
    time: int
    payer_bank: str
    message: bytes


@dataclass
class Outcome:
    """What a batch did."""

    new: int = 0
    moved: int = 0
    duplicates: int = 0
    double_spends: list[tuple[bytes, int]] = field(default_factory=list)
    amount: int = 0


def _insert(conn: Connection, table: sa.Table) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def _insert_new(
    conn: Connection, table: sa.Table, rows: list[dict[str, Any]]
) -> list[tuple[bytes, int]]:
    """Insert ``rows`` in one statement, skipping keys that exist; the keys it inserted.

    PostgreSQL: ``INSERT ... SELECT FROM unnest(arrays)``, one short statement with one array
    per column sent in binary (a multi-row VALUES list of 10,000 parameters costs more to build
    and parse than the insert itself). SQLite: an executemany, which SQLAlchemy sends as
    multi-row inserts."""
    if conn.dialect.name != "postgresql":
        stmt = (
            _insert(conn, table).on_conflict_do_nothing().returning(table.c.payer, table.c.counter)
        )
        return [(bytes(p), int(c)) for p, c in conn.execute(stmt, rows)]
    cols = list(rows[0])
    arrays = ", ".join(
        f"CAST(%({c})b AS {table.c[c].type.compile(dialect=conn.dialect)}[])" for c in cols
    )
    sql = (
        f"INSERT INTO {table.name} ({', '.join(cols)}) SELECT * FROM unnest({arrays}) "
        "ON CONFLICT DO NOTHING RETURNING payer, counter"
    )
    params = {c: [r[c] for r in rows] for c in cols}  # psycopg: binary arrays (%(name)b)
    return [(bytes(p), int(c)) for p, c in conn.exec_driver_sql(sql, params)]


def _row(spend: Spend, state: str, now: int) -> dict[str, Any]:
    return {
        "payer": spend.payer,
        "counter": spend.counter,
        "digest": spend.digest,
        "kind": spend.kind,
        "payee": spend.payee,
        "amount": spend.amount,
        "time": spend.time,
        "state": state,
        "message": spend.message,
        "settled_at": now,
    }


def _credit_account(spend: Spend, source: Source, wallets: dict[bytes, Row[Any]]) -> str:
    if source is Source.SENT:
        return books.SUSPENSE
    if source is Source.UNLOAD:
        return str(wallets[spend.payer].account)
    payee = wallets[spend.payee or b""]
    return books.float_of(payee.bank) if source is Source.RECEIVED else str(payee.account)


def settle(
    conn: Connection, auth: authority.Authorities, batch: Sequence[tuple[Spend, Source]], now: int
) -> Outcome:
    """Settle ``batch`` in the caller's transaction (see the module docstring)."""
    out = Outcome()
    if not batch:
        return out
    items = sorted(batch, key=lambda it: (it[0].payer, it[0].counter, it[0].digest))
    ids = {sp.payer for sp, _ in items} | {sp.payee for sp, _ in items if sp.payee}
    wallets = registry.many(conn, ids)
    firsts: dict[tuple[bytes, int], tuple[Spend, Source]] = {}
    for sp, src in items:
        firsts.setdefault((sp.payer, sp.counter), (sp, src))
    rows = [_row(sp, _INITIAL[src], now) for sp, src in firsts.values()]
    inserted: set[tuple[bytes, int]] = set()
    for i in range(0, len(rows), 1000):
        inserted.update(_insert_new(conn, s.spends, rows[i : i + 1000]))
    legs = books.Legs()
    rest: list[tuple[Spend, Source]] = []
    for key, (sp, src) in firsts.items():
        if key not in inserted:
            continue
        payer = wallets.get(sp.payer)
        debit = books.float_of(sp.payer_bank)
        if payer is not None and payer.status == "refunded":
            debit = books.reserve(sp.payer_bank)
            registry.anomaly(
                conn,
                "late-surfacing",
                "spend surfaced after the lost-device refund",
                now,
                sp.payer,
                sp.payer_bank,
                sp.amount,
                sp.message,
            )
        legs.move(debit, _credit_account(sp, src, wallets), sp.amount)
        out.new += 1
        out.amount += sp.amount
    taken = {k for k in inserted}
    for sp, src in items:
        key = (sp.payer, sp.counter)
        if key in taken and firsts[key] == (sp, src):
            taken.discard(key)
            continue
        rest.append((sp, src))
    for sp, src in rest:
        _existing(conn, auth, sp, src, wallets, legs, out, now)
    books.post(conn, now, "settlement", legs)
    return out


def _existing(
    conn: Connection,
    auth: authority.Authorities,
    sp: Spend,
    src: Source,
    wallets: dict[bytes, Row[Any]],
    legs: books.Legs,
    out: Outcome,
    now: int,
) -> None:
    t = s.spends
    held = conn.execute(
        sa.select(t.c.digest).where(t.c.payer == sp.payer, t.c.counter == sp.counter)
    ).scalar_one()
    if bytes(held) == sp.digest:
        _transition(conn, t, sp, src, wallets, legs, out, now)
        return
    c = s.conflicts
    new = conn.execute(
        _insert(conn, c).on_conflict_do_nothing().returning(c.c.payer),
        [_row(sp, _INITIAL[src], now)],
    ).first()
    if new is None:
        _transition(conn, c, sp, src, wallets, legs, out, now)
        return
    legs.move(books.reserve(sp.payer_bank), _credit_account(sp, src, wallets), sp.amount)
    out.new += 1
    out.amount += sp.amount
    out.double_spends.append((sp.payer, sp.counter))
    registry.anomaly(
        conn,
        "double-spend",
        f"counter {sp.counter}: two different messages",
        now,
        sp.payer,
        sp.payer_bank,
        sp.amount,
        sp.message,
    )
    if sp.payer in wallets:
        registry.revoke(conn, auth, WalletId(sp.payer), "double-spend", now)


def _key(table: sa.Table, sp: Spend) -> list[Any]:
    conds = [table.c.payer == sp.payer, table.c.counter == sp.counter]
    if table is s.conflicts:
        conds.append(table.c.digest == sp.digest)
    return conds


def _transition(
    conn: Connection,
    table: sa.Table,
    sp: Spend,
    src: Source,
    wallets: dict[bytes, Row[Any]],
    legs: books.Legs,
    out: Outcome,
    now: int,
) -> None:
    for _ in range(3):
        state = conn.execute(sa.select(table.c.state).where(*_key(table, sp))).scalar_one()
        payee = wallets.get(sp.payee or b"")
        if payee is None:
            break
        if src is Source.RECEIVED and state == "suspense":
            source_account, target = books.SUSPENSE, "held"
        elif src is Source.RECEIVED and state == "released":
            source_account, target = str(payee.account), "held"
        elif src is Source.TERMINAL and state == "suspense":
            source_account, target = books.SUSPENSE, "redeemed"
        else:
            break
        done = conn.execute(
            sa.update(table)
            .where(*_key(table, sp), table.c.state == state)
            .values(state=target, settled_at=now)
            .returning(table.c.payer)
        ).first()
        if done is not None:
            legs.move(source_account, _credit_account(sp, src, wallets), sp.amount)
            out.moved += 1
            return
    out.duplicates += 1


def release_torn(conn: Connection, cutoff: int, now: int) -> int:
    """Pay every payment still in suspense and older than ``cutoff`` to its payee's owner
    account (conditional update: once). Returns how many were released."""
    legs = books.Legs()
    count = 0
    for table in (s.spends, s.conflicts):
        rows = conn.execute(
            sa.select(table).where(table.c.state == "suspense", table.c.time < cutoff)
        ).all()
        payees = registry.many(conn, (bytes(r.payee) for r in rows if r.payee is not None))
        for r in rows:
            payee = payees.get(bytes(r.payee or b""))
            if payee is None:
                continue
            conds = [
                table.c.payer == r.payer,
                table.c.counter == r.counter,
                table.c.digest == r.digest,
                table.c.state == "suspense",
            ]
            done = conn.execute(
                sa.update(table)
                .where(*conds)
                .values(state="released", settled_at=now)
                .returning(table.c.payer)
            ).first()
            if done is not None:
                legs.move(books.SUSPENSE, str(payee.account), int(r.amount))
                count += 1
    books.post(conn, now, "release-torn", legs)
    return count
