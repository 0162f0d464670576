"""The secure element's rules: limits, funds, enrolment, vouchers, syncs, torn transfers.

Written for the software SE, they hold for every kind: each test runs against each SE kind of
tests/se_kinds.py, except the log-capacity test, which lowers the software SE's own constant."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from offcash.domain.ids import WalletId
from offcash.domain.limits import DEFAULT_LIMITS, Limits
from offcash.errors import (
    InsufficientFunds,
    Limit,
    LimitExceeded,
    MoneyError,
    Rejection,
    SecureElementError,
    VerificationError,
)
from offcash.protocol import messages as m
from offcash.se import software
from offcash.se.interface import SecureElement

from harness import T0, PilotNetwork
from se_kinds import network_per_kind

__all__ = ["network_per_kind"]

DAY = 86400


def _wid(se: SecureElement) -> WalletId:
    wid = se.status(T0).wallet_id
    assert wid is not None
    return wid


def _limits(**changes: int) -> Limits:
    return dataclasses.replace(DEFAULT_LIMITS, **changes)


def _load(net: PilotNetwork, se: SecureElement, amount: int, now: int = T0) -> int:
    return se.load(net.bank().voucher(_wid(se), amount, net.params.currency, now), now)


# --- limits ---------------------------------------------------------------------------------


def _over_balance(net: PilotNetwork) -> tuple[Any, tuple[Limit, int, int]]:
    se = net.wallet(900, limits=_limits(max_balance=1000))
    return (lambda: _load(net, se, 101)), (Limit.MAX_BALANCE, 1001, 1000)


def _over_balance_by_request(net: PilotNetwork) -> tuple[Any, tuple[Limit, int, int]]:
    se = net.wallet(900, limits=_limits(max_balance=1000))
    return (lambda: se.request(101, T0)), (Limit.MAX_BALANCE, 1001, 1000)


def _over_balance_by_receipt(net: PilotNetwork) -> tuple[Any, tuple[Limit, int, int]]:
    payee = net.wallet(900, limits=_limits(max_balance=1000))
    payment = net.wallet(500).pay_to(_wid(payee), 101, T0)
    return (lambda: payee.receive(payment, T0)), (Limit.MAX_BALANCE, 1001, 1000)


def _over_max_payment(net: PilotNetwork) -> tuple[Any, tuple[Limit, int, int]]:
    se = net.wallet(20_000)
    return (lambda: se.pay_to(WalletId.random(), 10_001, T0)), (Limit.MAX_PAYMENT, 10_001, 10_000)


def _over_offline_count(net: PilotNetwork) -> tuple[Any, tuple[Limit, int, int]]:
    se = net.wallet(1000, limits=_limits(max_offline_payments=2))
    se.pay_to(WalletId.random(), 10, T0)
    se.unload(10, T0)  # an unload takes a counter value too
    return (lambda: se.pay_to(WalletId.random(), 10, T0)), (Limit.MAX_OFFLINE_PAYMENTS, 3, 2)


def _over_offline_value(net: PilotNetwork) -> tuple[Any, tuple[Limit, int, int]]:
    se = net.wallet(1000, limits=_limits(max_offline_value=250))
    se.pay_to(WalletId.random(), 200, T0)
    return (lambda: se.pay_to(WalletId.random(), 100, T0)), (Limit.MAX_OFFLINE_VALUE, 300, 250)


def _over_offline_time(net: PilotNetwork) -> tuple[Any, tuple[Limit, int, int]]:
    se = net.wallet(1000, limits=_limits(max_offline_seconds=3600))
    # the offline period runs from the certificate's notBefore, 300 s before its issue
    return (lambda: se.pay_to(WalletId.random(), 10, T0 + 3301)), (
        Limit.MAX_OFFLINE_SECONDS,
        3601,
        3600,
    )


def _over_offline_time_unload(net: PilotNetwork) -> tuple[Any, tuple[Limit, int, int]]:
    se = net.wallet(1000, limits=_limits(max_offline_seconds=3600))
    return (lambda: se.unload(10, T0 + 3400)), (Limit.MAX_OFFLINE_SECONDS, 3700, 3600)


LIMIT_CASES = [
    _over_balance,
    _over_balance_by_request,
    _over_balance_by_receipt,
    _over_max_payment,
    _over_offline_count,
    _over_offline_value,
    _over_offline_time,
    _over_offline_time_unload,
]


@pytest.mark.parametrize("build", LIMIT_CASES, ids=[c.__name__.strip("_") for c in LIMIT_CASES])
def test_limit_refusals_name_limit_value_and_bound(network: PilotNetwork, build: Any) -> None:
    action, (limit, value, bound) = build(network)
    with pytest.raises(LimitExceeded) as info:
        action()
    assert (info.value.limit, info.value.value, info.value.bound) == (limit, value, bound)
    assert limit.value in str(info.value) and str(bound) in str(info.value)


def test_limits_at_their_bounds_are_allowed(network: PilotNetwork) -> None:
    limits = Limits(
        max_balance=1000,
        max_payment=300,
        max_offline_payments=3,
        max_offline_value=600,
        max_offline_seconds=3600,
    )
    se = network.wallet(1000, limits=limits)
    for amount in (300, 300):
        se.pay_to(WalletId.random(), amount, T0)
    se.unload(1, T0 + 3300)  # 3600 s after the certificate's notBefore
    status = se.status(T0 + 3300)
    assert (status.balance, status.offline_payments, status.offline_value) == (399, 3, 600)


def test_refusal_leaves_state_unchanged(network: PilotNetwork) -> None:
    se = network.wallet(1000, limits=_limits(max_offline_value=250))
    se.pay_to(WalletId.random(), 200, T0)
    before = se.status(T0)
    with pytest.raises(LimitExceeded):
        se.pay_to(WalletId.random(), 100, T0)
    assert se.status(T0) == before


def test_sync_restarts_the_offline_period(network: PilotNetwork) -> None:
    limits = _limits(max_offline_payments=1)
    se = network.wallet(1000, limits=limits)
    se.pay_to(WalletId.random(), 10, T0)
    with pytest.raises(LimitExceeded):
        se.pay_to(WalletId.random(), 10, T0)
    network.sync(se, T0 + 60, limits)
    status = se.status(T0 + 60)
    assert (status.offline_payments, status.offline_value, status.log_entries) == (0, 0, 0)
    se.pay_to(WalletId.random(), 10, T0 + 61)


def test_log_capacity(network_of_algorithm: PilotNetwork, monkeypatch: pytest.MonkeyPatch) -> None:
    """Software SE only: it lowers the software SE's capacity (the kit does not check it)."""
    se = network_of_algorithm.wallet(1000)
    monkeypatch.setattr(software, "MAX_LOG_ENTRIES", 2)
    se.pay_to(WalletId.random(), 10, T0)
    with pytest.raises(LimitExceeded) as info:
        se.pay_to(WalletId.random(), 10, T0)
    assert (info.value.limit, info.value.value, info.value.bound) == (Limit.MAX_LOG_ENTRIES, 3, 2)


# --- funds, amounts, enrolment ---------------------------------------------------------------


def test_insufficient_funds(network: PilotNetwork) -> None:
    se = network.wallet(100)
    with pytest.raises(InsufficientFunds) as info:
        se.pay_to(WalletId.random(), 101, T0)
    assert (info.value.balance, info.value.amount) == (100, 101)
    with pytest.raises(InsufficientFunds):
        se.unload(101, T0)


@pytest.mark.parametrize(
    ("amount", "error"),
    [(0, MoneyError), (-1, MoneyError), (1.5, TypeError), (True, TypeError), ("10", TypeError)],
    ids=repr,
)
def test_invalid_amounts(network: PilotNetwork, amount: Any, error: type[Exception]) -> None:
    """Not an int (a float, a bool, a text) is a ``TypeError``; not positive a ``MoneyError``,
    which is a ``ValueError``."""
    se = network.wallet(100)
    for action in (
        lambda: se.pay_to(WalletId.random(), amount, T0),
        lambda: se.unload(amount, T0),
        lambda: se.request(amount, T0),
    ):
        with pytest.raises(error):
            action()
    assert issubclass(MoneyError, ValueError)
    assert se.status(T0).balance == 100


def test_request_of_zero_cannot_be_paid(network: PilotNetwork) -> None:
    payee = m.PaymentRequest(
        payee=WalletId.random(), amount=0, currency="EUR", nonce=bytes(16), time=T0
    )
    with pytest.raises(MoneyError):
        network.wallet(100).pay(payee.encode(), T0)


def test_request_in_another_currency(network: PilotNetwork) -> None:
    req = m.PaymentRequest(
        payee=WalletId.random(), amount=1, currency="USD", nonce=bytes(16), time=T0
    )
    with pytest.raises(VerificationError) as info:
        network.wallet(100).pay(req.encode(), T0)
    assert info.value.rejection is Rejection.CURRENCY_MISMATCH


def test_not_enrolled(network: PilotNetwork) -> None:
    se = network.new_se()
    status = se.status(T0)
    assert status.wallet_id is None and status.balance == 0
    for action in (
        lambda: se.pay_to(WalletId.random(), 1, T0),
        lambda: se.request(1, T0),
        lambda: se.unload(1, T0),
        lambda: se.sync_upload(T0),
        lambda: se.receive(b"", T0),
    ):
        with pytest.raises(SecureElementError, match="not enrolled"):
            action()


def test_enrolment_refusals(network: PilotNetwork) -> None:
    se = network.wallet()
    bank = network.bank()
    with pytest.raises(SecureElementError, match="already enrolled"):
        se.enroll(
            bank.certify_wallet(se.csr(), WalletId.random(), DEFAULT_LIMITS, 0, T0),
            network.bank_ders,
            [],
            T0,
        )
    fresh = network.new_se()
    foreign = bank.certify_wallet(network.new_se().csr(), WalletId.random(), DEFAULT_LIMITS, 0, T0)
    with pytest.raises(VerificationError) as info:
        fresh.enroll(foreign, network.bank_ders, [], T0)
    assert info.value.rejection is Rejection.BAD_CERTIFICATE
    ahead = bank.certify_wallet(fresh.csr(), WalletId.random(), DEFAULT_LIMITS, 5, T0)
    with pytest.raises(VerificationError) as info:
        fresh.enroll(ahead, network.bank_ders, [], T0)
    assert info.value.rejection is Rejection.BAD_CERTIFICATE
    expired = bank.certify_wallet(fresh.csr(), WalletId.random(), DEFAULT_LIMITS, 0, T0 - 8 * DAY)
    with pytest.raises(VerificationError) as info:
        fresh.enroll(expired, network.bank_ders, [], T0)
    assert info.value.rejection is Rejection.CERT_EXPIRED
    assert fresh.status(T0).wallet_id is None


def test_expired_own_certificate(network: PilotNetwork) -> None:
    se = network.wallet(1000)
    later = T0 + 7 * DAY + 1
    with pytest.raises(SecureElementError, match="expired"):
        se.pay_to(WalletId.random(), 10, later)
    with pytest.raises(SecureElementError, match="expired"):
        se.unload(10, later)
    network.sync(se, later)  # a sync renews it
    se.pay_to(WalletId.random(), 10, later + 1)


def test_self_payment_refused(network: PilotNetwork) -> None:
    se = network.wallet(1000)
    with pytest.raises(VerificationError) as info:
        se.pay_to(_wid(se), 10, T0)
    assert info.value.rejection is Rejection.SELF_PAYMENT
    assert se.status(T0).balance == 1000


def test_receive_payment_for_another_payee(network: PilotNetwork) -> None:
    a, b = network.wallet(1000), network.wallet()
    with pytest.raises(VerificationError) as info:
        b.receive(a.pay_to(WalletId.random(), 10, T0), T0)
    assert info.value.rejection is Rejection.WRONG_PAYEE


# --- vouchers -----------------------------------------------------------------------------


def test_voucher_rejections(network: PilotNetwork) -> None:
    se = network.wallet()
    bank_a, bank_b = network.bank("Bank A"), network.bank("Bank B")
    voucher = bank_a.voucher(_wid(se), 500, "EUR", T0)
    assert se.load(voucher, T0) == 500
    cases = [
        (voucher, T0, Rejection.REPLAYED),
        (bank_a.voucher(WalletId.random(), 500, "EUR", T0), T0, Rejection.WRONG_WALLET),
        (bank_a.voucher(_wid(se), 500, "EUR", T0), T0 + 2 * DAY, Rejection.TOO_OLD),
        (bank_b.voucher(_wid(se), 500, "EUR", T0), T0, Rejection.UNKNOWN_ISSUER),
    ]
    for data, now, rejection in cases:
        with pytest.raises(VerificationError) as info:
            se.load(data, now)
        assert info.value.rejection is rejection
    assert se.status(T0).balance == 500
    same_id = bank_a.voucher(_wid(se), 1, "EUR", T0, voucher_id=m.parse_voucher(voucher).voucher_id)
    with pytest.raises(VerificationError) as info:
        se.load(same_id, T0)
    assert info.value.rejection is Rejection.REPLAYED


# --- syncs --------------------------------------------------------------------------------


def test_ack_rejections(network: PilotNetwork) -> None:
    se = network.wallet(1000)
    se.pay_to(WalletId.random(), 10, T0)
    bank, wid = network.bank(), _wid(se)
    report = m.parse_report(se.sync_upload(T0 + 10).report)
    cert = bank.certify_wallet(se.csr(), wid, DEFAULT_LIMITS, report.counter, T0 + 10)

    def ack(**changes: Any) -> bytes:
        values = {
            "wallet": wid.raw,
            "sync_seq": report.sync_seq,
            "entries": report.entries,
            "log_digest": report.log_digest,
            "time": T0 + 10,
        } | changes
        return m.sign_ack(bank.key, bank.certificate_der, **values)

    cases = [
        (ack(sync_seq=report.sync_seq + 1), Rejection.REPLAYED),
        (ack(log_digest=bytes(32)), Rejection.BAD_SIGNATURE),
        (ack(entries=report.entries + 1), Rejection.BAD_SIGNATURE),
        (ack(entries=report.entries - 1), Rejection.BAD_SIGNATURE),
        (ack(wallet=bytes(12)), Rejection.WRONG_WALLET),
    ]
    before = se.status(T0 + 10)
    for data, rejection in cases:
        with pytest.raises(VerificationError) as info:
            se.apply_sync(data, cert, network.bank_ders, [], T0 + 10)
        assert info.value.rejection is rejection
    assert se.status(T0 + 10) == before
    good = ack()
    se.apply_sync(good, cert, network.bank_ders, [], T0 + 10)
    assert se.status(T0 + 10).log_entries == 0
    with pytest.raises(VerificationError) as info:  # the same ack again: an old sync_seq
        se.apply_sync(good, cert, network.bank_ders, [], T0 + 10)
    assert info.value.rejection is Rejection.REPLAYED


def test_partial_ack_keeps_later_entries(network: PilotNetwork) -> None:
    """Entries logged after the report survive the ack of that report."""
    se = network.wallet(1000)
    se.pay_to(WalletId.random(), 10, T0)
    bank, wid = network.bank(), _wid(se)
    report = m.parse_report(se.sync_upload(T0 + 10).report)
    se.pay_to(WalletId.random(), 20, T0 + 20)
    cert = bank.certify_wallet(se.csr(), wid, DEFAULT_LIMITS, report.counter, T0 + 30)
    se.apply_sync(bank.acknowledge(report, wid, T0 + 30), cert, network.bank_ders, [], T0 + 30)
    status = se.status(T0 + 30)
    assert (status.log_entries, status.offline_value, status.offline_payments) == (1, 20, 1)
    upload = se.sync_upload(T0 + 40)
    assert [e.amount for e in upload.entries] == [20]


# --- torn transfers and double spends ------------------------------------------------------


def test_torn_transfer_resend_is_credited_once(network: PilotNetwork) -> None:
    a, b = network.wallet(1000), network.wallet()
    payment = a.pay(b.request(300, T0), T0)
    # the transfer was cut: the payer re-sends the identical bytes from its log
    counter = m.parse_payment(payment).counter
    assert a.sent_payment(counter) == payment
    first = b.receive(payment, T0 + 1)
    again = b.receive(a.sent_payment(counter), T0 + 2)
    assert (first.duplicate, again.duplicate) == (False, True)
    assert again.digest == first.digest and again.amount == 300
    assert b.status(T0).balance == 300 and b.status(T0).log_entries == 1
    assert a.status(T0).balance == 700
    with pytest.raises(SecureElementError):
        a.sent_payment(counter + 1)


def test_cloned_se_double_spend_is_caught_by_the_payee(network: PilotNetwork) -> None:
    """A payer that rolls its SE state back signs two payments with one counter."""
    a = network.wallet(1000)
    assert network.ses is not None
    clone = network.ses.clone(a)  # its state, read out and written into another SE
    b = network.wallet()
    first = a.pay_to(_wid(b), 100, T0)
    second = clone.pay_to(_wid(b), 200, T0)
    assert m.parse_payment(first).counter == m.parse_payment(second).counter
    b.receive(first, T0)
    with pytest.raises(VerificationError) as info:
        b.receive(second, T0)
    assert info.value.rejection is Rejection.DOUBLE_SPEND
    assert b.status(T0).balance == 100


def test_request_nonce_rules_in_the_se(network: PilotNetwork) -> None:
    a, b = network.wallet(1000), network.wallet()
    req = b.request(100, T0)
    b.receive(a.pay(req, T0), T0)
    # the same request again: the payer's SE answers with the same payment, a duplicate
    assert b.receive(a.pay(req, T0 + 5), T0 + 5).duplicate is True
    assert a.status(T0).balance == 900
    forged = m.PaymentRequest(
        payee=_wid(b), amount=5, currency="EUR", nonce=b"\x09" * 16, time=T0
    ).encode()
    with pytest.raises(VerificationError) as info:
        b.receive(a.pay(forged, T0), T0)
    assert info.value.rejection is Rejection.UNKNOWN_NONCE
    assert b.status(T0).balance == 100


def test_status_and_upload(network: PilotNetwork) -> None:
    a, b = network.wallet(1000), network.wallet()
    b.receive(a.pay(b.request(250, T0, reference="inv-1"), T0), T0)
    a.unload(50, T0)
    status = a.status(T0)
    assert (status.balance, status.counter, status.offline_payments, status.offline_value) == (
        700,
        2,
        2,
        250,
    )
    assert status.bank == "Bank A" and status.limits == DEFAULT_LIMITS
    assert status.certificate_expires == T0 + 7 * DAY and status.last_sync == T0
    upload = a.sync_upload(T0)
    report = m.parse_report(upload.report)
    assert (report.counter, report.balance, report.entries) == (2, 700, 3)
    assert [e.type.name for e in upload.entries] == ["LOADED", "SENT", "UNLOADED"]
