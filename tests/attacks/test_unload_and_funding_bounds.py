"""Issue 9, items 2 and 9: online unloads and funding are bounded by what the ledger can account
for from the wallet's signed history, and the server's clock decides.

Every attack runs end to end through real SEs (their sealed files broken open with the PIN, as
in docs/SECURITY.md) and the real ledger, on SQLite and PostgreSQL. The oracle is the money the
test itself put in: what each owner funded and what each SE legitimately held."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path
from typing import Any

import pytest
from attackkit import (
    ACCOUNT,
    DAY,
    Party,
    RogueSE,
    assert_books,
    edit_state,
    party,
    reopen,
    se_balance,
    sealed_wallet,
)
from ledgerkit import World

from offcash.domain.limits import DEFAULT_LIMITS, Limits
from offcash.errors import LimitExceeded, Rejection, VerificationError
from offcash.ledger import LedgerService
from offcash.ledger.errors import LimitReached, UnloadRefused, WalletRevoked
from offcash.protocol import messages as m

from harness import T0

MILLION = 100_000_000  # 1,000,000.00 in minor units


def _mint(p: Party, extra: int) -> None:
    """Break the SE open and add ``extra`` to its balance (no log entry)."""

    def change(state: list[object]) -> None:
        state[7][0] += extra  # type: ignore[index]

    edit_state(p, change)


def _unload(rogue: RogueSE, amount: int, time: int, counter: int | None = None) -> bytes:
    """An unload request signed with a key read out of an SE file (any time, any counter)."""
    return m.sign_unload(
        rogue.key,
        rogue.cert,
        amount=amount,
        currency=rogue.currency,
        counter=rogue.counter + 1 if counter is None else counter,
        time=time,
    )


def test_broken_se_funded_with_10_cannot_unload_a_million(world: World, tmp_path: Path) -> None:
    alice = sealed_wallet(world, tmp_path / "alice", 1_000, "Bank A")
    _mint(alice, MILLION)
    rogue = RogueSE.extract(alice)
    request = _unload(rogue, MILLION, T0 + 10)
    with pytest.raises(UnloadRefused):
        world.ledger.unload(request, T0 + 11)
    assert world.ledger.wallet_status(alice.wid) == "revoked"
    [anomaly] = world.ledger.anomalies(alice.wid)
    assert (anomaly.kind, anomaly.evidence) == ("unload-refused", request)
    # nothing paid, nothing lost: the owner has exactly what they did not fund
    audit = assert_books(world, {alice.account: ACCOUNT - 1_000})
    assert audit.banks["Bank A"].losses == 0
    assert audit.banks["Bank A"].float == 1_000  # what the SE legitimately holds
    # the same request again, or another within the bound: the wallet is revoked
    with pytest.raises(UnloadRefused):
        world.ledger.unload(request, T0 + 12)
    with pytest.raises(WalletRevoked):
        world.ledger.unload(_unload(rogue, 500, T0 + 13, counter=2), T0 + 13)
    assert world.ledger.balance(alice.account) == ACCOUNT - 1_000


def test_broken_se_within_its_limit_but_beyond_its_history_is_refused(
    world: World, tmp_path: Path
) -> None:
    """Edited up to just under its certified max_balance, the SE unloads online: more than its
    history accounts for, refused; its next sync shows a log that does not explain the value:
    the unload is refused there too (nothing paid), the wallet revoked, no loss."""
    alice = sealed_wallet(world, tmp_path / "alice", 1_000, "Bank A")
    _mint(alice, 20_000)
    broken = reopen(alice)
    request = broken.unload(20_500, T0 + 10)
    with pytest.raises(UnloadRefused):
        world.ledger.unload(request, T0 + 11)
    assert world.ledger.wallet_status(alice.wid) == "active"  # it might be honest: sync first
    res = world.sync(broken, T0 + 20)
    assert res.ack is None and ("OVERDRAWN", m.digest(request)) in [
        (r.reason, r.digest) for r in res.refused
    ]
    assert world.ledger.wallet_status(alice.wid) == "revoked"
    audit = assert_books(world, {alice.account: ACCOUNT - 1_000})
    assert audit.banks["Bank A"].losses == 0 and audit.banks["Bank A"].float == 1_000


def test_honest_wallet_that_received_offline_unloads_after_its_sync(world: World) -> None:
    """An honest SE holding payments the ledger has not seen yet: its online unload of them is
    refused without revoking it, and its next sync pays it from the log."""
    payer = party(world, 5_000, "Bank A")
    bob = party(world, 1_000, "Bank B")
    bob.se.receive(payer.se.pay_to(bob.wid, 4_000, T0 + 1), T0 + 2)
    request = bob.se.unload(4_500, T0 + 3)
    with pytest.raises(UnloadRefused):
        world.ledger.unload(request, T0 + 4)
    assert world.ledger.wallet_status(bob.wid) == "active"
    res = world.sync(bob.se, T0 + 5)
    assert res.ack is not None and res.refused == []
    assert world.ledger.unload(request, T0 + 6) == 0  # settled by the sync, once
    audit = assert_books(world, {bob.account: ACCOUNT - 1_000 + 4_500})
    assert audit.banks["Bank B"].float == se_balance(bob) == 500


def test_unload_within_the_synced_balance_is_paid_at_once(world: World) -> None:
    alice = party(world, 5_000, "Bank A")
    assert world.ledger.unload(alice.se.unload(2_000, T0 + 1), T0 + 2) == 2_000
    assert world.ledger.unload(alice.se.unload(3_000, T0 + 3), T0 + 4) == 3_000
    audit = assert_books(world, {alice.account: ACCOUNT})
    assert audit.banks["Bank A"].float == se_balance(alice) == 0


def test_lost_refunded_and_revoked_wallets_cannot_unload(world: World, tmp_path: Path) -> None:
    instant = LedgerService(world.ledger.engine, claim_window=0)  # same ledger, no claim wait
    lost = party(world, 5_000, "Bank A")
    request = lost.se.unload(1_000, T0 + 2)
    world.ledger.report_lost(lost.wid, T0 + 1)
    with pytest.raises(WalletRevoked):
        world.ledger.unload(request, T0 + 2)
    assert instant.refund_lost(lost.wid, T0 + 3) == 5_000
    with pytest.raises(WalletRevoked):
        world.ledger.unload(request, T0 + 3)
    # revoked at its sync (it minted value), it still holds 1,000 the ledger knows of
    minted = sealed_wallet(world, tmp_path / "m", 1_000, "Bank A")
    _mint(minted, 50)
    broken = reopen(minted)
    assert world.sync(broken, T0 + 4).ack is None
    with pytest.raises(WalletRevoked):
        world.ledger.unload(_unload(RogueSE.extract(minted), 500, T0 + 5), T0 + 5)
    assert_books(world, {lost.account: ACCOUNT, minted.account: ACCOUNT - 1_000})


def test_the_servers_clock_decides_an_unloads_validity(world: World, tmp_path: Path) -> None:
    alice = sealed_wallet(world, tmp_path / "alice", 5_000, "Bank A")
    rogue = RogueSE.extract(alice)
    later = T0 + 30 * DAY  # the 7-day certificate expired long ago
    back_dated = _unload(rogue, 1_000, T0 + 60)  # a time inside the expired certificate
    with pytest.raises(VerificationError) as info:
        world.ledger.unload(back_dated, later)
    assert info.value.rejection is Rejection.TOO_OLD
    dated_now = _unload(rogue, 1_000, later)
    with pytest.raises(VerificationError) as info:
        world.ledger.unload(dated_now, later)
    assert info.value.rejection is Rejection.CERT_EXPIRED
    future = _unload(rogue, 1_000, T0 + DAY)
    with pytest.raises(VerificationError) as info:
        world.ledger.unload(future, T0 + 10)
    assert info.value.rejection is Rejection.FROM_THE_FUTURE
    assert world.ledger.anomalies(alice.wid) == []  # refused, nothing recorded or paid
    assert world.ledger.wallet_status(alice.wid) == "active"
    assert_books(world, {alice.account: ACCOUNT - 5_000})


def test_unload_reusing_a_counter_the_last_sync_covered_is_refused(
    world: World, tmp_path: Path
) -> None:
    alice = sealed_wallet(world, tmp_path / "alice", 5_000, "Bank A")
    bob = party(world, 0, "Bank B")
    alice.se.pay_to(bob.wid, 100, T0 + 1)
    alice.se.pay_to(bob.wid, 100, T0 + 2)
    world.sync(alice.se, T0 + 3)  # counters 1 and 2 acknowledged, both SENT
    rogue = RogueSE.extract(alice)
    with pytest.raises(UnloadRefused):  # counter 2 is a payment: another message, refused
        world.ledger.unload(_unload(rogue, 1_000, T0 + 4, counter=2), T0 + 4)
    assert world.ledger.wallet_status(alice.wid) == "revoked"
    assert [a.kind for a in world.ledger.anomalies(alice.wid)] == ["double-unload"]
    assert_books(world, {alice.account: ACCOUNT - 5_000})


# --- funding (item 9) -------------------------------------------------------------------------


def test_funding_above_the_certified_balance_limit_is_refused_before_debiting(
    world: World,
) -> None:
    account = world.account("Bank A")
    se = world.net.new_se()
    small = Limits(
        10_000,
        DEFAULT_LIMITS.max_payment,
        DEFAULT_LIMITS.max_offline_payments,
        DEFAULT_LIMITS.max_offline_value,
        DEFAULT_LIMITS.max_offline_seconds,
    )
    e = world.ledger.enroll(se.csr(), account, T0, small)
    se.enroll(e.certificate, e.bank_certificates, e.crls, T0)
    se.load(world.ledger.fund(e.wallet_id, 8_000, T0 + 1), T0 + 1)
    with pytest.raises(LimitReached):
        world.ledger.fund(e.wallet_id, 5_000, T0 + 2)  # 13,000 > 10,000: the SE would refuse
    assert world.ledger.balance(account) == ACCOUNT - 8_000  # not debited: no money in limbo
    # not yet loaded vouchers count too: two of 1,000 fit, a third does not
    pending = [world.ledger.fund(e.wallet_id, 1_000, T0 + 3) for _ in range(2)]
    with pytest.raises(LimitReached):
        world.ledger.fund(e.wallet_id, 1_000, T0 + 4)
    for v in pending:
        se.load(v, T0 + 5)
    with pytest.raises(LimitExceeded):  # what the ledger refused, the SE would have refused
        se.load(world.net.bank("Bank A").voucher(e.wallet_id, 1, "EUR", T0 + 5), T0 + 5)
    audit = assert_books(world, {account: ACCOUNT - 10_000})
    assert audit.banks["Bank A"].float == se.status(T0 + 5).balance == 10_000


def _unload_at_once(
    url: str, schema: str | None, request: bytes, now: int, go: Any, out: Any
) -> None:
    ledger = LedgerService.open(url, schema=schema)
    try:
        go.wait()
        out.put(("paid", ledger.unload(request, now)))
    except UnloadRefused:
        out.put(("refused", 0))
    except Exception as exc:  # reported to the test, which fails on it
        out.put(("error", repr(exc)))
    finally:
        ledger.engine.dispose()


def test_two_unloads_racing_from_two_processes_never_pay_beyond_the_history(
    world: World, db_target: tuple[str, str | None], tmp_path: Path
) -> None:
    """Each request alone fits what the ledger accounts for; together they do not. Two service
    processes take them at the same moment: one is paid, the other refused (the wallet's row
    lock orders the check and the payment)."""
    url, schema = db_target
    ctx = mp.get_context("fork")
    for n in range(3):
        alice = sealed_wallet(world, tmp_path / f"a{n}", 5_000, "Bank A")
        rogue = RogueSE.extract(alice)
        requests = [_unload(rogue, 4_000, T0 + 10, counter=c) for c in (1, 2)]
        world.ledger.engine.dispose()
        go, out = ctx.Barrier(2), ctx.Queue()
        procs = [
            ctx.Process(target=_unload_at_once, args=(url, schema, r, T0 + 10, go, out))
            for r in requests
        ]
        for p in procs:
            p.start()
        results = sorted(out.get(timeout=120) for _ in procs)
        for p in procs:
            p.join(60)
        assert results == [("paid", 4_000), ("refused", 0)], results
        assert world.ledger.balance(alice.account) == ACCOUNT - 5_000 + 4_000
    audit = assert_books(world)
    assert audit.banks["Bank A"].losses == 0
