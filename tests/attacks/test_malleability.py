"""Signature malleability (issue 9, finding 1).

Anyone who handles a P-256 payment in transit (a relay, the QR or chat channel, the payee) can
replace the ECDSA signature's ``s`` with ``n - s``: the twin verifies under plain ECDSA and has
other bytes. Two rules close it: signatures are canonical (low ``s``; every verifier refuses the
high form with ``NON_CANONICAL_SIGNATURE``), and a message is named by what was signed (SHA-256
of its COSE ``Sig_structure``), so even a second valid signature over the same content (which
only the payer's key can make) is the same payment, never a double spend.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from attackkit import ACCOUNT, RogueSE, assert_books, party, se_balance, sealed_wallet
from ledgerkit import World

from offcash.crypto.trust import TrustStore
from offcash.errors import Rejection, VerificationError
from offcash.protocol import messages as m
from offcash.wallet.terminal import ReceiveOnlyTerminal

from factories import malleated
from harness import T0


def _terminal(world: World, shop: str) -> ReceiveOnlyTerminal:
    tid = world.ledger.register_terminal(shop)
    trust = TrustStore.create(world.net.central_bank.certificate_der, world.net.bank_ders)
    return ReceiveOnlyTerminal(tid, world.net.params, trust)


def _age(world: World) -> int:
    return world.ledger.params.max_payment_age + world.ledger.params.clock_skew


def test_relay_malleated_twin_is_refused_offline_and_at_settlement(world: World) -> None:
    alice, bob = party(world, 5_000, "Bank A"), party(world, 0, "Bank B")
    shop = world.account("Bank B", 0)
    term = _terminal(world, shop)
    genuine = alice.se.pay(bob.se.request(1_000, T0 + 1), T0 + 2)
    to_shop = alice.se.pay_to(term.wallet_id, 500, T0 + 3)
    twin, shop_twin = malleated(genuine), malleated(to_shop)
    assert twin != genuine and m.digest(twin) == m.digest(genuine)

    # offline: the twin is refused before and after the genuine payment, by SE and terminal
    for payee, data in ((bob.se, twin), (term, shop_twin)):
        with pytest.raises(VerificationError) as info:
            payee.receive(data, T0 + 4)
        assert info.value.rejection is Rejection.NON_CANONICAL_SIGNATURE
    assert bob.se.receive(genuine, T0 + 5).duplicate is False
    assert term.receive(to_shop, T0 + 5).duplicate is False
    with pytest.raises(VerificationError) as info:
        bob.se.receive(twin, T0 + 6)
    assert info.value.rejection is Rejection.NON_CANONICAL_SIGNATURE
    assert se_balance(bob) == 1_000 and term.payments_to_redeem() == [to_shop]

    # settlement: the relay redeems the twin as well; the payer's and payee's copies settle
    out = world.ledger.redeem(term.wallet_id, [shop_twin, to_shop, shop_twin], T0 + 20)
    assert (out.settled, out.amount) == (1, 500)
    assert [r.reason for r in out.refused] == ["NON_CANONICAL_SIGNATURE"] * 2
    assert world.sync(alice.se, T0 + 30).ack is not None
    assert world.sync(bob.se, T0 + 40).refused == []
    assert world.ledger.wallet_status(alice.wid) == "active"  # never called a double spender
    assert world.ledger.anomalies(alice.wid) == [] and world.ledger.evidence(alice.wid) == []
    assert world.ledger.release_torn(T0 + 50 + _age(world)) == 0  # nothing torn, none paid twice
    audit = assert_books(
        world,
        {bob.account: ACCOUNT, shop: 500, alice.account: ACCOUNT - 5_000},
    )
    assert audit.suspense == 0 and audit.banks["Bank A"].losses == 0
    assert audit.banks["Bank A"].float == se_balance(alice) == 3_500
    assert audit.banks["Bank B"].float == se_balance(bob) == 1_000


def test_payment_signed_twice_over_the_same_content_is_one_spend(
    world: World, tmp_path: Path
) -> None:
    """Only the payer's key can sign the same content again (ECDSA draws a new nonce): both
    copies are canonical and verify, and both are the same payment, offline and at settlement:
    a duplicate, never a double spend."""
    alice = sealed_wallet(world, tmp_path / "alice", 5_000, "Bank A")
    bob = party(world, 0, "Bank B")
    shop = world.account("Bank B", 0)
    term = _terminal(world, shop)
    first = alice.se.pay_to(term.wallet_id, 700, T0 + 1)
    to_bob = alice.se.pay_to(bob.wid, 300, T0 + 2)
    rogue = RogueSE.extract(alice)  # the key, read out of the file with the PIN
    copies = [
        rogue.pay(term.wallet_id, 700, T0 + 1, counter=m.parse_payment(first).counter),
        rogue.pay(bob.wid, 300, T0 + 2, counter=m.parse_payment(to_bob).counter),
    ]
    assert copies[0] != first and copies[1] != to_bob  # another signature...
    assert [m.digest(c) for c in copies] == [m.digest(first), m.digest(to_bob)]  # ...same name

    assert term.receive(first, T0 + 3).duplicate is False
    assert term.receive(copies[0], T0 + 4).duplicate is True  # not DOUBLE_SPEND
    assert bob.se.receive(copies[1], T0 + 5).duplicate is False
    assert bob.se.receive(to_bob, T0 + 6).duplicate is True
    out = world.ledger.redeem(term.wallet_id, [first, copies[0]], T0 + 20)
    assert (out.settled, out.amount, out.duplicates, out.refused) == (1, 700, 1, [])
    assert world.sync(alice.se, T0 + 30).ack is not None  # her log holds the other copies
    assert world.sync(bob.se, T0 + 40).refused == []
    assert world.ledger.wallet_status(alice.wid) == "active"
    assert world.ledger.anomalies(alice.wid) == [] and world.ledger.evidence(alice.wid) == []
    assert world.ledger.release_torn(T0 + 50 + _age(world)) == 0
    audit = assert_books(world, {shop: 700, bob.account: ACCOUNT, alice.account: ACCOUNT - 5_000})
    assert audit.banks["Bank A"].float == se_balance(alice) == 4_000
    assert audit.banks["Bank B"].float == se_balance(bob) == 300
    assert audit.suspense == 0


def test_malleated_twin_of_the_payers_sync_upload_is_refused_whole(world: World) -> None:
    """The SE-signed sync report, malleated on the way: refused with the typed reason, nothing
    written; the genuine upload then settles."""
    alice, bob = party(world, 5_000, "Bank A"), party(world, 0, "Bank B")
    alice.se.pay_to(bob.wid, 1_000, T0 + 1)
    up = alice.se.sync_upload(T0 + 10)
    entries = [e.encode() for e in up.entries]
    with pytest.raises(VerificationError) as info:
        world.ledger.sync(malleated(up.report), entries, alice.se.csr(), T0 + 10)
    assert info.value.rejection is Rejection.NON_CANONICAL_SIGNATURE
    assert world.sync(alice.se, T0 + 20).ack is not None
    assert world.ledger.wallet_status(alice.wid) == "active"
    assert_books(world)


def test_malleated_voucher_or_ack_is_refused_by_the_se(world: World) -> None:
    """The bank's signed messages, malleated on the way to the SE: refused, nothing applied; the
    genuine ones still apply once."""
    alice = party(world, 0, "Bank A")
    voucher = world.ledger.fund(alice.wid, 2_000, T0 + 1)
    with pytest.raises(VerificationError) as info:
        alice.se.load(malleated(voucher), T0 + 2)
    assert info.value.rejection is Rejection.NON_CANONICAL_SIGNATURE
    assert alice.se.load(voucher, T0 + 3) == 2_000
    res = world.sync(alice.se, T0 + 10, apply=False)
    assert res.ack is not None and res.certificate is not None
    with pytest.raises(VerificationError) as info:
        alice.se.apply_sync(
            malleated(res.ack), res.certificate, res.bank_certificates, res.crls, T0 + 11
        )
    assert info.value.rejection is Rejection.NON_CANONICAL_SIGNATURE
    assert alice.se.status(T0 + 11).log_entries == 1  # the ack was not applied
    alice.se.apply_sync(res.ack, res.certificate, res.bank_certificates, res.crls, T0 + 12)
    assert alice.se.status(T0 + 12).log_entries == 0
    assert se_balance(alice) == 2_000
    assert_books(world, {alice.account: ACCOUNT - 2_000})
