"""Operator calls with an idempotency key take effect once, on both backends."""

from __future__ import annotations

import multiprocessing as mp

import pytest
import sqlalchemy as sa
from ledgerkit import World

from offcash.ledger import LedgerService
from offcash.ledger import schema as s
from offcash.ledger.errors import Conflict, NotFound

from harness import T0


def _requests(world: World) -> int:
    with world.ledger.engine.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(s.idempotent_requests)).scalar_one()
        )


def test_issue_and_distribute_retried_with_a_key_move_money_once(world: World) -> None:
    issued = world.ledger.audit().issued
    world.ledger.issue("Bank A", 500, T0, "issue-1")
    world.ledger.issue("Bank A", 500, T0 + 9, "issue-1")  # the answer was lost: retried
    world.ledger.issue("Bank A", 500, T0)  # no key: a new issue each time
    assert world.ledger.audit().issued == issued + 1_000
    acct = world.account(amount=0)
    world.ledger.distribute(acct, 70, T0, "pay-7")
    world.ledger.distribute(acct, 70, T0 + 3, "pay-7")
    assert world.ledger.balance(acct) == 70
    assert world.ledger.audit().balanced


@pytest.mark.parametrize(
    "reuse",
    [
        lambda led, acct: led.issue("Bank A", 501, T0, "k"),  # other amount
        lambda led, acct: led.issue("Bank B", 500, T0, "k"),  # other bank
        lambda led, acct: led.distribute(acct, 500, T0, "k"),  # other operation
        lambda led, acct: led.open_account("Bank A", "holder", "k"),
    ],
)
def test_a_key_reused_for_another_request_is_a_conflict(world: World, reuse: object) -> None:
    acct = world.account(amount=0)
    world.ledger.issue("Bank A", 500, T0, "k")
    before = world.ledger.audit()
    with pytest.raises(Conflict, match="another request"):
        reuse(world.ledger, acct)  # type: ignore[operator]
    after = world.ledger.audit()
    assert (after.issued, after.customers) == (before.issued, before.customers)


def test_open_account_enroll_and_register_terminal_answer_a_retry_as_the_first(
    world: World,
) -> None:
    acct = world.ledger.open_account("Bank A", "alice", "open-alice")
    assert world.ledger.open_account("Bank A", "alice", "open-alice") == acct
    assert world.ledger.open_account("Bank A", "alice") != acct
    se = world.net.new_se()
    first = world.ledger.enroll(se.csr(), acct, T0, idempotency_key="enroll-phone")
    again = world.ledger.enroll(se.csr(), acct, T0 + 30, idempotency_key="enroll-phone")
    assert (again.wallet_id, again.certificate) == (first.wallet_id, first.certificate)
    se.enroll(again.certificate, again.bank_certificates, again.crls, T0 + 30)  # usable
    world.ledger.distribute(acct, 10, T0)
    se.load(world.ledger.fund(first.wallet_id, 10, T0 + 31), T0 + 31)
    with pytest.raises(Conflict):  # another SE's request under the same key
        world.ledger.enroll(world.net.new_se().csr(), acct, T0, idempotency_key="enroll-phone")
    term = world.ledger.register_terminal(acct, "till-1")
    assert world.ledger.register_terminal(acct, "till-1") == term


def test_a_failed_request_does_not_use_up_its_key(world: World) -> None:
    with pytest.raises(NotFound):
        world.ledger.distribute("c-nobody", 5, T0, "pay-8")
    with pytest.raises(NotFound):
        world.ledger.enroll(world.net.new_se().csr(), "c-nobody", T0, idempotency_key="e-1")
    assert _requests(world) == 0  # rolled back with the work
    acct = world.account(amount=0)
    world.ledger.distribute(acct, 5, T0, "pay-9")
    assert _requests(world) == 1 and world.ledger.balance(acct) == 5


def _issue(url: str, schema: str | None, key: str) -> None:
    ledger = LedgerService.open(url, schema=schema)
    try:
        ledger.issue("Bank B", 1_234, T0 + 1, key)
    finally:
        ledger.engine.dispose()


def test_concurrent_retries_of_one_issue_issue_once(
    world: World, db_target: tuple[str, str | None]
) -> None:
    url, schema = db_target
    issued = world.ledger.audit().issued
    world.ledger.engine.dispose()
    with mp.get_context("fork").Pool(4) as pool:
        pool.starmap(_issue, [(url, schema, "mint-42")] * 8)
    audit = world.ledger.audit()
    assert audit.issued == issued + 1_234 and audit.balanced
