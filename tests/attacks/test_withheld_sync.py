"""A payee that never syncs. The torn-payment rule pays a payment only its payer reported to the
payee's owner account once no payee could still accept it; but a payee SE that did accept it,
and spent it onward offline (consecutive payments), then never syncs, is paid twice: once in its
SE (already spent, and settled from its bank's float when the next payee syncs) and once in its
owner's account. An unmodified SE is enough; only the sync is withheld."""

from __future__ import annotations

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


def test_released_payment_moves_back_when_the_payees_onward_spend_surfaces(world: World) -> None:
    """The same payee, but its onward spend surfaces only after the release: the payment goes
    back from the owner's account into the float."""
    alice = party(world, 5_000, "Bank A")
    mallory = party(world, 0, "Bank A")
    carol = party(world, 0, "Bank B")
    mallory.se.receive(alice.se.pay_to(mallory.wid, 1_000, T0 + 1), T0 + 2)
    carol.se.receive(mallory.se.pay_to(carol.wid, 1_000, T0 + 3), T0 + 4)
    world.sync(alice.se, T0 + 10)
    age = world.ledger.params.max_payment_age + world.ledger.params.clock_skew
    assert world.ledger.release_torn(T0 + 20 + age) == 1  # nothing surfaced yet: released
    assert world.ledger.balance(mallory.account) == ACCOUNT + 1_000
    world.sync(carol.se, T0 + 30 + age)  # mallory's onward spend surfaces
    audit = assert_books(world, {carol.account: ACCOUNT, mallory.account: ACCOUNT})
    assert audit.banks["Bank A"].float == se_balance(alice) + se_balance(mallory) == 4_000
    assert audit.banks["Bank B"].float == se_balance(carol) == 1_000
    assert audit.suspense == 0


def test_presumed_payment_the_payee_never_received_is_paid_to_its_owner(world: World) -> None:
    """A payee that spent a payment received from someone else, while a torn payment to it was
    lost on the way: the torn one is presumed in its float until its sync shows it never
    arrived, then paid to its owner."""
    alice = party(world, 5_000, "Bank A")
    carol = party(world, 5_000, "Bank A")
    bob = party(world, 0, "Bank B")
    dave = party(world, 0, "Bank B")
    alice.se.pay_to(bob.wid, 1_000, T0 + 1)  # lost on the way
    bob.se.receive(carol.se.pay_to(bob.wid, 700, T0 + 2), T0 + 2)  # carol never syncs
    dave.se.receive(bob.se.pay_to(dave.wid, 700, T0 + 3), T0 + 3)
    world.sync(alice.se, T0 + 10)
    world.sync(dave.se, T0 + 11)  # bob's spend surfaces: more than bob was known to hold
    age = world.ledger.params.max_payment_age + world.ledger.params.clock_skew
    assert world.ledger.release_torn(T0 + 20 + age) == 1
    assert world.ledger.balance(bob.account) == ACCOUNT  # presumed in bob's SE for now
    world.sync(bob.se, T0 + 30 + age)  # its complete log: carol's payment, not alice's
    audit = assert_books(world, {bob.account: ACCOUNT + 1_000, dave.account: ACCOUNT})
    assert audit.banks["Bank B"].float == se_balance(bob) + se_balance(dave) == 700
    assert audit.banks["Bank A"].float == se_balance(alice) + se_balance(carol) + 0 == 8_300
    assert audit.suspense == 0
