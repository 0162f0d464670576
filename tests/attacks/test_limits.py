"""Limits exceeded by a broken secure element. An honest SE refuses every limit itself
(tests/se/test_software_se.py::test_limit_refusals_name_limit_value_and_bound). A broken one, its
key read out of its sealed file and driven by code that checks nothing, can sign anything; the
limits certified in its wallet certificate (maximum payment, payments and time since the sync,
counter base) are checked by every payee offline (``PAYER_LIMIT_EXCEEDED``) and again at
settlement, where the broken SE's own log makes it unreconciled and revoked. What one payment
cannot show (the value sent since the sync, the balance held, the balance itself) only the
wallet's log shows, at its sync."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from attackkit import (
    ACCOUNT,
    BALANCE,
    COUNTERS,
    RogueSE,
    assert_books,
    edit_state,
    party,
    reopen,
    se_balance,
    sealed_wallet,
)
from ledgerkit import World

from offcash.crypto.trust import TrustStore
from offcash.domain.ids import WalletId
from offcash.domain.limits import Limits
from offcash.errors import Rejection, VerificationError
from offcash.wallet.terminal import ReceiveOnlyTerminal

from harness import T0

LIMITS = Limits(
    max_balance=12_000,
    max_payment=2_000,
    max_offline_payments=3,
    max_offline_value=5_000,
    max_offline_seconds=3600,
)
#: When payees see the payments (after each breach's own time).
LATER = T0 + LIMITS.max_offline_seconds + 100
Breach = Callable[[RogueSE, World], Callable[[WalletId], bytes]]


def _over_max_payment(rogue: RogueSE, world: World) -> Callable[[WalletId], bytes]:
    return lambda to: rogue.pay(to, LIMITS.max_payment + 1, T0 + 10)


def _over_offline_payments(rogue: RogueSE, world: World) -> Callable[[WalletId], bytes]:
    return lambda to: rogue.pay(to, 100, T0 + 10, counter=LIMITS.max_offline_payments + 1)


def _over_offline_seconds(rogue: RogueSE, world: World) -> Callable[[WalletId], bytes]:
    return lambda to: rogue.pay(to, 100, T0 + LIMITS.max_offline_seconds + 1)


def _counter_not_after_base(rogue: RogueSE, world: World) -> Callable[[WalletId], bytes]:
    rogue.pay(WalletId.random(), 100, T0 + 5)  # counter 1 (never delivered)
    assert rogue.sync(world, T0 + 6).ack is not None  # renewed: counter base 1
    return lambda to: rogue.pay(to, 100, T0 + 10, counter=1)  # re-used under the new cert


BREACHES = [
    _over_max_payment,
    _over_offline_payments,
    _over_offline_seconds,
    _counter_not_after_base,
]


@pytest.mark.parametrize("breach", BREACHES, ids=[b.__name__.strip("_") for b in BREACHES])
def test_broken_se_ignoring_certified_limits_refused_offline_and_at_settlement(
    world: World, tmp_path: Path, breach: Breach
) -> None:
    alice = sealed_wallet(world, tmp_path / "alice", 10_000, "Bank A", limits=LIMITS)
    rogue = RogueSE.extract(alice)
    bob = party(world, 0, "Bank B")
    shop = world.account("Bank B", 0)
    tid = world.ledger.register_terminal(shop)
    trust = world.ledger.trust_material(tid, T0)
    term = ReceiveOnlyTerminal(
        tid, world.net.params, TrustStore.create(trust.root, trust.bank_certificates, trust.crls)
    )
    sign = breach(rogue, world)
    to_bob, to_term = sign(bob.wid), sign(tid)
    for device, data in ((bob.se, to_bob), (term, to_term)):
        with pytest.raises(VerificationError) as info:
            device.receive(data, LATER)
        assert info.value.rejection is Rejection.PAYER_LIMIT_EXCEEDED
    # a broken terminal that kept it anyway: refused at settlement, with the same reason
    red = world.ledger.redeem(tid, [to_term], LATER + 10)
    assert (red.settled, [r.reason for r in red.refused]) == (0, ["PAYER_LIMIT_EXCEEDED"])
    # the broken SE's own log: its debits do not verify, so it is unreconciled and revoked
    res = rogue.sync(world, LATER + 20)
    assert "PAYER_LIMIT_EXCEEDED" in {r.reason for r in res.refused}
    assert res.ack is None and world.ledger.wallet_status(alice.wid) == "revoked"
    assert "reconcile" in {a.kind for a in world.ledger.anomalies(alice.wid)}
    audit = assert_books(world, {bob.account: ACCOUNT, shop: 0})
    assert se_balance(bob) == 0 and audit.banks["Bank B"].float == 0


@pytest.mark.parametrize("limit", ["max_offline_value", "max_balance"])
def test_broken_se_over_value_limits_is_detected_at_its_sync(
    world: World, tmp_path: Path, limit: str
) -> None:
    alice = sealed_wallet(world, tmp_path / "alice", 10_000, "Bank A", limits=LIMITS)
    rogue = RogueSE.extract(alice)
    bob = party(world, 0, "Bank B")
    carol = party(world, 5_000, "Bank B")
    if limit == "max_offline_value":  # 3 x 2,000 > 5,000: each payment looks fine to bob
        for i in range(3):
            bob.se.receive(rogue.pay(bob.wid, 2_000, T0 + i), T0 + i)
    else:  # 10,000 + 3,000 > 12,000 held
        rogue.accept(carol.se.pay_to(alice.wid, 2_000, T0 + 1), T0 + 1)
        rogue.accept(carol.se.pay_to(alice.wid, 1_000, T0 + 2), T0 + 2)
    world.sync(bob.se, T0 + 20)
    rogue.sync(world, T0 + 30)
    assert_books(world, {bob.account: ACCOUNT})
    assert world.ledger.anomalies(alice.wid) != []
    assert world.ledger.wallet_status(alice.wid) == "revoked"


def test_se_spending_value_it_does_not_hold_is_unreconciled_at_its_sync(
    world: World, tmp_path: Path
) -> None:
    """The balance in the sealed state edited upwards: payees cannot tell, and are paid; the
    wallet's own sync shows a balance its log does not explain."""
    alice = sealed_wallet(world, tmp_path / "alice", 1_000, "Bank A")
    edit_state(alice, lambda s: s[COUNTERS].__setitem__(BALANCE, 20_000))
    minted = reopen(alice)
    bob = party(world, 0, "Bank B")
    bob.se.receive(minted.pay_to(bob.wid, 9_000, T0 + 1), T0 + 2)
    assert world.sync(bob.se, T0 + 10).settled == 1  # bob is paid in full
    res = world.sync(minted, T0 + 20)
    assert res.ack is None and world.ledger.wallet_status(alice.wid) == "revoked"
    [anomaly] = world.ledger.anomalies(alice.wid)
    assert anomaly.kind == "reconcile" and "11000 reported" in anomaly.detail
    audit = assert_books(world, {bob.account: ACCOUNT})
    assert audit.banks["Bank B"].float == se_balance(bob) == 9_000


def test_overspend_is_booked_as_the_banks_loss(world: World, tmp_path: Path) -> None:
    alice = sealed_wallet(world, tmp_path / "alice", 1_000, "Bank A")
    edit_state(alice, lambda s: s[COUNTERS].__setitem__(BALANCE, 20_000))
    minted = reopen(alice)
    bob = party(world, 0, "Bank B")
    bob.se.receive(minted.pay_to(bob.wid, 9_000, T0 + 1), T0 + 2)
    world.sync(bob.se, T0 + 10)
    world.sync(minted, T0 + 20)
    audit = assert_books(world, {bob.account: ACCOUNT})
    assert audit.banks["Bank A"].losses == 8_000
    assert audit.banks["Bank A"].float >= 0
