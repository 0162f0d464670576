"""Forged wallet certificates: self-signed, from a bank the root never certified, from a rogue
bank using a real bank's name, expired, not yet valid. A payee's SE refuses each offline with
the rule it breaks; presented at settlement (a terminal redeeming it, or a colluding payee whose
broken SE accepted it), each is refused with the same reason, recorded with the message as
evidence, and charged to whoever accepted it; no float moves. Revoked certificates are in
test_revocation.py."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from attackkit import (
    ACCOUNT,
    DAY,
    RogueSE,
    assert_books,
    forged_payment,
    network_key,
    party,
    se_balance,
    sealed_wallet,
    self_signed_certificate,
)
from ledgerkit import World

from offcash.crypto import pki
from offcash.crypto.algorithms import PrivateKey
from offcash.domain.ids import WalletId
from offcash.domain.limits import DEFAULT_LIMITS
from offcash.errors import Rejection, VerificationError
from offcash.issuance import CentralBank
from offcash.protocol import messages as m

from harness import T0, PilotNetwork

Forger = Callable[[PilotNetwork], tuple[PrivateKey, bytes]]


def self_signed(net: PilotNetwork) -> tuple[PrivateKey, bytes]:
    key = network_key(net)
    return key, self_signed_certificate(key, WalletId.random())


def _rogue_bank(net: PilotNetwork, name: str) -> tuple[PrivateKey, bytes]:
    rogue = CentralBank.create("Rogue Central Bank", net.params.algorithm, T0 - DAY)
    bank = rogue.certify_bank(name, T0 - DAY)
    key = network_key(net)
    return key, bank.certify_wallet(pki.make_csr(key), WalletId.random(), DEFAULT_LIMITS, 0, T0)


def uncertified_bank(net: PilotNetwork) -> tuple[PrivateKey, bytes]:
    return _rogue_bank(net, "Bank Z")


def impersonated_bank(net: PilotNetwork) -> tuple[PrivateKey, bytes]:
    return _rogue_bank(net, "Bank A")  # same name as a real bank, another key


def _real_bank(net: PilotNetwork, issued: int, days: int) -> tuple[PrivateKey, bytes]:
    key = network_key(net)
    cert = net.bank("Bank A").certify_wallet(
        pki.make_csr(key), WalletId.random(), DEFAULT_LIMITS, 0, issued, dt.timedelta(days=days)
    )
    return key, cert


def expired(net: PilotNetwork) -> tuple[PrivateKey, bytes]:
    return _real_bank(net, T0 - 3 * DAY, 1)  # a genuine certificate that ended two days ago


def not_yet_valid(net: PilotNetwork) -> tuple[PrivateKey, bytes]:
    return _real_bank(net, T0 + DAY, 7)  # a genuine certificate that starts tomorrow


FORGERIES: list[tuple[Forger, Rejection, bool]] = [  # forger, rejection, counterfeit?
    (self_signed, Rejection.UNKNOWN_ISSUER, True),
    (uncertified_bank, Rejection.UNKNOWN_ISSUER, True),
    (impersonated_bank, Rejection.BAD_CERTIFICATE_SIGNATURE, True),
    (expired, Rejection.CERT_EXPIRED, False),
    (not_yet_valid, Rejection.CERT_NOT_YET_VALID, False),
]
IDS = [f.__name__ for f, _, _ in FORGERIES]


@pytest.mark.parametrize(("forge", "rejection", "counterfeit"), FORGERIES, ids=IDS)
def test_forged_certificate_refused_offline(
    network: PilotNetwork, forge: Forger, rejection: Rejection, counterfeit: bool
) -> None:
    bob = network.wallet()
    bob_id = bob.status(T0).wallet_id
    assert bob_id is not None
    key, cert = forge(network)
    one_way = forged_payment(key, cert, bob_id, 1_000, T0)
    request = m.parse_request(bob.request(1_000, T0))
    answer = m.sign_payment(
        key,
        cert,
        payee=bob_id,
        amount=1_000,
        currency="EUR",
        counter=2,
        time=T0,
        nonce=request.nonce,
        reference=None,
    )
    for data in (one_way, answer):
        with pytest.raises(VerificationError) as info:
            bob.receive(data, T0 + 1)
        assert info.value.rejection is rejection
    status = bob.status(T0)
    assert (status.balance, status.log_entries) == (0, 0)


@pytest.mark.parametrize(("forge", "rejection", "counterfeit"), FORGERIES, ids=IDS)
def test_forged_certificate_presented_at_settlement_is_refused_and_recorded(
    world: World, tmp_path: Path, forge: Forger, rejection: Rejection, counterfeit: bool
) -> None:
    """Redeemed by a terminal, and accepted by a colluding payee whose SE accepts anything.
    Settlement refuses both with the rule broken and records them with the message as evidence
    (as a counterfeit when no bank of the network issued the certificate). What the broken SE
    credited is taken back out of its owner's account, so the float keeps matching real money,
    and the payee is revoked: an honest SE never accepts what fails verification, so its log
    does not reconcile."""
    key, cert = forge(world.net)
    shop = world.account("Bank B", 0)
    term = world.ledger.register_terminal(shop)
    to_term = forged_payment(key, cert, term, 1_000, T0 + 10)
    red = world.ledger.redeem(term, [to_term], T0 + 20)
    assert (red.settled, red.amount, [r.reason for r in red.refused]) == (0, 0, [rejection.name])
    recorded = [(a.kind, a.amount, a.evidence) for a in world.ledger.anomalies(term)]
    assert recorded == ([("counterfeit", 1_000, to_term)] if counterfeit else [])

    mallory = sealed_wallet(world, tmp_path / "mallory", 0, "Bank B")
    broken = RogueSE.extract(mallory)
    payment = forged_payment(key, cert, mallory.wid, 1_000, T0 + 10, counter=2)
    broken.accept(payment, T0 + 11)
    res = broken.sync(world, T0 + 20)
    assert res.settled == 0
    assert [(r.reason, r.digest) for r in res.refused] == [(rejection.name, m.digest(payment))]
    assert res.ack is None and world.ledger.wallet_status(mallory.wid) == "revoked"
    anomaly, reconcile = world.ledger.anomalies(mallory.wid)
    assert anomaly.kind == ("counterfeit" if counterfeit else "refused-payment")
    assert (anomaly.amount, anomaly.evidence) == (1_000, payment)
    assert reconcile.kind == "reconcile"
    audit = assert_books(world, {shop: 0, mallory.account: ACCOUNT - 1_000})  # charged back
    assert audit.banks["Bank B"].float == 1_000 == broken.balance  # backed by mallory's money
    assert audit.banks["Bank A"].float == 0


def test_forger_cannot_sync(world: World) -> None:
    """A self-signed wallet's sync report is refused before anything is read."""
    key = network_key(world.net)
    cert = self_signed_certificate(key, WalletId.random())
    report = m.sign_report(
        key,
        cert,
        sync_seq=0,
        counter=0,
        balance=1_000_000,
        currency="EUR",
        entries=0,
        log_digest=bytes(32),
        time=T0,
    )
    before = world.ledger.audit()
    with pytest.raises(VerificationError) as info:
        world.ledger.sync(report, [], pki.make_csr(key), T0)
    assert info.value.rejection is Rejection.UNKNOWN_ISSUER
    assert world.ledger.audit() == before


def test_honest_payee_keeps_only_genuine_money(world: World) -> None:
    """A payee offered a forgery and then a genuine payment holds exactly the genuine one."""
    alice, bob = party(world, 5_000, "Bank A"), party(world, 0, "Bank B")
    key, cert = impersonated_bank(world.net)
    with pytest.raises(VerificationError):
        bob.se.receive(forged_payment(key, cert, bob.wid, 1_000, T0 + 1), T0 + 2)
    bob.se.receive(alice.se.pay_to(bob.wid, 1_000, T0 + 3), T0 + 4)
    res = world.sync(bob.se, T0 + 10)
    assert (res.settled, res.refused) == (1, [])
    audit = assert_books(world, {bob.account: ACCOUNT})
    assert audit.banks["Bank B"].float == se_balance(bob) == 1_000
