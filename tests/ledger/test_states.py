"""The spend state machine is one table (``offcash.ledger.states``), and docs/SETTLEMENT.md
shows that very table."""

from __future__ import annotations

from pathlib import Path

from offcash.ledger import states
from offcash.ledger.states import Event, SpendState, transition

DOC = Path(__file__).resolve().parents[2] / "docs" / "SETTLEMENT.md"


def test_the_documented_table_is_the_code_table() -> None:
    assert states.markdown_table() in DOC.read_text()


def test_every_state_is_documented_and_reachable() -> None:
    text = DOC.read_text()
    reachable = {s for s, _ in states.INITIAL.values()} | {
        t.target for t in states.TRANSITIONS.values()
    }
    assert reachable == set(SpendState)
    for s in SpendState:
        assert f"`{s}`" in text


def test_transitions_conserve_value_and_terminal_states_do_not_move() -> None:
    for (state, _), t in states.TRANSITIONS.items():
        assert t.target != state
        assert (t.debit is None) == (t.credit is None)
        if t.debit is not None:
            assert t.debit != t.credit
    for s in (SpendState.REDEEMED, SpendState.UNLOADED, SpendState.REFUSED, SpendState.HELD):
        assert all(transition(s, e) is None for e in Event)


def test_an_unknown_pair_is_no_transition() -> None:
    assert transition("suspense", Event.NOT_IN_LOG) is None
    assert transition(SpendState.PRESUMED, Event.PAYEE_REPORTED) == states.Transition(
        SpendState.HELD
    )
