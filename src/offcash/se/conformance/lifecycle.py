"""Conformance checks across operations: argument checks, the counter, each limit, expiry,
revocation by CRL (the contract: docs/SE-CONFORMANCE.md).

Theory of operation: like ``offcash.se.conformance.operations``, each check makes its own SEs
on the bench; these drive an SE to the edge of a rule (a limit, the certificate's expiry, a CRL
that lists it) and require the typed refusal the contract names, with nothing changed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from offcash.domain.ids import WalletId
from offcash.domain.limits import DEFAULT_LIMITS, Limits
from offcash.errors import Limit, LimitExceeded, SecureElementError, SecureElementRevoked
from offcash.protocol import messages as m
from offcash.se.conformance.bench import T0, Bench
from offcash.se.conformance.expect import check, expect, persisted, refused

#: The limits of the limit checks: small enough to reach in a few operations.
LIMITS = Limits(
    max_balance=12_000,
    max_payment=2_000,
    max_offline_payments=3,
    max_offline_value=5_000,
    max_offline_seconds=3600,
)


@check("arguments")
def check_bad_arguments_are_type_and_value_errors_that_change_nothing(b: Bench) -> None:
    """every operation: an argument of the wrong type is a TypeError (bool is not an int, text
    is not a WalletId or bytes), one out of range a ValueError (amount not positive, time
    outside 0..2**40, reference over 140 or payee name over 64 characters, nonce not 16
    bytes, negative counter); the state, status and status after a restart are unchanged."""
    h, payee = b.enrolled(5_000), b.enrolled()
    wid = payee.wid
    request = payee.se.request(100, T0)
    payment = b.enrolled(1_000).se.pay_to(h.wid, 100, T0)
    voucher = b.ledger.fund(h.wid, 100, T0)
    se: Any = h.se  # the wrong types are the point
    bad: list[tuple[str, Callable[[], object], type[Exception]]] = [
        ("status('0')", lambda: se.status(str(T0)), TypeError),
        ("status(-1)", lambda: se.status(-1), ValueError),
        ("status(2**41)", lambda: se.status(2**41), ValueError),
        ("request(True)", lambda: se.request(True, T0), TypeError),
        ("request(1.5)", lambda: se.request(1.5, T0), TypeError),
        ("request(0)", lambda: se.request(0, T0), ValueError),
        ("request(-5)", lambda: se.request(-5, T0), ValueError),
        ("request(now=None)", lambda: se.request(100, None), TypeError),
        ("request(reference=5)", lambda: se.request(100, T0, 5), TypeError),
        ("request(long reference)", lambda: se.request(100, T0, "x" * 141), ValueError),
        ("request(payee_name=b'')", lambda: se.request(100, T0, None, b"x"), TypeError),
        ("request(long name)", lambda: se.request(100, T0, None, "x" * 65), ValueError),
        ("request(nonce='x')", lambda: se.request(100, T0, None, None, "x" * 16), TypeError),
        ("request(short nonce)", lambda: se.request(100, T0, None, None, b"x" * 3), ValueError),
        ("pay(str)", lambda: se.pay(request.hex(), T0), TypeError),
        ("pay(now=1.0)", lambda: se.pay(request, 1.0), TypeError),
        ("pay(now=-1)", lambda: se.pay(request, -1), ValueError),
        ("pay_to(str payee)", lambda: se.pay_to(str(wid), 100, T0), TypeError),
        ("pay_to(bytes payee)", lambda: se.pay_to(wid.raw, 100, T0), TypeError),
        ("pay_to(100.0)", lambda: se.pay_to(wid, 100.0, T0), TypeError),
        ("pay_to(False)", lambda: se.pay_to(wid, False, T0), TypeError),
        ("pay_to(0)", lambda: se.pay_to(wid, 0, T0), ValueError),
        ("pay_to(2**64)", lambda: se.pay_to(wid, 2**64, T0), ValueError),
        ("pay_to(now=2**41)", lambda: se.pay_to(wid, 100, 2**41), ValueError),
        ("pay_to(long reference)", lambda: se.pay_to(wid, 100, T0, "x" * 141), ValueError),
        ("sent_payment('1')", lambda: se.sent_payment("1"), TypeError),
        ("sent_payment(-1)", lambda: se.sent_payment(-1), ValueError),
        ("open_sealed(str)", lambda: se.open_sealed("x"), TypeError),
        ("receive(str)", lambda: se.receive(payment.hex(), T0), TypeError),
        ("receive(now=-1)", lambda: se.receive(payment, -1), ValueError),
        ("load(str)", lambda: se.load(voucher.hex(), T0), TypeError),
        ("load(now=-1)", lambda: se.load(voucher, -1), ValueError),
        ("unload('100')", lambda: se.unload("100", T0), TypeError),
        ("unload(0)", lambda: se.unload(0, T0), ValueError),
        ("unload(now=2**41)", lambda: se.unload(100, 2**41), ValueError),
        ("sync_upload('0')", lambda: se.sync_upload("0"), TypeError),
        ("sync_upload(-1)", lambda: se.sync_upload(-1), ValueError),
        ("install_crls(bytes)", lambda: se.install_crls(b"x", T0), TypeError),
        ("install_crls([str])", lambda: se.install_crls(["x"], T0), TypeError),
        ("install_crls(now=-1)", lambda: se.install_crls([], -1), ValueError),
        ("apply_sync(str ack)", lambda: se.apply_sync("a", b"", [], [], T0), TypeError),
        ("apply_sync(now=-1)", lambda: se.apply_sync(b"a", b"", [], [], -1), ValueError),
    ]
    for what, call, error in bad:
        refused(b, h, call, error, what=what)
    fresh: Any = b.new().se
    unenrolled: list[tuple[str, Callable[[], object], type[Exception]]] = [
        ("enroll(str)", lambda: fresh.enroll("c", [], [], T0), TypeError),
        ("enroll(bank str)", lambda: fresh.enroll(b"c", ["b"], [], T0), TypeError),
        ("enroll(crls bytes)", lambda: fresh.enroll(b"c", [], b"", T0), TypeError),
        ("enroll(now=-1)", lambda: fresh.enroll(b"c", [], [], -1), ValueError),
    ]
    for what, call, error in unenrolled:
        before = fresh.status(T0)
        try:
            call()
        except error:
            expect(fresh.status(T0) == before, f"{what} was refused but changed the status")
        except Exception as exc:
            expect(False, f"{what}: expected {error.__name__}, got {exc!r}")
        else:
            expect(False, f"{what}: expected {error.__name__}, it succeeded")


@check("counter")
def check_the_counter_rises_by_one_per_debit_across_restarts(b: Bench) -> None:
    """pay, pay_to, unload: each debit signs the next counter (1, 2, 3...), persisted: after a
    restart and after a sync the next debit goes on from the last, never back."""
    payer, payee = b.enrolled(5_000), b.enrolled()
    counters = [m.parse_payment(payer.se.pay_to(payee.wid, 10, T0 + 1)).counter]
    counters.append(m.parse_payment(payer.se.pay(payee.se.request(10, T0), T0 + 2)).counter)
    counters.append(m.parse_unload(payer.se.unload(10, T0 + 3)).counter)
    b.reopen(payer)
    counters.append(m.parse_payment(payer.se.pay_to(payee.wid, 10, T0 + 4)).counter)
    b.sync(payer, T0 + 5)
    counters.append(m.parse_payment(payer.se.pay_to(payee.wid, 10, T0 + 6)).counter)
    expect(counters == [1, 2, 3, 4, 5], f"counters {counters}, expected 1..5")
    expect(payer.se.status(T0 + 6).counter == 5, "status does not show the last counter")


def _limited(b: Bench, balance: int = 10_000) -> tuple[Any, WalletId]:
    h = b.enrolled(balance, limits=LIMITS)
    return h, b.enrolled(0, "Bank B").wid


@check("limits")
def check_each_limit_is_enforced_with_nothing_changed(b: Bench) -> None:
    """pay, pay_to, unload, load, receive, request: each limit of the certificate refuses with
    LimitExceeded naming it (MAX_PAYMENT, MAX_OFFLINE_VALUE, MAX_OFFLINE_PAYMENTS,
    MAX_OFFLINE_SECONDS, MAX_BALANCE), changing nothing; up to the limit is allowed."""
    h, payee = _limited(b)
    refused(b, h, lambda: h.se.pay_to(payee, 2_001, T0), LimitExceeded, limit=Limit.MAX_PAYMENT)
    h.se.pay_to(payee, 2_000, T0)
    h.se.pay_to(payee, 2_000, T0)
    refused(
        b, h, lambda: h.se.pay_to(payee, 1_001, T0), LimitExceeded, limit=Limit.MAX_OFFLINE_VALUE
    )
    h.se.pay_to(payee, 1_000, T0)  # the third payment, 5,000 sent: both at their bound
    h2, payee2 = _limited(b)
    for _ in range(2):
        h2.se.pay_to(payee2, 10, T0)
    h2.se.unload(10, T0)  # an unload is a debit: it counts
    refused(
        b,
        h2,
        lambda: h2.se.pay_to(payee2, 10, T0),
        LimitExceeded,
        limit=Limit.MAX_OFFLINE_PAYMENTS,
    )
    h3, payee3 = _limited(b)
    late = T0 + LIMITS.max_offline_seconds + 600
    for what, call in (
        ("pay_to", lambda: h3.se.pay_to(payee3, 10, late)),
        ("unload", lambda: h3.se.unload(10, late)),
    ):
        refused(b, h3, call, LimitExceeded, limit=Limit.MAX_OFFLINE_SECONDS, what=what)
    full, _ = _limited(b, 10_000)
    top = b.banks["Bank A"].voucher(full.wid, 2_001, "EUR", T0)
    refused(b, full, lambda: full.se.load(top, T0), LimitExceeded, limit=Limit.MAX_BALANCE)
    refused(b, full, lambda: full.se.request(2_001, T0), LimitExceeded, limit=Limit.MAX_BALANCE)
    payment = b.enrolled(5_000).se.pay_to(full.wid, 2_001, T0)
    refused(b, full, lambda: full.se.receive(payment, T0), LimitExceeded, limit=Limit.MAX_BALANCE)
    expect(full.se.load(b.banks["Bank A"].voucher(full.wid, 2_000, "EUR", T0), T0) == 2_000, "")


@check("expiry")
def check_an_expired_certificate_pays_nothing_until_a_sync(b: Bench) -> None:
    """pay, pay_to, unload: after the certificate's notAfter the SE refuses to debit
    (SecureElementError: sync to renew), changing nothing; receiving is not a debit."""
    long_offline = Limits(
        DEFAULT_LIMITS.max_balance,
        DEFAULT_LIMITS.max_payment,
        DEFAULT_LIMITS.max_offline_payments,
        DEFAULT_LIMITS.max_offline_value,
        30 * 86400,
    )
    h = b.certified(dt.timedelta(hours=1), long_offline)
    h.se.load(b.banks["Bank A"].voucher(h.wid, 1_000, "EUR", T0), T0)
    expires = h.se.status(T0).certificate_expires
    assert expires is not None
    payee = b.enrolled()
    h.se.pay_to(payee.wid, 10, expires)  # up to notAfter it pays
    request = payee.se.request(10, expires + 1)
    for what, call in (
        ("pay_to", lambda: h.se.pay_to(payee.wid, 10, expires + 1)),
        ("pay", lambda: h.se.pay(request, expires + 1)),
        ("unload", lambda: h.se.unload(10, expires + 1)),
    ):
        refused(b, h, call, SecureElementError, what=f"{what} after expiry")


@check("install_crls")
def check_a_crl_that_revokes_the_se_stops_it_paying(b: Bench) -> None:
    """install_crls: a newer CRL of its bank is installed (persisted) and the call says whether
    it revokes the SE; a revoked SE refuses pay, pay_to and unload (SecureElementRevoked),
    also after a restart, changing nothing; CRLs of no bank it holds are ignored."""
    h, payee = b.enrolled(5_000), b.enrolled(0, "Bank B")
    unrelated = b.ledger.trust_material(None, T0).crls
    expect(h.se.install_crls(list(unrelated), T0) is False, "a CRL not listing it revokes it")
    b.ledger.report_lost(h.wid, T0 + 1)
    crls = list(b.ledger.trust_material(None, T0 + 1).crls)
    expect(h.se.install_crls(crls, T0 + 2) is True, "the CRL listing it does not revoke it")
    persisted(b, h)
    request = payee.se.request(10, T0 + 2)
    for what, call in (
        ("pay_to", lambda: h.se.pay_to(payee.wid, 10, T0 + 3)),
        ("pay", lambda: h.se.pay(request, T0 + 3)),
        ("unload", lambda: h.se.unload(10, T0 + 3)),
    ):
        refused(b, h, call, SecureElementRevoked, what=f"{what} when revoked")
    b.reopen(h)
    refused(b, h, lambda: h.se.pay_to(payee.wid, 10, T0 + 4), SecureElementRevoked)
