"""A payee that never syncs. The torn-payment rule pays a payment only its payer reported to the
payee's owner account once no payee could still accept it; but a payee SE that did accept it,
and spent it onward offline (consecutive payments), then never syncs, is paid twice: once in its
SE (already spent, and settled from its bank's float when the next payee syncs) and once in its
owner's account. An unmodified SE is enough; only the sync is withheld."""

from __future__ import annotations

import pytest
from attackkit import ACCOUNT, assert_books, party, se_balance
from ledgerkit import World

from harness import T0


def test_torn_payment_released_to_a_payee_that_never_received_it(world: World) -> None:
    """The honest case the rule is for: the payment never reached the payee."""
    alice, bob = party(world, 5_000, "Bank A"), party(world, 0, "Bank B")
    alice.se.pay_to(bob.wid, 1_000, T0 + 1)  # lost on the way
    world.sync(alice.se, T0 + 10)
    age = world.ledger.params.max_payment_age + world.ledger.params.clock_skew
    assert world.ledger.release_torn(T0 + 2 + age) == 1
    audit = assert_books(world, {bob.account: ACCOUNT + 1_000})
    assert audit.banks["Bank A"].float == se_balance(alice) == 4_000
    assert audit.suspense == 0


@pytest.mark.xfail(
    strict=True,
    reason="ledger bug: release_torn pays a payer-reported payment to the payee's owner account "
    "even though the payee's SE accepted it and spent it onward offline (its spend surfaced via "
    "the next payee); the payee's bank float ends 1,000 below what its wallets hold and the "
    "payee's owner gains 1,000, with no anomaly (src/offcash/ledger/settle.py, release_torn)",
)
def test_payee_that_spends_onward_and_never_syncs_is_not_paid_twice(world: World) -> None:
    alice = party(world, 5_000, "Bank A")
    mallory = party(world, 0, "Bank A")  # an unmodified SE
    carol = party(world, 0, "Bank B")
    mallory.se.receive(alice.se.pay_to(mallory.wid, 1_000, T0 + 1), T0 + 2)
    carol.se.receive(mallory.se.pay_to(carol.wid, 1_000, T0 + 3), T0 + 4)  # spent onward
    world.sync(alice.se, T0 + 10)  # alice reports her payment; mallory never syncs
    world.sync(carol.se, T0 + 11)  # mallory's payment surfaces
    age = world.ledger.params.max_payment_age + world.ledger.params.clock_skew
    world.ledger.release_torn(T0 + 20 + age)
    audit = assert_books(world, {carol.account: ACCOUNT, mallory.account: ACCOUNT})
    assert audit.banks["Bank A"].float == se_balance(alice) + se_balance(mallory)
