"""Revoked payers and payees holding old CRLs. A payee holding the CRL that revokes a payer
refuses it offline. A payee whose CRL is stale accepts, and settlement pays it, because the
payment was valid at acceptance by the CRL the payee held. A payee that already held the revoking
CRL (the ledger records each CRL delivery) and accepted anyway is refused at settlement with
``REVOKED``, and what its SE credited is charged back to its owner."""

from __future__ import annotations

from pathlib import Path

import pytest
from attackkit import (
    ACCOUNT,
    Party,
    assert_books,
    forget_crls,
    party,
    se_balance,
    sealed_wallet,
)
from ledgerkit import World

from offcash.crypto.trust import TrustStore
from offcash.errors import Rejection, VerificationError
from offcash.protocol import messages as m
from offcash.se.interface import SecureElement
from offcash.wallet.terminal import ReceiveOnlyTerminal

from harness import T0

REVOKED_AT = T0 + 30


def _revoked_double_spender(
    world: World, tmp_path: Path
) -> tuple[Party, SecureElement, list[Party]]:
    """Alice and her clone spend one counter at bob and carol; settlement revokes alice at
    ``REVOKED_AT``. Returns alice, the clone (still holding value) and the two payees."""
    alice = sealed_wallet(world, tmp_path / "alice", 5_000, "Bank A")
    evil = alice.clone(tmp_path / "stolen")
    bob, carol = party(world, 0, "Bank B"), party(world, 0, "Bank A")
    bob.se.receive(alice.se.pay_to(bob.wid, 1_000, T0 + 10), T0 + 11)
    carol.se.receive(evil.pay_to(carol.wid, 1_000, T0 + 12), T0 + 13)
    world.sync(bob.se, T0 + 20)
    world.sync(carol.se, REVOKED_AT)
    assert world.ledger.wallet_status(alice.wid) == "revoked"
    return alice, evil, [bob, carol]


def test_payee_holding_the_crl_refuses_a_revoked_payer_offline(
    world: World, tmp_path: Path
) -> None:
    _, evil, _ = _revoked_double_spender(world, tmp_path)
    dave = party(world, 0, "Bank B")
    world.sync(dave.se, REVOKED_AT + 10)  # dave's SE installs the new CRL
    trust = world.ledger.trust_material(None, REVOKED_AT + 10)
    term = ReceiveOnlyTerminal(
        world.ledger.register_terminal(world.account("Bank B", 0)),
        world.net.params,
        TrustStore.create(trust.root, trust.bank_certificates, trust.crls),
    )
    for device, wid in ((dave.se, dave.wid), (term, term.wallet_id)):
        with pytest.raises(VerificationError) as info:
            device.receive(evil.pay_to(wid, 500, REVOKED_AT + 20), REVOKED_AT + 21)
        assert info.value.rejection is Rejection.REVOKED
    assert se_balance(dave) == 0 and term.payments_to_redeem() == []


def test_payee_with_a_stale_crl_accepts_and_settlement_pays_it(
    world: World, tmp_path: Path
) -> None:
    dave = party(world, 0, "Bank B")  # enrolled before the revocation, offline since
    _, evil, (bob, carol) = _revoked_double_spender(world, tmp_path)
    shop = world.account("Bank B", 0)
    old = world.ledger.trust_material(None, T0)  # what the terminal holds: no CRL yet
    term = ReceiveOnlyTerminal(
        world.ledger.register_terminal(shop),
        world.net.params,
        TrustStore.create(old.root, old.bank_certificates, []),
    )
    to_dave = evil.pay_to(dave.wid, 500, REVOKED_AT + 20)
    to_term = evil.pay_to(term.wallet_id, 300, REVOKED_AT + 22)
    assert dave.se.receive(to_dave, REVOKED_AT + 21).duplicate is False  # valid by its CRL
    assert term.receive(to_term, REVOKED_AT + 23).duplicate is False

    res = world.sync(dave.se, REVOKED_AT + 100)
    assert (res.settled, res.refused) == (1, [])
    red = world.ledger.redeem(term.wallet_id, term.payments_to_redeem(), REVOKED_AT + 100)
    assert (red.settled, red.amount, red.refused) == (1, 300, [])
    audit = assert_books(
        world,
        {dave.account: ACCOUNT, shop: 300, bob.account: ACCOUNT, carol.account: ACCOUNT},
    )
    assert se_balance(dave) == 500
    assert audit.banks["Bank B"].float == se_balance(bob) + se_balance(dave) == 1_500


def test_payment_accepted_after_the_payee_held_the_crl_is_refused_at_settlement(
    world: World, tmp_path: Path
) -> None:
    erin = party(world, 0, "Bank B")  # enrolled before the revocation
    _, evil, _ = _revoked_double_spender(world, tmp_path)
    # erin's SE installs the CRL her sync delivers and her next signed report says it holds
    # it (only that proves it: an answer sent may never be applied); then her SE, broken,
    # forgets it and accepts from the revoked payer
    got = world.sync(erin.se, REVOKED_AT + 10)
    assert got.ack is not None and got.certificate is not None and got.crls
    world.sync(erin.se, REVOKED_AT + 11)
    forget_crls(erin)
    shop = world.account("Bank B", 0)
    tid = world.ledger.register_terminal(shop)
    stale = world.ledger.trust_material(None, T0)
    world.ledger.trust_material(tid, REVOKED_AT + 10)  # the terminal is handed the CRL too...
    term = ReceiveOnlyTerminal(  # ...and keeps verifying with its old trust store
        tid, world.net.params, TrustStore.create(stale.root, stale.bank_certificates, [])
    )
    to_erin = evil.pay_to(erin.wid, 500, REVOKED_AT + 20)
    erin.se.receive(to_erin, REVOKED_AT + 21)
    term.receive(evil.pay_to(tid, 300, REVOKED_AT + 22), REVOKED_AT + 23)

    res = world.sync(erin.se, REVOKED_AT + 100)
    assert [(r.reason, r.digest) for r in res.refused] == [("REVOKED", m.digest(to_erin))]
    assert res.settled == 0
    assert [(a.kind, a.evidence) for a in world.ledger.anomalies(erin.wid)] == [
        ("refused-payment", to_erin)
    ]
    red = world.ledger.redeem(tid, term.payments_to_redeem(), REVOKED_AT + 100)
    assert (red.settled, [r.reason for r in red.refused]) == (0, ["REVOKED"])
    # erin's SE credited 500 the bank never received: taken from her account, not from the bank
    audit = assert_books(world, {erin.account: ACCOUNT - 500, shop: 0})
    assert se_balance(erin) == 500
    assert audit.suspense == 0
