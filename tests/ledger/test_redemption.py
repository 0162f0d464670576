"""A terminal's redemption: counterfeits are recorded as anomalies (as from a payee SE's sync),
refusals keep their reasons, and the process pool (verification pipelined with the database
writes) settles exactly what the inline path settles, once."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from ledgerkit import World, clone

from offcash.domain.network import NetworkParams
from offcash.issuance import CentralBank
from offcash.protocol.messages import parse_payment

from harness import T0, PilotNetwork


def test_counterfeit_redeemed_by_a_terminal_is_an_anomaly(world: World) -> None:
    rogue = PilotNetwork.create()  # forged CAs with the real names ("Bank A")
    shop = world.account("Bank B", 0)
    term = world.ledger.register_terminal(shop)
    forged = rogue.wallet(5_000).pay_to(term, 100, T0 + 1)
    res = world.ledger.redeem(term, [forged], T0 + 2)
    assert res.settled == 0 and [r.reason for r in res.refused] == ["BAD_CERTIFICATE_SIGNATURE"]
    [a] = world.ledger.anomalies(term)
    assert (a.kind, a.wallet, a.bank, a.amount, a.evidence) == (
        "counterfeit",
        term,
        "Bank B",
        100,
        forged,
    )
    assert world.ledger.balance(shop) == 0
    audit = world.ledger.audit()
    assert audit.balanced and audit.banks["Bank B"].losses == 0


def test_payment_chained_to_an_unknown_ca_is_an_anomaly(world: World) -> None:
    cb = CentralBank.create("Rogue Central Bank", world.net.params.algorithm, T0 - 86400)
    rogue = PilotNetwork(world.net.params, cb, [cb.certify_bank("Bank Z", T0 - 86400)])
    term = world.ledger.register_terminal(world.account("Bank A", 0))
    forged = rogue.wallet(2_000, "Bank Z").pay_to(term, 250, T0 + 1)
    res = world.ledger.redeem(term, [forged, b"\xa0"], T0 + 2)
    assert [r.reason for r in res.refused] == ["UNKNOWN_ISSUER", "DECODE"]
    assert [(a.kind, a.amount) for a in world.ledger.anomalies()] == [("counterfeit", 250)]


def test_wrong_network_is_refused_but_not_a_counterfeit(world: World) -> None:
    usd = PilotNetwork(
        NetworkParams("USD", world.net.params.algorithm), world.net.central_bank, world.net.banks
    )
    term = world.ledger.register_terminal(world.account("Bank A", 0))
    res = world.ledger.redeem(term, [usd.wallet(1_000).pay_to(term, 10, T0 + 1)], T0 + 2)
    assert [r.reason for r in res.refused] == ["CURRENCY_MISMATCH"]
    assert world.ledger.anomalies() == []


def test_pool_settles_exactly_like_the_inline_path(world: World, tmp_path: Path) -> None:
    ledger = world.ledger
    ledger.workers, ledger.batch = 2, 8  # every upload of 8+ payments goes through the pool
    alice, a_id, _ = world.wallet(5_000, "Bank A", sealed=tmp_path / "alice.se")
    evil = clone(tmp_path / "alice.se", tmp_path / "evil.se")
    dave, d_id, _ = world.wallet(5_000, "Bank B")
    shop = world.account("Bank B", 0)
    term = ledger.register_terminal(shop)
    other = ledger.register_terminal(world.account("Bank B", 0))
    ledger.report_lost(d_id, T0 + 40)
    ledger.trust_material(term, T0 + 50)  # the terminal holds the CRL revoking dave from T0+50
    ok = [alice.pay_to(term, 10 + i, T0 + 1 + i) for i in range(20)]
    twin = evil.pay_to(term, 999, T0 + 30)  # the clone spends alice's first counter again
    assert parse_payment(twin).counter == parse_payment(ok[0]).counter
    early = dave.pay_to(term, 70, T0 + 45)  # before the terminal held the CRL: paid
    late = dave.pay_to(term, 80, T0 + 55)  # after: refused
    forged = PilotNetwork.create().wallet(1_000).pay_to(term, 5, T0 + 1)
    wrong = alice.pay_to(other, 7, T0 + 60)
    stream = [*ok[:10], b"garbage", forged, ok[3], *ok[10:], twin, early, late, wrong]

    res = ledger.redeem(term, iter(stream), T0 + 100)
    assert multiprocessing.active_children()  # the pool did the verifying
    assert (res.settled, res.duplicates) == (22, 1)
    assert res.amount == sum(10 + i for i in range(20)) + 999 + 70
    reasons = ["DECODE", "BAD_CERTIFICATE_SIGNATURE", "REVOKED", "WRONG_PAYEE"]
    assert [r.reason for r in res.refused] == reasons
    assert ledger.balance(shop) == res.amount
    assert [a.kind for a in ledger.anomalies(term)] == ["counterfeit"]
    assert [a.kind for a in ledger.anomalies(a_id)] == ["double-spend"]
    assert ledger.wallet_status(a_id) == "revoked"
    [(_, messages)] = ledger.evidence(a_id)
    assert sorted(messages) == sorted([ok[0], twin])

    ledger.workers = 0  # the same upload again, verified inline: nothing settles twice
    again = ledger.redeem(term, iter(stream), T0 + 200)
    assert (again.settled, again.amount, again.duplicates) == (0, 0, 23)
    assert [r.reason for r in again.refused] == reasons
    assert ledger.balance(shop) == res.amount
    audit = ledger.audit()
    assert audit.balanced and audit.banks["Bank A"].losses == 999
