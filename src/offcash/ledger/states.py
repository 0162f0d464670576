"""The spend state machine: every state a settled spend can be in, and every move between them.

Theory of operation: a spend row (``spends`` or ``conflicts``) is created in the state its
uploader implies (``initial``) and afterwards only moves by ``transition(state, event)``, a
pure lookup in ``TRANSITIONS``. Each transition names where the spend's value moves, as roles
(``Role``) that settlement turns into accounts for the spend's payee; a transition with no move
changes only who is known to hold the value. Settlement applies a transition with one
conditional UPDATE (``WHERE state = <from>``), so a move happens at most once whoever races.
docs/SETTLEMENT.md carries ``markdown_table()``; tests/ledger/test_states.py checks they agree.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class SpendState(enum.StrEnum):
    """Where a settled spend's value is (stored as its value in the ``state`` column)."""

    SUSPENSE = "suspense"  #: only the payer reported it (a torn transfer): in ``suspense``
    HELD = "held"  #: the payee SE reported it: in the payee bank's float
    RELEASED = "released"  #: torn, paid to the payee's owner account
    PRESUMED = "presumed"  #: torn, presumed in the payee SE (its spends prove it): in its float
    REDEEMED = "redeemed"  #: a terminal redeemed it: in the terminal owner's account
    UNLOADED = "unloaded"  #: an unload request, paid to the wallet owner's account
    REFUSED = "refused"  #: an unload the ledger refused (nothing paid), kept as evidence


class Source(enum.Enum):
    """Who uploaded a spend first (decides its initial state)."""

    SENT = "sent"  #: the payer SE's sync
    RECEIVED = "received"  #: the payee SE's sync
    TERMINAL = "terminal"  #: a terminal's redemption
    UNLOAD = "unload"  #: an unload request (online or in the wallet's sync)
    REFUSED_UNLOAD = "refused-unload"  #: an unload beyond what the ledger can account for


class Event(enum.Enum):
    """What can happen to a spend already settled."""

    PAYEE_REPORTED = "payee-reported"  #: the payee SE's sync lists it as received
    TERMINAL_REDEEMED = "terminal-redeemed"  #: the payee terminal redeems it
    TORN_RELEASED = "torn-released"  #: too old for any payee to accept: pay the payee's owner
    TORN_PRESUMED = "torn-presumed"  #: the payee SE spent more than it held: it has it
    NOT_IN_LOG = "not-in-log"  #: the payee's complete log, late enough, does not list it
    LOST_REFUNDED = "lost-refunded"  #: the payee SE was refunded as lost (the refund pays it)


class Role(enum.Enum):
    """An account, named by its role for the spend."""

    SUSPENSE = "suspense"
    PAYEE_FLOAT = "payee bank float"
    PAYEE_OWNER = "payee owner account"
    PAYER_OWNER = "payer owner account"


@dataclass(frozen=True, slots=True)
class Transition:
    """A move to ``target``, moving the spend's value from ``debit`` to ``credit`` (if any)."""

    target: SpendState
    debit: Role | None = None
    credit: Role | None = None


S, E, R = SpendState, Event, Role

#: Where a new spend's value goes (from the payer bank's float; from its reserve, as a loss, for
#: a double spend or a spend surfacing after a lost-device refund), by who uploaded it.
INITIAL: dict[Source, tuple[SpendState, Role | None]] = {
    Source.SENT: (S.SUSPENSE, R.SUSPENSE),
    Source.RECEIVED: (S.HELD, R.PAYEE_FLOAT),
    Source.TERMINAL: (S.REDEEMED, R.PAYEE_OWNER),
    Source.UNLOAD: (S.UNLOADED, R.PAYER_OWNER),
    Source.REFUSED_UNLOAD: (S.REFUSED, None),
}

#: The only moves a settled spend can make; anything else is not a transition (nothing moves).
TRANSITIONS: dict[tuple[SpendState, Event], Transition] = {
    (S.SUSPENSE, E.PAYEE_REPORTED): Transition(S.HELD, R.SUSPENSE, R.PAYEE_FLOAT),
    (S.RELEASED, E.PAYEE_REPORTED): Transition(S.HELD, R.PAYEE_OWNER, R.PAYEE_FLOAT),
    (S.PRESUMED, E.PAYEE_REPORTED): Transition(S.HELD),
    (S.SUSPENSE, E.TERMINAL_REDEEMED): Transition(S.REDEEMED, R.SUSPENSE, R.PAYEE_OWNER),
    (S.SUSPENSE, E.TORN_RELEASED): Transition(S.RELEASED, R.SUSPENSE, R.PAYEE_OWNER),
    (S.SUSPENSE, E.TORN_PRESUMED): Transition(S.PRESUMED, R.SUSPENSE, R.PAYEE_FLOAT),
    (S.RELEASED, E.TORN_PRESUMED): Transition(S.PRESUMED, R.PAYEE_OWNER, R.PAYEE_FLOAT),
    (S.PRESUMED, E.NOT_IN_LOG): Transition(S.RELEASED, R.PAYEE_FLOAT, R.PAYEE_OWNER),
    (S.PRESUMED, E.LOST_REFUNDED): Transition(S.RELEASED),
}

#: What each upload source means as an event for a spend that already exists.
EVENT_OF: dict[Source, Event] = {
    Source.RECEIVED: E.PAYEE_REPORTED,
    Source.TERMINAL: E.TERMINAL_REDEEMED,
}


def transition(state: SpendState | str, event: Event) -> Transition | None:
    """The move ``event`` makes from ``state``, or None if it makes none (pure)."""
    return TRANSITIONS.get((SpendState(state), event))


def markdown_table() -> str:
    """``TRANSITIONS`` as the Markdown table in docs/SETTLEMENT.md."""
    lines = ["| from | event | to | value moves |", "|---|---|---|---|"]
    for (state, event), t in TRANSITIONS.items():
        moves = f"{t.debit.value} → {t.credit.value}" if t.debit and t.credit else "nothing"
        lines.append(f"| `{state}` | {event.value} | `{t.target}` | {moves} |")
    return "\n".join(lines)
