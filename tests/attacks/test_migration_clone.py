"""A clone across an algorithm migration: an SE file copied after the SE followed the
migration, before its re-key sync. The original re-keys (an ML-DSA certificate); the clone keeps
the old key and its P-256 certificate, valid until ``legacy_until``: two live certificates for
one wallet. Spending the same counter under both keys is caught at settlement and attributed to
the wallet (same wallet id, whatever key signed), both honest payees are paid, the loss goes to
the payer's bank, and both certificates are revoked (the old one on the old CA's CRL)."""

from __future__ import annotations

from pathlib import Path

import pytest
from attackkit import ACCOUNT, assert_books, sealed_wallet
from ledgerkit import World

from offcash.crypto.algorithms import SignatureAlgorithm
from offcash.encoding import cose
from offcash.errors import Rejection, VerificationError
from offcash.protocol import messages as m
from offcash.se.interface import SecureElement
from offcash.wallet.facade import Wallet

from harness import T0

T1 = T0 + 3600


def _new_party_se(world: World, directory: Path, now: int) -> SecureElement:
    """A wallet enrolled after the migration: an SE of the suite's kind, on the new network."""
    network = world.ledger.network()
    assert world.net.ses is not None
    se = world.net.ses.factory.create(directory, network.params, network.root)
    account = world.account("Bank B")
    e = world.ledger.enroll(se.csr(), account, now)
    se.enroll(e.certificate, e.bank_certificates, e.crls, now)
    return se


def test_both_keys_of_a_re_keyed_clone_spend_one_counter_caught_and_attributed(
    world: World, tmp_path: Path
) -> None:
    alice = sealed_wallet(world, tmp_path / "alice", 5_000, "Bank A")
    world.ledger.migrate(SignatureAlgorithm.ML_DSA_44, T1)
    Wallet(alice.se, world.ledger).migrate(world.ledger.network())
    evil = alice.clone(tmp_path / "stolen")  # a copy of the SE as it followed the migration
    assert world.sync(alice.se, T1 + 10).certificate is not None  # the original re-keys
    bob = _new_party_se(world, tmp_path / "bob", T1 + 20)
    carol = _new_party_se(world, tmp_path / "carol", T1 + 20)
    p1 = alice.se.pay(bob.request(1_000, T1 + 30), T1 + 30)  # ML-DSA, new certificate
    bob.receive(p1, T1 + 31)
    p2 = evil.pay(carol.request(1_000, T1 + 32), T1 + 32)  # P-256, the old certificate
    carol.receive(p2, T1 + 33)
    algs = {cose.decode_sign1(p).alg for p in (p1, p2)}
    assert algs == {SignatureAlgorithm.ML_DSA_44, SignatureAlgorithm.P256}
    counter = m.parse_payment(p1).counter
    assert m.parse_payment(p2).counter == counter

    assert world.sync(bob, T1 + 100).refused == []
    assert world.sync(carol, T1 + 200).refused == []  # both payees are paid
    assert world.ledger.wallet_status(alice.wid) == "revoked"
    [(held_counter, held)] = world.ledger.evidence(alice.wid)
    assert held_counter == counter and sorted(held) == sorted([p1, p2])
    [anomaly] = [a for a in world.ledger.anomalies(alice.wid) if a.kind == "double-spend"]
    assert anomaly.amount == 1_000
    assert_books(world, {alice.account: ACCOUNT - 5_000})
    assert (bob.status(T1).balance, carol.status(T1).balance) == (1_000, 1_000)
    assert world.ledger.audit().banks["Bank A"].losses == 1_000
    # both certificates are revoked: a payee with the current CRLs refuses either key
    dave = _new_party_se(world, tmp_path / "dave", T1 + 300)
    dave.install_crls(list(world.ledger.trust_material(None, T1 + 300).crls), T1 + 300)
    dave_id = dave.status(T1 + 300).wallet_id
    assert dave_id is not None
    for payer in (alice.se, evil):
        with pytest.raises(VerificationError) as refused:
            dave.receive(payer.pay_to(dave_id, 100, T1 + 310), T1 + 311)
        assert refused.value.rejection is Rejection.REVOKED
