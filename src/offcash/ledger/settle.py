"""Settlement of verified spends, in batches, exactly once per message.

Theory of operation: a *spend* is a verified signed debit of a payer's secure element, a payment
or an unload request, named by ``(payer, counter)``. It reaches the ledger from whoever uploads it
first: the payer's sync (``SENT``), the payee's sync (``RECEIVED``), a terminal's redemption
(``TERMINAL``) or an online unload (``UNLOAD``). ``settle`` takes a batch of them and, in the
caller's transaction:

1. inserts each into ``spends`` (primary key ``(payer, counter)``) with ON CONFLICT DO NOTHING,
   sorted so that concurrent batches lock in the same order. A spend that inserted is new: it
   debits the payer bank's float (its reserve, as a loss, if the payer was already refunded
   as lost) and credits where the uploader says the value is (``states.INITIAL``; a refused
   unload credits nothing);
2. a spend whose ``(payer, counter)`` exists with the same digest is the same message: at most a
   state transition, made by a conditional UPDATE (so two settlers cannot both make it);
3. one whose ``(payer, counter)`` exists with another digest is a double spend: it goes to
   ``conflicts`` (primary key ``(payer, counter, digest)``); a new conflict is paid like a
   primary but from the payer bank's reserve (the loss), and the payer is revoked at once.

The states and every move between them are one table, ``offcash.ledger.states`` (see
docs/SETTLEMENT.md); ``move`` is the one function that applies a transition to a row. The
payers' wallet rows are locked first (``registry.many(..., lock=True)``, in id order), so a
rule that holds a payer's row to check its spends (an online unload, funding, a lost-wallet
refund) is never interleaved with new ones (docs/SETTLEMENT.md, Concurrency).

``release_torn`` pays a payment still in suspense to its payee's owner account once no payee
could accept it offline any more (older than max payment age plus clock skew). A payee SE that
reports it later (it accepted it in time but synced late) moves it from the owner's account to
its float: the owner is paid once, in one place or the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from offcash.domain.ids import WalletId
from offcash.ledger import authority, books, db, registry
from offcash.ledger import schema as s
from offcash.ledger.states import (
    EVENT_OF,
    INITIAL,
    Event,
    Role,
    Source,
    SpendState,
    transition,
)

__all__ = ["Outcome", "Source", "Spend", "move", "release_torn", "settle"]


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
    refused: int = 0
    double_spends: list[tuple[bytes, int]] = field(default_factory=list)
    amount: int = 0


def _insert_new(
    conn: Connection, table: sa.Table, rows: list[dict[str, Any]]
) -> list[tuple[bytes, int]]:
    """Insert ``rows`` in one statement, skipping keys that exist; the keys it inserted.

    PostgreSQL: ``INSERT ... SELECT FROM unnest(arrays)``, one short statement with one array
    per column sent in binary (a multi-row VALUES list of 10,000 parameters costs more to build
    and parse than the insert itself). SQLite: an executemany, which SQLAlchemy sends as
    multi-row inserts."""
    if conn.dialect.name != "postgresql":
        stmt = _INSERT_NEW[table.name][conn.dialect.name]
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


_INSERT_NEW = {  # built once: every settlement runs one
    t.name: db.insert_ignoring(t, t.c.payer, t.c.counter) for t in (s.spends, s.conflicts)
}


def _row(spend: Spend, state: str, now: int) -> dict[str, Any]:
    return {
        "payer": spend.payer,
        "counter": spend.counter,
        "digest": spend.digest,
        "kind": spend.kind,
        "payee": spend.payee,
        "amount": spend.amount,
        "time": spend.time,
        "state": str(state),
        "message": spend.message,
        "settled_at": now,
    }


def account(role: Role, payer: Row[Any] | None, payee: Row[Any] | None) -> str:
    """The account that plays ``role`` for a spend of ``payer`` to ``payee`` (wallets rows)."""
    if role is Role.SUSPENSE:
        return books.SUSPENSE
    if role is Role.PAYER_OWNER and payer is not None:
        return str(payer.account)
    if role is Role.PAYEE_FLOAT and payee is not None:
        return books.float_of(payee.bank)
    if role is Role.PAYEE_OWNER and payee is not None:
        return str(payee.account)
    raise AssertionError(f"no account for {role} without its wallet")


def _credit_account(spend: Spend, source: Source, wallets: dict[bytes, Row[Any]]) -> str:
    role = INITIAL[source][1]
    assert role is not None
    return account(role, wallets.get(spend.payer), wallets.get(spend.payee or b""))


def _needs_payee(src: Source) -> bool:
    """Whether settling a spend from ``src`` may need its payee's wallet row: to name the
    account its value goes to, or to move it when it exists already."""
    return src in EVENT_OF or INITIAL[src][1] in (Role.PAYEE_FLOAT, Role.PAYEE_OWNER)


def settle(
    conn: Connection,
    auth: authority.Authorities,
    batch: Sequence[tuple[Spend, Source]],
    now: int,
    reporting: bytes | None = None,
    locked: dict[bytes, Row[Any]] | None = None,
    torn: set[bytes] | None = None,
) -> Outcome:
    """Settle ``batch`` in the caller's transaction (see the module docstring). ``reporting``:
    the wallet whose sync this is (its own log reconciles it: no deficit check for it).
    ``locked``: wallet rows the caller already locked in this transaction (``registry.many``
    with ``lock=True``); the payers among them are not locked again. ``torn``: what
    ``torn_payees`` found for the ``locked`` wallets, read after locking them: only those
    are checked for released payments to reclaim (None: every payer is)."""
    out = Outcome()
    if not batch:
        return out
    items = sorted(batch, key=lambda it: (it[0].payer, it[0].counter, it[0].digest))
    payers = {sp.payer for sp, _ in items}
    # lock the payers first: their status (refunded: the loss is the reserve's), their deficit
    # (reclaim_released) and their revocation are decided here (docs/SETTLEMENT.md, Concurrency)
    held = locked or {}
    wallets = {p: held[p] for p in payers if p in held}
    wallets.update(registry.many(conn, payers - wallets.keys(), lock=True))
    payees = {sp.payee for sp, src in items if sp.payee and _needs_payee(src)}
    wallets.update({p: held[p] for p in payees if p in held})
    wallets.update(registry.many(conn, payees - wallets.keys()))
    firsts: dict[tuple[bytes, int], tuple[Spend, Source]] = {}
    for sp, src in items:
        firsts.setdefault((sp.payer, sp.counter), (sp, src))
    rows = [_row(sp, INITIAL[src][0], now) for sp, src in firsts.values()]
    inserted: set[tuple[bytes, int]] = set()
    for i in range(0, len(rows), 1000):
        inserted.update(_insert_new(conn, s.spends, rows[i : i + 1000]))
    legs = books.Legs()
    rest: list[tuple[Spend, Source]] = []
    for key, (sp, src) in firsts.items():
        if key not in inserted:
            continue
        if INITIAL[src][1] is None:  # refused: kept as evidence, nothing paid
            out.refused += 1
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
    held_rows = _settled_rows(conn, sorted({(sp.payer, sp.counter) for sp, _ in rest}))
    for sp, src in rest:
        row = held_rows[(sp.payer, sp.counter)]
        _existing(conn, auth, sp, src, wallets, legs, out, now, row)
    surfaced = {k[0] for k in inserted} - {reporting}
    if torn is not None:  # known only for the payers the caller locked before looking
        surfaced = (surfaced & torn) | (surfaced - held.keys())
    reclaim_released(conn, surfaced, legs, now)
    books.post(conn, now, "settlement", legs)
    return out


_SETTLED_ROWS = sa.select(s.spends).where(
    s.spends.c.payer.in_(sa.bindparam("payers", expanding=True)),  # the distribution key
    sa.tuple_(s.spends.c.payer, s.spends.c.counter).in_(sa.bindparam("keys", expanding=True)),
)


def _settled_rows(
    conn: Connection, keys: list[tuple[bytes, int]]
) -> dict[tuple[bytes, int], Row[Any]]:
    """The ``spends`` rows of ``keys`` (``(payer, counter)``), one query per 500."""
    out: dict[tuple[bytes, int], Row[Any]] = {}
    for i in range(0, len(keys), 500):
        chunk = keys[i : i + 500]
        payers = sorted({p for p, _ in chunk})
        for r in conn.execute(_SETTLED_ROWS, {"payers": payers, "keys": chunk}):
            out[(bytes(r.payer), int(r.counter))] = r
    return out


def _torn_query(table: sa.Table) -> sa.Select[tuple[Any]]:
    payees = table.c.payee.in_(sa.bindparam("payees", expanding=True))
    return sa.select(table.c.payee).where(payees, table.c.state.in_([RELEASED, PRESUMED]))


def torn_payees(conn: Connection, wallets: set[bytes]) -> set[bytes]:
    """The wallets among ``wallets`` that are the payee of a torn payment settled without
    their report (``released`` or ``presumed``, in ``spends`` or ``conflicts``): one query
    (per 500), on the partial index. Read after locking the wallets, it stays true for the
    transaction: only a transaction holding a payee's lock moves a payment into those states
    (``release_torn``), and settling a batch only moves its payers' out of them or between
    them. The common case, nothing torn, then skips ``unpresume`` and ``reclaim_released``."""
    wanted = sorted(wallets)
    out: set[bytes] = set()
    for i in range(0, len(wanted), 500):
        chunk = {"payees": wanted[i : i + 500]}
        out.update(bytes(p) for (p,) in conn.execute(_TORN, chunk))
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
    row: Row[Any],
) -> None:
    """A spend whose ``(payer, counter)`` is settled already, as ``row`` (read in this
    transaction): the same message (at most a transition) or a double spend."""
    t = s.spends
    if bytes(row.digest) == sp.digest:
        _transition(conn, t, sp, src, wallets, legs, out, now, row)
        return
    c = s.conflicts
    if sp.kind == "unload":
        _double_unload(conn, auth, sp, wallets, out, now)
        return
    new = conn.execute(
        db.insert(conn, c).on_conflict_do_nothing().returning(c.c.payer),
        [_row(sp, INITIAL[src][0], now)],
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


def _double_unload(
    conn: Connection,
    auth: authority.Authorities,
    sp: Spend,
    wallets: dict[bytes, Row[Any]],
    out: Outcome,
    now: int,
) -> None:
    """A second, different unload request with a used ``(wallet, counter)``: a cloned or
    rolled-back SE. No honest payee needs protecting, so nothing is paid: the request is kept
    as double-spend evidence (state ``refused``) and the wallet revoked."""
    c = s.conflicts
    new = conn.execute(
        db.insert(conn, c).on_conflict_do_nothing().returning(c.c.payer),
        [_row(sp, SpendState.REFUSED, now)],
    ).first()
    if new is None:
        out.duplicates += 1
        return
    out.double_spends.append((sp.payer, sp.counter))
    registry.anomaly(
        conn,
        "double-unload",
        f"counter {sp.counter}: a second unload request, refused",
        now,
        sp.payer,
        sp.payer_bank,
        0,
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
    row: Row[Any] | None = None,
) -> None:
    """A message settled before, uploaded again by ``src``: at most one state transition
    (``row``: its row as read earlier in this transaction, if it was)."""
    event = EVENT_OF.get(src)
    payee = wallets.get(sp.payee or b"")
    if event is not None and payee is not None:
        for _ in range(3):  # the state read may be stale: a racing settler moved it first
            if row is None:
                row = conn.execute(sa.select(table).where(*_key(table, sp))).one()
            if transition(row.state, event) is None:
                break
            if move(conn, table, row, event, wallets.get(sp.payer), payee, legs, now):
                out.moved += 1
                return
            row = None
    out.duplicates += 1


def move(
    conn: Connection,
    table: sa.Table,
    r: Row[Any],
    event: Event,
    payer: Row[Any] | None,
    payee: Row[Any] | None,
    legs: books.Legs,
    now: int,
) -> bool:
    """Apply ``event`` to the spend row ``r`` (of ``table``) as ``states.TRANSITIONS`` says:
    one conditional UPDATE from the state ``r`` was read in (so at most once, whoever races)
    and the value's move, added to ``legs``. Whether this call moved it. Every state change of
    a settled spend goes through here."""
    t = transition(r.state, event)
    if t is None:
        return False
    key = {"k_payer": r.payer, "k_counter": r.counter, "k_digest": r.digest}
    done = conn.execute(
        _MOVE[table.name], {**key, "from": r.state, "to": str(t.target), "at": now}
    ).first()
    if done is None:
        return False
    if t.debit is not None and t.credit is not None:
        legs.move(account(t.debit, payer, payee), account(t.credit, payer, payee), int(r.amount))
    return True


# literals, not parameters: they select the partial index ix_spends_payee_torn
PRESUMED: sa.ColumnClause[str] = sa.literal_column("'presumed'")
RELEASED: sa.ColumnClause[str] = sa.literal_column("'released'")


def _move_statement(table: sa.Table) -> Any:
    c = table.c
    return (
        sa.update(table)
        .where(
            c.payer == sa.bindparam("k_payer"),
            c.counter == sa.bindparam("k_counter"),
            c.digest == sa.bindparam("k_digest"),
            c.state == sa.bindparam("from"),
        )
        .values(state=sa.bindparam("to"), settled_at=sa.bindparam("at"))
        .returning(c.payer)
    )


#: built once (SQLAlchemy then reuses their compiled form): the hot statements of this module
_MOVE = {t.name: _move_statement(t) for t in (s.spends, s.conflicts)}
_TORN = sa.union(_torn_query(s.spends), _torn_query(s.conflicts))


def torn_by_payee(table: sa.Table, payee: Any, state: sa.ColumnClause[str]) -> Any:
    """``table``'s torn payments to ``payee`` (one id, or an IN list) in ``state``, worded so
    that both databases use the partial index ``ix_spends_payee_torn``: SQLite uses a partial
    index only when the query repeats the index's condition term for term."""
    payees = table.c.payee.in_(payee) if isinstance(payee, list) else table.c.payee == payee
    return sa.and_(payees, table.c.state == state, table.c.state.in_([RELEASED, PRESUMED]))


def deficit(conn: Connection, wallet: bytes) -> int:
    """How much more an SE wallet has spent since its last acknowledged sync than the ledger
    knows it held: balance at that sync, vouchers issued and not yet applied, and payments
    presumed received. A positive deficit proves the SE received payments it never reported."""
    return _position(conn, wallet)[1]


def _position(conn: Connection, wallet: bytes) -> tuple[int | None, int]:
    """The counter of ``wallet``'s last acknowledged sync (None: it never synced) and its
    ``deficit``, in two statements: what is keyed by the wallet (its last sync, its spends
    since, its vouchers), then the payments presumed in it (looked up by payee)."""
    counter, balance, surfaced, vouchers = conn.execute(_POSITION, {"wallet": wallet}).one()
    presumed = sum(conn.execute(_PRESUMED, {"wallet": wallet}).one())
    held = int(balance) + int(vouchers) + int(presumed)
    return (None if counter is None else int(counter)), int(surfaced) - held


def _sum(table: sa.Table, *where: Any) -> Any:
    """The sum of ``table``'s amounts where ``where`` (0 if none), a scalar subquery."""
    return sa.select(sa.func.coalesce(sa.func.sum(table.c.amount), 0)).where(*where)


def _last_sync(column: sa.Column[Any]) -> Any:
    """``column`` of the wallet's last acknowledged sync (NULL: none), a scalar subquery."""
    y = s.syncs
    last = sa.select(column).where(y.c.wallet == sa.bindparam("wallet"))
    return last.order_by(y.c.seq.desc()).limit(1).scalar_subquery()


# built once (SQLAlchemy then reuses their compiled form): funding and unloading run them. Each
# is uncorrelated scalar subqueries, each the index lookup it was as a statement of its own; the
# first reads only rows keyed by the wallet (one shard: docs/SCALING.md), the second is the
# lookup by payee (every shard)
_POSITION = sa.select(
    _last_sync(s.syncs.c.counter),
    sa.func.coalesce(_last_sync(s.syncs.c.balance), 0),
    _sum(
        s.spends,
        s.spends.c.payer == sa.bindparam("wallet"),
        s.spends.c.counter > sa.func.coalesce(_last_sync(s.syncs.c.counter), 0),
        s.spends.c.state != str(SpendState.REFUSED),
    ).scalar_subquery(),
    _sum(
        s.vouchers,
        s.vouchers.c.wallet == sa.bindparam("wallet"),
        s.vouchers.c.applied_at.is_(None),
        s.vouchers.c.returned_at.is_(None),
    ).scalar_subquery(),
)
_PRESUMED = sa.select(
    *(
        _sum(x, torn_by_payee(x, sa.bindparam("wallet"), PRESUMED)).scalar_subquery()
        for x in (s.spends, s.conflicts)
    )
)


def available(conn: Connection, wallet: bytes) -> int:
    """What the ledger can account for in an SE wallet from its signed history: the balance
    its last acknowledged sync reported, plus the vouchers issued and not yet applied or
    returned, plus the payments presumed in it, minus its spends that surfaced since (minus
    ``deficit``). Its SE may hold more (payments it received and has not reported yet), never
    less, so this is all an online unload may take and what funding adds to."""
    return -deficit(conn, wallet)


def held(conn: Connection, sp: Spend) -> tuple[bytes, SpendState] | None:
    """The digest and state of the settled spend named like ``sp`` (its payer and counter),
    if there is one."""
    row = conn.execute(_HELD, {"payer": sp.payer, "counter": sp.counter}).first()
    return None if row is None else (bytes(row.digest), SpendState(row.state))


_HELD = sa.select(s.spends.c.digest, s.spends.c.state).where(
    s.spends.c.payer == sa.bindparam("payer"), s.spends.c.counter == sa.bindparam("counter")
)


def unload_refusal(conn: Connection, sp: Spend, max_balance: int) -> tuple[str, bool] | None:
    """Why an online unload request ``sp`` (not settled yet) must be refused, and whether that
    proves the SE broken; None if it may be paid. Proof: a counter the wallet's last
    acknowledged sync covered (a rolled-back SE), or more than the certified ``max_balance``
    (no honest SE ever holds more). Otherwise more than ``available`` may be an honest SE's
    value the ledger has not seen yet (payments received offline, not reported): refused, and
    its log, at the next sync, decides (``offcash.ledger.reconcile``)."""
    last, short = _position(conn, sp.payer)
    if last is not None and sp.counter <= last:
        return f"counter {sp.counter} is not after {last}, which the last sync covered", True
    if sp.amount > max_balance:
        return f"{sp.amount} asked, over the certified max_balance {max_balance}", True
    can = -short  # ``available``
    if sp.amount > can:
        return (
            f"{sp.amount} asked, {can} accounted for by the wallet's signed history: sync "
            "first (the next sync settles the request from the log)",
            False,
        )
    return None


def _may_hold(payee: Row[Any]) -> bool:
    """Whether a torn payment may be presumed in ``payee``'s SE: an SE wallet not yet refunded
    as lost (once refunded, the owner is paid what it held; what else is owed goes to the owner's
    account, see ``offcash.ledger.lost``)."""
    return bool(payee.kind == "se" and payee.status != "refunded")


def _presume(
    conn: Connection, table: sa.Table, r: Row[Any], payee: Row[Any], legs: books.Legs, now: int
) -> bool:
    """Move a torn payment (suspense or released) into its SE payee's bank float: the payee's
    own spends prove it holds it."""
    return move(conn, table, r, Event.TORN_PRESUMED, None, payee, legs, now)


def unpresume(
    conn: Connection, wallet: Row[Any], report_time: int, age: int, legs: books.Legs, now: int
) -> None:
    """``wallet`` synced a complete log up to ``report_time``: a payment presumed in its SE that
    the log does not list (else it would be ``held``) and that it would refuse by then (older
    than ``age``, max payment age plus clock skew) never reached it: pay it to its owner."""
    wid = bytes(wallet.id)
    for table in (s.spends, s.conflicts):
        rows = conn.execute(
            sa.select(table).where(
                torn_by_payee(table, wid, PRESUMED), table.c.time + age < report_time
            )
        ).all()
        for r in rows:
            move(conn, table, r, Event.NOT_IN_LOG, None, wallet, legs, now)


def reclaim_released(conn: Connection, payers: set[bytes], legs: books.Legs, now: int) -> None:
    """Spends of ``payers`` just surfaced: a payer that was paid a torn payment into its owner's
    account (``released``) but has now spent more than the ledger knew it held did receive it
    in its SE: move it back from the owner's account into the payee bank's float."""
    if not payers:
        return
    found: list[tuple[sa.Table, Row[Any]]] = []
    wanted = sorted(payers)
    for table in (s.spends, s.conflicts):
        for i in range(0, len(wanted), 500):
            found += [
                (table, r)
                for r in conn.execute(
                    sa.select(table).where(torn_by_payee(table, wanted[i : i + 500], RELEASED))
                )
            ]
    if not found:
        return
    payees = registry.many(conn, {bytes(r.payee) for _, r in found})
    gaps: dict[bytes, int] = {}
    for table, r in sorted(found, key=lambda f: (int(f[1].time), bytes(f[1].payer))):
        pid = bytes(r.payee)
        payee = payees.get(pid)
        if payee is None or not _may_hold(payee):
            continue
        if pid not in gaps:
            gaps[pid] = deficit(conn, pid)
        if gaps[pid] > 0 and _presume(conn, table, r, payee, legs, now):
            gaps[pid] -= int(r.amount)


def release_torn(conn: Connection, cutoff: int, now: int) -> int:
    """Settle every payment still in suspense and older than ``cutoff`` (conditional update:
    once): to its SE payee's bank float (``presumed``) if that payee has spent more than the
    ledger knew it held (so it did receive the payment, and its spend of it already surfaced),
    else to its payee's owner account. Returns how many left suspense."""
    legs = books.Legs()
    count = 0
    gaps: dict[bytes, int] = {}
    found = {
        table: conn.execute(
            sa.select(table)
            .where(table.c.state == str(SpendState.SUSPENSE), table.c.time < cutoff)
            .order_by(table.c.time, table.c.payer, table.c.counter)
        ).all()
        for table in (s.spends, s.conflicts)
    }
    # lock the payees (all at once, in id order) before reading their status and deficit
    payees = registry.many(
        conn, (bytes(r.payee) for rows in found.values() for r in rows if r.payee), lock=True
    )
    for table, rows in found.items():
        for r in rows:
            pid = bytes(r.payee or b"")
            payee = payees.get(pid)
            if payee is None:
                continue
            if _may_hold(payee):
                if pid not in gaps:
                    gaps[pid] = deficit(conn, pid)
                if gaps[pid] > 0:
                    if _presume(conn, table, r, payee, legs, now):
                        gaps[pid] -= int(r.amount)
                        count += 1
                    continue
            if move(conn, table, r, Event.TORN_RELEASED, None, payee, legs, now):
                count += 1
    books.post(conn, now, "release-torn", legs)
    return count
