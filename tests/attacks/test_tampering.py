"""Tampering with signed bytes: a payment's amount, payee, currency, counter or time, or the
payer certificate in its header; an upload's entries or report. The COSE signature covers the
whole payload and the protected header, so the addressee refuses every altered payment offline
(``BAD_SIGNATURE``) and the genuine one stays acceptable once. At settlement a terminal's altered
payment is refused and recorded as a counterfeit; an altered upload does not chain to the digest
the SE signed (``IncompleteLog``, nothing written); a log entry whose amount disagrees with its
signed message makes the wallet unreconciled and revoked."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from attackkit import ACCOUNT, RogueSE, assert_books, party, se_balance, sealed_wallet
from ledgerkit import World

from offcash.domain.ids import WalletId
from offcash.errors import Rejection, VerificationError
from offcash.ledger.errors import IncompleteLog
from offcash.protocol import messages as m
from offcash.se import log

from factories import payload_map, protected_map, with_payload, with_protected
from harness import T0, PilotNetwork

X5CHAIN = 33
Tamper = Callable[[bytes, WalletId, bytes], bytes]  # (payment, other wallet id, other cert)


def _field(key: int, value: Callable[[Any, WalletId], Any]) -> Tamper:
    def tamper(payment: bytes, other: WalletId, _cert: bytes) -> bytes:
        fields = payload_map(payment)
        fields[key] = value(fields[key], other)
        return with_payload(payment, fields)

    return tamper


def _payer_certificate(payment: bytes, _other: WalletId, cert: bytes) -> bytes:
    header = protected_map(payment)
    header[X5CHAIN] = cert  # claim another wallet signed it
    return with_protected(payment, header)


TAMPERS: dict[str, Tamper] = {
    "amount": _field(2, lambda v, _: v * 9),
    "payee": _field(1, lambda _, other: other.raw),
    "currency": _field(3, lambda _v, _: "USD"),
    "counter": _field(4, lambda v, _: v + 7),
    "time": _field(5, lambda v, _: v + 60),
    "payer_certificate": _payer_certificate,
}


def _addressee(payment: bytes) -> WalletId:
    return m.parse_payment(payment).payee


@pytest.mark.parametrize("what", list(TAMPERS))
def test_tampered_payment_refused_offline(network: PilotNetwork, what: str) -> None:
    alice, bob, mallory = network.wallet(5_000), network.wallet(), network.wallet(10)
    bob_id, mallory_id = bob.status(T0).wallet_id, mallory.status(T0).wallet_id
    assert bob_id is not None and mallory_id is not None
    mallory_cert = m.parse_payment(mallory.pay_to(bob_id, 1, T0)).envelope.certificate_der
    for genuine in (
        alice.pay(bob.request(1_000, T0), T0),
        alice.pay_to(bob_id, 1_000, T0),
    ):
        tampered = TAMPERS[what](genuine, mallory_id, mallory_cert)
        assert tampered != genuine
        target = mallory if _addressee(tampered) == mallory_id else bob
        before = target.status(T0)
        with pytest.raises(VerificationError) as info:
            target.receive(tampered, T0 + 1)
        assert info.value.rejection is Rejection.BAD_SIGNATURE
        assert target.status(T0) == before
        assert bob.receive(genuine, T0 + 2).duplicate is False  # the original is still good
    assert bob.status(T0).balance == 2_000 and mallory.status(T0).balance == 9


def test_tampered_payments_refused_and_recorded_at_settlement(world: World) -> None:
    alice = party(world, 5_000, "Bank A")
    shop, other = world.account("Bank B", 0), world.account("Bank B", 0)
    term, mallory_term = (world.ledger.register_terminal(a) for a in (shop, other))
    genuine = alice.se.pay_to(term, 1_000, T0 + 1)
    carol = party(world, 10, "Bank A")
    carol_cert = m.parse_payment(carol.se.pay_to(term, 1, T0)).envelope.certificate_der
    tampered = {what: t(genuine, mallory_term, carol_cert) for what, t in TAMPERS.items()}
    for what, data in tampered.items():
        target = mallory_term if what == "payee" else term
        res = world.ledger.redeem(target, [data], T0 + 10)
        assert (res.settled, [r.reason for r in res.refused]) == (0, ["BAD_SIGNATURE"]), what
    recorded = [a.evidence for a in world.ledger.anomalies() if a.kind == "counterfeit"]
    assert sorted(recorded) == sorted(tampered.values())
    res = world.ledger.redeem(term, [genuine], T0 + 20)
    assert (res.settled, res.amount, res.refused) == (1, 1_000, [])
    assert_books(world, {shop: 1_000, other: 0})


def test_tampered_upload_is_refused_whole(world: World) -> None:
    alice, bob = party(world, 5_000, "Bank A"), party(world, 0, "Bank B")
    bob.se.receive(alice.se.pay_to(bob.wid, 1_000, T0 + 1), T0 + 2)
    upload = bob.se.sync_upload(T0 + 10)
    [entry] = upload.entries
    inflated = log.Entry(entry.type, entry.time, 9_000, entry.message)
    other = alice.se.pay_to(bob.wid, 9_000 // 9, T0 + 3)  # a real payment swapped in
    swapped = log.Entry(entry.type, entry.time, entry.amount, other)
    before = world.ledger.audit()
    for entries in ([inflated], [swapped], [entry, entry], []):
        with pytest.raises(IncompleteLog):
            world.ledger.sync(upload.report, [e.encode() for e in entries], bob.se.csr(), T0 + 10)
    report = payload_map(upload.report)
    report[3] = 9_000  # the reported balance
    with pytest.raises(VerificationError) as info:
        world.ledger.sync(
            with_payload(upload.report, report), [entry.encode()], bob.se.csr(), T0 + 10
        )
    assert info.value.rejection is Rejection.BAD_SIGNATURE
    assert world.ledger.audit() == before  # nothing was written
    assert world.sync(bob.se, T0 + 20).settled == 1  # the genuine upload still settles
    audit = assert_books(world, {bob.account: ACCOUNT})
    assert audit.banks["Bank B"].float == se_balance(bob) == 1_000


def test_log_entry_amount_inflated_by_a_broken_payee_is_unreconciled(
    world: World, tmp_path: Path
) -> None:
    """A broken payee SE logs (and reports) more than the signed payment it received."""
    alice = party(world, 5_000, "Bank A")
    mallory = sealed_wallet(world, tmp_path / "mallory", 0, "Bank B")
    broken = RogueSE.extract(mallory)
    broken.accept(alice.se.pay_to(mallory.wid, 1_000, T0 + 1), T0 + 2, amount=9_000)
    res = broken.sync(world, T0 + 10)
    assert res.ack is None and world.ledger.wallet_status(mallory.wid) == "revoked"
    assert [a.kind for a in world.ledger.anomalies(mallory.wid)] == ["reconcile"]
    assert any("amount differs" in a for a in res.anomalies)
    audit = assert_books(world, {mallory.account: ACCOUNT})
    assert audit.banks["Bank B"].float == 1_000  # only the signed amount was settled
    assert audit.banks["Bank A"].float == se_balance(alice) == 4_000
