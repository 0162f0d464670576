"""A revoked wallet keeps signing (issue 9, finding 8).

Settlement revokes a wallet (a clone of its SE double-spent): the sync that revokes it is
answered with no acknowledgement but with the CRLs that list it, and any later sync is refused
(``WalletRevoked``). The SE used to keep paying until its certificate expired: every payee
without that CRL accepted, and each payment was one more loss. Now the SE installs those CRLs,
or the current ones the wallet fetches when its sync is refused (``install_crls``; CRLs are
also installed at enrolment and at every sync) and, once a CRL of its bank lists its own
certificate, refuses to pay or unload (``SecureElementRevoked``) with nothing signed, debited
or logged. A CRL signed by its bank is the only proof it takes: a missing acknowledgement
proves nothing (a network fault drops one too).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from attackkit import (
    ACCOUNT,
    assert_books,
    party,
    reopen,
    se_balance,
    sealed_wallet,
)
from ledgerkit import World

from offcash.errors import SecureElementRevoked, VerificationError
from offcash.issuance import CentralBank
from offcash.ledger.errors import WalletRevoked

from harness import T0


def test_se_revoked_at_settlement_refuses_to_pay(world: World, tmp_path: Path) -> None:
    alice = sealed_wallet(world, tmp_path / "alice", 5_000, "Bank A")
    clone = alice.clone(tmp_path / "clone")
    bob, carol, dave = party(world, 0, "Bank B"), party(world, 0, "Bank A"), party(world)
    request = bob.se.request(1_000, T0 + 1)
    paid = alice.se.pay(request, T0 + 2)
    bob.se.receive(paid, T0 + 3)
    carol.se.receive(clone.pay_to(carol.wid, 1_000, T0 + 4), T0 + 5)  # the same counter
    assert world.sync(alice.se, T0 + 10).ack is not None
    res = world.sync(clone, T0 + 20)  # the double spend surfaces: revoked at this sync
    assert world.ledger.wallet_status(alice.wid) == "revoked"
    assert res.ack is None and res.certificate is None  # no ack, but the CRLs that list it
    assert clone.install_crls(res.crls, T0 + 21) is True
    with pytest.raises(SecureElementRevoked):
        clone.pay_to(dave.wid, 100, T0 + 22)

    # the original learns it at its next sync (refused: revoked), from the current CRLs
    with pytest.raises(WalletRevoked):
        world.sync(alice.se, T0 + 30)
    crls = world.ledger.trust_material(None, T0 + 31).crls
    # only a CRL signed by its bank counts: none, or a rogue CA's under the bank's name, is
    # no proof (the SE keeps its state)
    before = alice.state()
    assert alice.se.install_crls([], T0 + 31) is False
    rogue = CentralBank.create("Rogue", world.net.params.algorithm, T0).certify_bank("Bank A", T0)
    with pytest.raises(VerificationError):
        alice.se.install_crls([rogue.crl([(1, T0)], 99, T0 + 31)], T0 + 31)
    assert alice.state() == before
    assert alice.se.install_crls(crls, T0 + 32) is True
    assert alice.state() != before  # the CRL is persisted with the state
    alice.se = reopen(alice)  # and holds after a restart

    before = alice.state()
    for attempt in (
        lambda: alice.se.pay_to(dave.wid, 100, T0 + 40),
        lambda: alice.se.pay(dave.se.request(100, T0 + 40), T0 + 40),
        lambda: alice.se.unload(100, T0 + 40),
    ):
        with pytest.raises(SecureElementRevoked, match="revoked"):
            attempt()
    assert alice.state() == before and se_balance(alice) == 4_000
    assert alice.se.pay(request, T0 + 41) == paid  # a re-send of what it already signed
    assert se_balance(dave) == 0
    world.sync(bob.se, T0 + 50)
    world.sync(carol.se, T0 + 60)
    assert_books(world, {bob.account: ACCOUNT, carol.account: ACCOUNT, dave.account: ACCOUNT})
    assert (se_balance(bob), se_balance(carol)) == (1_000, 1_000)


def test_se_that_received_a_crl_listing_it_refuses_to_pay(world: World) -> None:
    """The same from the trust material any wallet fetches (``trust_material``): the SE applies
    only CRLs signed by a bank it holds, and only its own serial stops it."""
    alice, bob, carol = party(world, 5_000), party(world, 3_000), party(world, 0, "Bank B")
    world.ledger.report_lost(alice.wid, T0 + 10)  # the owner reports it lost; a thief holds it
    crls = world.ledger.trust_material(None, T0 + 11).crls
    assert bob.se.install_crls(crls, T0 + 12) is False  # another wallet's revocation
    assert bob.se.pay_to(carol.wid, 500, T0 + 13)
    assert alice.se.install_crls(crls, T0 + 12) is True
    with pytest.raises(SecureElementRevoked):
        alice.se.pay_to(carol.wid, 500, T0 + 13)
    assert se_balance(alice) == 5_000 and se_balance(bob) == 2_500
