"""The pure reconciliation of a sync (``offcash.ledger.reconcile``), without a database: a log
and the ledger's view in; spends, refusals, charge-backs, anomalies, problems and the loss out.

The logs are built here by hand (entries, and what checking each message gave), so each rule is
shown on the smallest log that exercises it; the expected results are worked out in the tests,
not by the code under test."""

from __future__ import annotations

import pytest

from offcash.domain.ids import WalletId
from offcash.domain.limits import DEFAULT_LIMITS
from offcash.errors import Rejection, VerificationError
from offcash.ledger.reconcile import Checked, Refusal, View, reconcile, settled_prefix
from offcash.ledger.settle import Spend
from offcash.ledger.states import Source
from offcash.protocol import messages as m
from offcash.se import log

from harness import T0, PilotNetwork

ME = b"\x01" * 12
OTHER = b"\x02" * 12


def spend(payer: bytes, counter: int, amount: int, payee: bytes | None = None) -> Spend:
    kind = "unload" if payee is None else "payment"
    message = b"msg:%b:%d:%d" % (payer, counter, amount)
    return Spend(payer, counter, m.digest(message), kind, payee, amount, T0, "Bank A", message)


def entry(kind: log.EntryType, sp: Spend) -> log.Entry:
    return log.Entry(kind, T0 + sp.counter, sp.amount, sp.message)


def view(**kw: object) -> View:
    values: dict[str, object] = {
        "wallet": ME,
        "seq": 1,
        "base_head": log.GENESIS,
        "base_balance": 1_000,
        "base_counter": 0,
        "limits": DEFAULT_LIMITS,
    }
    values.update(kw)
    return View(**values)  # type: ignore[arg-type]


def run(v: View, log_: list[tuple[log.Entry, Checked]], balance: int, counter: int):  # type: ignore[no-untyped-def]
    entries = [e for e, _ in log_]
    checked = {i: c for i, (_, c) in enumerate(log_)}
    return reconcile(v, entries, checked, balance=balance, counter=counter)


def test_an_honest_log_settles_its_spends_with_no_problem() -> None:
    pay = spend(ME, 1, 300, OTHER)
    got = spend(OTHER, 7, 200, ME)
    out = spend(ME, 2, 400)
    rec = run(
        view(),
        [
            (entry(log.EntryType.SENT, pay), pay),
            (entry(log.EntryType.RECEIVED, got), got),
            (entry(log.EntryType.UNLOADED, out), out),
        ],
        balance=1_000 - 300 + 200 - 400,
        counter=2,
    )
    assert rec.spends == [(pay, Source.SENT), (got, Source.RECEIVED), (out, Source.UNLOAD)]
    assert (rec.problems, rec.refused, rec.loss, rec.chargeback) == ([], [], 0, 0)
    assert rec.receipts == [(OTHER, 7)] and not rec.revoke


def test_an_unload_beyond_the_running_balance_is_refused_and_is_not_a_loss() -> None:
    # a broken SE funded with 1,000 whose balance was edited: it unloads 1,000,000
    out = spend(ME, 1, 1_000_000)
    rec = run(view(), [(entry(log.EntryType.UNLOADED, out), out)], balance=0, counter=1)
    assert rec.spends == [(out, Source.REFUSED_UNLOAD)]
    assert rec.refused == [Refusal(m.digest(out.message), "OVERDRAWN")]
    assert rec.loss == 0 and rec.revoke  # nothing paid, so nothing lost; the wallet revoked


def test_an_unload_within_the_running_balance_is_paid_even_if_a_later_payment_overspends() -> None:
    out = spend(ME, 1, 1_000)
    pay = spend(ME, 2, 500, OTHER)
    rec = run(
        view(),
        [(entry(log.EntryType.UNLOADED, out), out), (entry(log.EntryType.SENT, pay), pay)],
        balance=0,  # what the broken SE claims: the log gives -500
        counter=2,
    )
    assert rec.spends == [(out, Source.UNLOAD), (pay, Source.SENT)]
    assert rec.loss == 500 and rec.revoke  # the honest payee is paid; the bank bears it


def test_a_received_payment_refused_is_charged_back_once_per_sync() -> None:
    bad = b"a counterfeit payment"
    e = log.Entry(log.EntryType.RECEIVED, T0, 250, bad)
    err = VerificationError(Rejection.BAD_SIGNATURE)
    first = run(view(), [(e, err)], balance=1_000 + 250, counter=0)
    assert first.chargeback == 250 and [a.kind for a in first.anomalies] == ["counterfeit"]
    assert first.refused == [Refusal(m.digest(bad), "BAD_SIGNATURE")]
    # the same sync again (its answer was lost, or the upload replayed): the settled head is
    # the chain through this entry, so its charge-back and anomaly are not booked again
    again = run(view(settled_head=log.chain(log.GENESIS, e)), [(e, err)], 1_250, 0)
    assert (again.chargeback, again.anomalies, again.settled_before) == (0, [], 1)
    assert again.refused == first.refused  # the same answer
    # ... with one more entry logged since: only that one is new
    e2 = log.Entry(log.EntryType.RECEIVED, T0 + 1, 100, b"another counterfeit")
    more = run(view(settled_head=log.chain(log.GENESIS, e)), [(e, err), (e2, err)], 1_350, 0)
    assert (more.chargeback, len(more.anomalies), more.settled_before) == (100, 1, 1)


def test_a_payment_from_a_payer_the_payee_knew_revoked_is_refused_and_charged_back() -> None:
    got = spend(OTHER, 3, 400, ME)
    e = entry(log.EntryType.RECEIVED, got)
    rec = run(view(revoked_known={OTHER: e.time}), [(e, got)], balance=1_400, counter=0)
    assert rec.spends == [] and rec.chargeback == 400
    assert rec.refused == [Refusal(m.digest(got.message), "REVOKED")] and not rec.revoke


def test_a_payment_listed_in_an_earlier_sync_is_a_problem() -> None:
    got = spend(OTHER, 3, 400, ME)
    e = entry(log.EntryType.RECEIVED, got)
    assert run(view(listed={(OTHER, 3): 1}), [(e, got)], 1_400, 0).problems == []  # same sync
    rec = run(view(seq=2, listed={(OTHER, 3): 1}), [(e, got)], 1_000, 0)
    assert rec.spends == [] and rec.revoke


def test_a_forked_log_for_a_settled_sync_is_a_problem() -> None:
    a, b = spend(ME, 1, 10, OTHER), spend(ME, 1, 20, OTHER)
    settled = log.chain(log.GENESIS, entry(log.EntryType.SENT, a))
    rec = run(view(settled_head=settled), [(entry(log.EntryType.SENT, b), b)], 980, 1)
    assert rec.problems[0][0] == "sync 1 was settled before with another log"


def test_settled_prefix() -> None:
    es = [log.Entry(log.EntryType.RECEIVED, T0 + i, 1, bytes([i])) for i in range(3)]
    heads = [log.chain_all(log.GENESIS, es[:n]) for n in range(4)]
    assert [settled_prefix(log.GENESIS, es, h) for h in heads] == [0, 1, 2, 3]
    assert settled_prefix(log.GENESIS, es, None) == 0
    assert settled_prefix(log.GENESIS, es, b"\x09" * 32) is None


@pytest.fixture(scope="module")
def net() -> PilotNetwork:
    return PilotNetwork.create()


def test_vouchers_applied_once_and_unknown_ones_are_problems(net: PilotNetwork) -> None:
    from offcash.ledger.reconcile import VoucherView

    wid = WalletId(ME)
    data = net.bank().voucher(wid, 500, "EUR", T0, b"\x07" * 16)
    v = m.parse_voucher(data)
    e = log.Entry(log.EntryType.LOADED, T0, 500, data)
    issued = {v.voucher_id: VoucherView(500, None, False, False)}
    rec = run(view(vouchers=issued), [(e, v)], 1_500, 0)
    assert rec.applied == [(v.voucher_id, T0)] and not rec.revoke
    twice = run(view(vouchers=issued), [(e, v), (e, v)], 2_000, 0)
    assert twice.revoke  # the second application is not counted: the balance is off too
    unknown = run(view(), [(e, v)], 1_500, 0)
    assert [a.kind for a in unknown.anomalies] == ["unknown-voucher"] and unknown.revoke


def test_an_unload_is_bounded_by_its_signed_amount_not_the_logs_claim() -> None:
    out = spend(ME, 1, 5_000)  # the signed request: 5,000
    e = log.Entry(log.EntryType.UNLOADED, T0, 100, out.message)  # the log claims 100
    rec = run(view(), [(e, out)], balance=900, counter=1)
    assert rec.spends == [(out, Source.REFUSED_UNLOAD)] and rec.revoke
