"""Ledger basics on both backends: books, enrolment, funding, unloading, sync, idempotence."""

from __future__ import annotations

import hashlib

import pytest
from ledgerkit import World

from offcash.crypto.algorithms import SignatureAlgorithm
from offcash.errors import VerificationError
from offcash.ledger import LedgerService
from offcash.ledger.errors import Conflict, IncompleteLog, InsufficientBalance
from offcash.protocol import messages as m

from harness import T0


def test_issue_and_audit_balance(world: World) -> None:
    acct = world.account("Bank A", 5_000)
    audit = world.ledger.audit()
    assert audit.balanced
    assert audit.issued == 20_000_000
    assert audit.customers == 5_000
    assert audit.banks["Bank A"].reserve == 10_000_000 - 5_000
    assert world.ledger.balance(acct) == 5_000


def test_fund_debits_account_into_float(world: World) -> None:
    se, _wid, acct = world.wallet(3_000)
    assert se.status(T0).balance == 3_000
    assert world.ledger.balance(acct) == 100_000 - 3_000
    audit = world.ledger.audit()
    assert audit.banks["Bank A"].float == 3_000 and audit.balanced


def test_fund_refuses_more_than_the_account_holds(world: World) -> None:
    _, wid, _acct = world.wallet(0, account=world.account(amount=100))
    with pytest.raises(InsufficientBalance):
        world.ledger.fund(wid, 101, T0)


def test_fund_with_a_voucher_id_is_idempotent(world: World) -> None:
    se, wid, acct = world.wallet(0)
    key = bytes(range(16))
    first = world.ledger.fund(wid, 2_000, T0)  # no id: a fresh voucher each time
    again = world.ledger.fund(wid, 700, T0 + 5, key)
    retry = world.ledger.fund(wid, 700, T0 + 60, key)  # the answer was lost: the caller retries
    a, b = m.parse_voucher(again), m.parse_voucher(retry)
    assert (
        (a.voucher_id, a.amount, a.time) == (b.voucher_id, b.amount, b.time) == (key, 700, T0 + 5)
    )
    assert world.ledger.balance(acct) == 100_000 - 2_700  # debited once
    se.load(first, T0 + 61)
    se.load(retry, T0 + 61)
    with pytest.raises(VerificationError, match="voucher already applied"):
        se.load(again, T0 + 62)  # the same voucher: single use
    assert se.status(T0 + 62).balance == world.ledger.audit().banks["Bank A"].float == 2_700
    with pytest.raises(Conflict):
        world.ledger.fund(wid, 701, T0 + 63, key)  # the key names another amount
    with pytest.raises(Conflict):
        world.ledger.fund(wid, 701, T0 + 63, b"short")


def test_payment_settles_once_between_banks(world: World) -> None:
    alice, _a_id, _ = world.wallet(5_000, "Bank A")
    bob, b_id, _ = world.wallet(0, "Bank B")
    p = alice.pay_to(b_id, 1_200, T0 + 10)
    bob.receive(p, T0 + 11)
    r1 = world.sync(bob, T0 + 100)
    assert r1.settled == 1 and not r1.anomalies
    r2 = world.sync(alice, T0 + 200)  # payer's copy of the same payment: nothing more
    assert r2.settled == 0
    audit = world.ledger.audit()
    assert audit.banks["Bank A"].float == 5_000 - 1_200
    assert audit.banks["Bank B"].float == 1_200
    assert audit.balanced and audit.suspense == 0


def test_retried_sync_settles_nothing_twice(world: World) -> None:
    alice, _, _ = world.wallet(5_000)
    bob, b_id, _ = world.wallet(0, "Bank B")
    bob.receive(alice.pay_to(b_id, 700, T0 + 1), T0 + 2)
    first = world.sync(bob, T0 + 10, apply=False)  # ack lost on the way back
    again = world.sync(bob, T0 + 20)
    assert first.settled == 1 and again.settled == 0
    assert world.ledger.audit().banks["Bank B"].float == 700
    bob.receive(alice.pay_to(b_id, 300, T0 + 30), T0 + 31)
    assert world.sync(bob, T0 + 40).settled == 1
    assert world.ledger.audit().banks["Bank B"].float == 1_000


def test_incomplete_log_is_refused(world: World) -> None:
    alice, _, _ = world.wallet(5_000)
    _, b_id, _ = world.wallet(0, "Bank B")
    alice.pay_to(b_id, 100, T0 + 1)
    alice.pay_to(b_id, 200, T0 + 2)
    up = alice.sync_upload(T0 + 10)
    with pytest.raises(IncompleteLog):
        world.ledger.sync(up.report, [up.entries[0].encode()], alice.csr(), T0 + 10)
    first, second, *rest = (e.encode() for e in up.entries)
    altered = [second, first, *rest]
    with pytest.raises(IncompleteLog):
        world.ledger.sync(up.report, altered, alice.csr(), T0 + 10)
    assert world.ledger.audit().suspense == 0


def test_sync_renews_certificate_with_counter_base(world: World) -> None:
    alice, _, _ = world.wallet(5_000)
    _, b_id, _ = world.wallet(0, "Bank B")
    for i in range(3):
        alice.pay_to(b_id, 100, T0 + i)
    world.sync(alice, T0 + 50)
    st = alice.status(T0 + 60)
    assert st.offline_payments == 0 and st.counter == 3 and st.log_entries == 0


def test_unload_online_and_via_sync_credits_once(world: World) -> None:
    alice, _, acct = world.wallet(5_000)
    before = world.ledger.balance(acct)
    req = alice.unload(1_000, T0 + 5)
    assert world.ledger.unload(req, T0 + 6) == 1_000
    assert world.ledger.unload(req, T0 + 7) == 0
    world.sync(alice, T0 + 8)  # the UNLOADED entry: already credited
    assert world.ledger.balance(acct) == before + 1_000
    assert world.ledger.audit().banks["Bank A"].float == 4_000


def test_terminal_redeems_into_owner_account_once(world: World) -> None:
    alice, _, _ = world.wallet(5_000)
    shop = world.account("Bank B", 0)
    term = world.ledger.register_terminal(shop)
    p1 = alice.pay_to(term, 250, T0 + 1)
    p2 = alice.pay_to(term, 150, T0 + 2)
    res = world.ledger.redeem(term, [p1, p2, p1], T0 + 10)
    assert (res.settled, res.amount, res.duplicates) == (2, 400, 1)
    assert world.ledger.redeem(term, [p1], T0 + 11).settled == 0
    world.sync(alice, T0 + 20)
    assert world.ledger.balance(shop) == 400
    assert world.ledger.audit().balanced


def test_terminal_refuses_payment_to_someone_else(world: World) -> None:
    alice, _, _ = world.wallet(5_000)
    term = world.ledger.register_terminal(world.account("Bank B", 0))
    other = world.ledger.register_terminal(world.account("Bank B", 0))
    res = world.ledger.redeem(term, [alice.pay_to(other, 10, T0 + 1), b"garbage"], T0 + 5)
    assert res.settled == 0 and [r.reason for r in res.refused] == ["WRONG_PAYEE", "DECODE"]


def test_enrolment_and_sync_bind_the_ses_kem_key(world: World) -> None:
    se, wid, _ = world.wallet(1_000)
    kem = se._s.encryption_key
    assert kem is not None
    enrolled = se.trust.wallet_certificate(se._s.certificate or b"", T0)
    result = world.sync(se, T0 + 10)
    assert result.certificate is not None
    renewed = se.trust.wallet_certificate(result.certificate, T0 + 10)
    digest = hashlib.sha256(kem.public()).digest()
    assert enrolled.encryption_key_digest == renewed.encryption_key_digest == digest
    assert renewed.wallet_id == wid


def test_a_central_bank_name_with_the_retired_mark_is_refused(
    db_target: tuple[str, str | None],
) -> None:
    """Attack review: the ledger keeps a migrated-away CA as ``<name>#<alg>`` and loads as the
    root only a name without ``#``; a network created with such a central bank name was
    installed, then unusable (``NotFound``: "no central bank yet"). It is refused up front, as
    a bank name with ``#`` is."""
    url, schema = db_target
    ledger = LedgerService.open(url, schema=schema)
    try:
        with pytest.raises(Conflict):
            ledger.create_network("EUR", SignatureAlgorithm.P256, "Central#Bank", ["Bank A"], T0)
        ledger.create_network("EUR", SignatureAlgorithm.P256, "Central Bank", ["Bank A"], T0)
        assert ledger.authorities.banks.keys() == {"Bank A"}
    finally:
        ledger.close()
