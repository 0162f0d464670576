"""Conformance checks of each operation's happy path, refusals, persistence and exactly-once
rules (the contract: docs/SE-CONFORMANCE.md; argument, limit and lifecycle checks are in
``offcash.se.conformance.lifecycle``).

Theory of operation: each check makes its own SEs on the bench, drives one operation through
what it must do and what it must refuse, and judges by oracles outside the SE: the strict
message decoders, the real ledger's verdicts, and the SE's own state before and after.
"""

from __future__ import annotations

import functools

from offcash.crypto import pki
from offcash.crypto.algorithms import algorithm_of, spki
from offcash.encoding import sealed
from offcash.errors import (
    CannotDecrypt,
    DecodeError,
    InsufficientFunds,
    Rejection,
    SecureElementError,
    VerificationError,
)
from offcash.protocol import messages as m
from offcash.se.conformance.bench import ACCOUNT, T0, Bench
from offcash.se.conformance.expect import check, expect, persisted, refused
from offcash.se.log import EntryType

# --- csr, enroll, status -----------------------------------------------------------------------


@check("csr")
def check_csr_is_for_one_key_of_the_network_algorithm(b: Bench) -> None:
    """csr: a CSR whose proof of possession verifies, for a key of the network's algorithm,
    the same key every time; a new SE shows an empty status (no wallet, balance 0, counter 0)."""
    h = b.new()
    keys = {spki(pki.csr_public_key(h.se.csr())) for _ in range(2)}
    expect(len(keys) == 1, "two CSRs of one SE name different keys")
    key = pki.csr_public_key(h.se.csr())
    expect(algorithm_of(key) is b.params.algorithm, "the CSR's key is not the network's algorithm")
    st = h.se.status(T0)
    expect(st.wallet_id is None and st.bank is None and st.limits is None, "new SE shows a wallet")
    expect((st.balance, st.counter, st.log_entries) == (0, 0, 0), "new SE is not empty")
    expect(st.currency == b.params.currency, "status shows another currency")
    expect(h.se.params == b.params, "params are not the network's")
    expect(
        h.se.trust.root_der == b.root_certificate, "trust does not hold the root it was made with"
    )


@check("enroll")
def check_enroll_installs_the_certificate_once(b: Bench) -> None:
    """enroll: installs the bank's certificate for its key, the bank CAs and CRLs, persisted;
    a second enrolment is refused (SecureElementError) and changes nothing."""
    h = b.enrolled()
    st = h.se.status(T0)
    expect(st.wallet_id == h.wid and st.bank == "Bank A", "status does not show the enrolment")
    expect(st.limits is not None and st.certificate_expires is not None, "no limits or expiry")
    expect(set(h.se.trust.bank_certificates()) == set(b.bank_certificates), "bank CAs missing")
    persisted(b, h)
    e = b.ledger.enroll(h.se.csr(), b.account(), T0)
    refused(
        b,
        h,
        lambda: h.se.enroll(e.certificate, e.bank_certificates, e.crls, T0),
        SecureElementError,
        what="a second enrolment",
    )


@check("enroll")
def check_enroll_refuses_a_certificate_for_another_key(b: Bench) -> None:
    """enroll: a certificate for another SE's key is refused (VerificationError
    BAD_CERTIFICATE) and the SE stays unenrolled."""
    h, other = b.new(), b.new()
    e = b.ledger.enroll(other.se.csr(), b.account(), T0)
    refused(
        b,
        h,
        lambda: h.se.enroll(e.certificate, e.bank_certificates, e.crls, T0),
        VerificationError,
        rejection=Rejection.BAD_CERTIFICATE,
        what="another key's certificate",
    )
    expect(h.se.status(T0).wallet_id is None, "the SE enrolled with another key's certificate")


@check("status")
def check_operations_need_an_enrolment(b: Bench) -> None:
    """status, request, pay_to, load, unload, sync_upload, receive, install_crls: before
    enrolment every operation but status and csr is refused (SecureElementError)."""
    h, payer = b.new(), b.enrolled(1_000)
    wid = payer.wid
    payment = payer.se.pay_to(b.enrolled().wid, 100, T0)
    voucher = b.banks["Bank A"].voucher(wid, 100, "EUR", T0)
    for what, call in (
        ("request", lambda: h.se.request(100, T0)),
        ("pay_to", lambda: h.se.pay_to(wid, 100, T0)),
        ("load", lambda: h.se.load(voucher, T0)),
        ("unload", lambda: h.se.unload(100, T0)),
        ("sync_upload", lambda: h.se.sync_upload(T0)),
        ("receive", lambda: h.se.receive(payment, T0)),
        ("install_crls", lambda: h.se.install_crls([], T0)),
    ):
        refused(b, h, call, SecureElementError, what=f"{what} before enrolment")


# --- load, unload --------------------------------------------------------------------------------


@check("load")
def check_load_credits_a_voucher_once(b: Bench) -> None:
    """load: credits the voucher's amount and logs it (persisted); the same voucher again is
    refused (REPLAYED), also after a restart; a voucher for another wallet is refused
    (WRONG_WALLET); a bad voucher is refused; none of the refusals changes anything."""
    h, other = b.enrolled(), b.enrolled()
    voucher = b.ledger.fund(h.wid, 2_000, T0 + 1)
    expect(h.se.load(voucher, T0 + 2) == 2_000, "load does not return the amount credited")
    st = h.se.status(T0 + 2)
    expect((st.balance, st.log_entries) == (2_000, 1), "load did not credit and log once")
    persisted(b, h)
    refused(
        b, h, lambda: h.se.load(voucher, T0 + 3), VerificationError, rejection=Rejection.REPLAYED
    )
    refused(
        b,
        other,
        lambda: other.se.load(voucher, T0 + 3),
        VerificationError,
        rejection=Rejection.WRONG_WALLET,
    )
    refused(b, h, lambda: h.se.load(b"\xa0", T0 + 3), DecodeError, what="a voucher that is no COSE")


@check("unload")
def check_unload_debits_and_signs_a_request_the_ledger_pays(b: Bench) -> None:
    """unload: debits, signs an unload request with the next counter (persisted); the ledger
    credits the owner's account; more than the balance is refused (InsufficientFunds)."""
    h = b.enrolled(5_000)
    request = h.se.unload(1_500, T0 + 1)
    st = h.se.status(T0 + 1)
    expect((st.balance, st.counter) == (3_500, 1), "unload did not debit once with counter 1")
    persisted(b, h)
    expect(b.ledger.unload(request, T0 + 2) == 1_500, "the ledger does not pay the request")
    expect(b.ledger.balance(h.account or "") == ACCOUNT - 5_000 + 1_500, "account not credited")
    refused(b, h, lambda: h.se.unload(3_501, T0 + 3), InsufficientFunds)


# --- request, pay, pay_to, sent_payment ---------------------------------------------------------


@check("request")
def check_request_is_remembered_across_a_restart(b: Bench) -> None:
    """request: a request for the SE's wallet with the terms given and its encryption key,
    remembered as outstanding (persisted): a payment answering it is accepted after a restart."""
    payee, payer = b.enrolled(), b.enrolled(5_000, "Bank B")
    nonce = bytes(range(16))
    data = payee.se.request(700, T0, reference="invoice 7", payee_name="Shop", nonce=nonce)
    req = m.parse_request(data)
    expect(
        (req.payee, req.amount, req.currency, req.nonce, req.time, req.reference, req.payee_name)
        == (payee.wid, 700, "EUR", nonce, T0, "invoice 7", "Shop"),
        "the request does not carry the terms given",
    )
    expect(req.encryption_key is not None, "the request carries no encryption key")
    payment = payer.se.pay(data, T0 + 1)
    b.reopen(payee)
    got = payee.se.receive(payment, T0 + 2)
    expect((got.amount, got.duplicate) == (700, False), "the restarted payee does not credit it")


@check("pay")
def check_pay_debits_once_and_the_same_request_gets_the_same_bytes(b: Bench) -> None:
    """pay: debits, signs the payment with the next counter and logs it (persisted); the same
    request again, also after a restart, returns the same bytes and debits nothing."""
    payer, payee = b.enrolled(5_000), b.enrolled(0, "Bank B")
    request = payee.se.request(1_200, T0)
    first = payer.se.pay(request, T0 + 1)
    p = m.parse_payment(first)
    expect((p.payee, p.amount, p.counter) == (payee.wid, 1_200, 1), "payment terms are wrong")
    expect(p.nonce == m.parse_request(request).nonce, "the payment does not answer the request")
    persisted(b, payer)
    expect(payer.se.pay(request, T0 + 2) == first, "the same request paid twice differs")
    expect(payer.se.status(T0).balance == 3_800, "the same request was debited twice")
    b.reopen(payer)
    expect(payer.se.pay(request, T0 + 3) == first, "after a restart the request is paid anew")
    expect(payer.se.status(T0).balance == 3_800, "after a restart it was debited twice")
    expect(payee.se.receive(first, T0 + 4).amount == 1_200, "the payee does not accept it")


@check("pay")
def check_pay_refuses_what_a_payee_would_refuse(b: Bench) -> None:
    """pay: refuses a request of another currency (CURRENCY_MISMATCH), one from the future
    (FROM_THE_FUTURE), one too old to be accepted (TOO_OLD), more than the balance
    (InsufficientFunds), a request that is not one (DecodeError), and other terms under a
    payee's nonce it paid (NONCE_USED), changing nothing."""
    payer, payee = b.enrolled(1_000), b.enrolled()
    p = b.params
    wid = payee.wid
    usd = m.PaymentRequest(wid, 100, "USD", bytes(16), T0).encode()
    future = m.PaymentRequest(wid, 100, "EUR", bytes(16), T0 + p.clock_skew + 10).encode()
    old = m.PaymentRequest(wid, 100, "EUR", bytes(16), T0).encode()
    late = T0 + p.max_payment_age + p.clock_skew + 1
    for data, now, rejection in (
        (usd, T0, Rejection.CURRENCY_MISMATCH),
        (future, T0, Rejection.FROM_THE_FUTURE),
        (old, late, Rejection.TOO_OLD),
    ):
        refused(
            b,
            payer,
            functools.partial(payer.se.pay, data, now),
            VerificationError,
            rejection=rejection,
            what=f"a request refused for {rejection.name}",
        )
    big = payee.se.request(1_001, T0)
    refused(b, payer, lambda: payer.se.pay(big, T0), InsufficientFunds)
    nonce = bytes(range(16))
    payer.se.pay(payee.se.request(100, T0, nonce=nonce), T0)
    other_terms = m.PaymentRequest(wid, 101, "EUR", nonce, T0).encode()  # same payee and nonce
    refused(
        b,
        payer,
        lambda: payer.se.pay(other_terms, T0),
        VerificationError,
        rejection=Rejection.NONCE_USED,
        what="another request with a nonce it paid",
    )
    refused(b, payer, lambda: payer.se.pay(b"\x80", T0), DecodeError, what="pay(garbage)")


@check("pay_to")
def check_pay_to_debits_and_refuses_a_self_payment(b: Bench) -> None:
    """pay_to: debits and signs a one-way payment (no nonce) with the next counter, persisted;
    a payment to itself is refused (SELF_PAYMENT), changing nothing."""
    payer, payee = b.enrolled(5_000), b.enrolled(0, "Bank B")
    data = payer.se.pay_to(payee.wid, 900, T0, reference="rent")
    p = m.parse_payment(data)
    expect((p.payee, p.amount, p.counter, p.nonce) == (payee.wid, 900, 1, None), "wrong terms")
    expect(p.reference == "rent", "the reference is not signed")
    persisted(b, payer)
    expect(payer.se.status(T0).balance == 4_100, "pay_to did not debit once")
    refused(
        b,
        payer,
        lambda: payer.se.pay_to(payer.wid, 1, T0),
        VerificationError,
        rejection=Rejection.SELF_PAYMENT,
    )


@check("sent_payment")
def check_sent_payment_gives_the_same_bytes_until_the_sync(b: Bench) -> None:
    """sent_payment: the exact payment signed with a counter, also after a restart, until the
    sync that settles it; an unknown counter is refused (SecureElementError)."""
    payer, payee = b.enrolled(5_000), b.enrolled()
    one = payer.se.pay_to(payee.wid, 100, T0)
    two = payer.se.pay(payee.se.request(200, T0), T0)
    expect(payer.se.sent_payment(1) == one and payer.se.sent_payment(2) == two, "not the same")
    b.reopen(payer)
    expect(payer.se.sent_payment(2) == two, "not the same after a restart")
    refused(b, payer, lambda: payer.se.sent_payment(3), SecureElementError, what="counter 3")
    b.sync(payer, T0 + 10)
    refused(b, payer, lambda: payer.se.sent_payment(1), SecureElementError, what="a synced one")


# --- open_sealed, receive ------------------------------------------------------------------------


@check("open_sealed")
def check_sealed_payments_open_only_for_their_se(b: Bench) -> None:
    """open_sealed: opens a payment sealed for the key its requests carry; another SE cannot
    (CannotDecrypt); bytes that are not a sealed message are a DecodeError; nothing changes."""
    payer, payee, other = b.enrolled(5_000), b.enrolled(), b.enrolled()
    req = m.parse_request(payee.se.request(300, T0))
    assert req.encryption_key is not None
    payment = payer.se.pay(req.encode(), T0)
    box = sealed.seal(payment, req.encryption_key)
    expect(payee.se.open_sealed(box) == payment, "the payee does not open its sealed payment")
    refused(b, other, lambda: other.se.open_sealed(box), CannotDecrypt, what="another SE opens")
    refused(b, payee, lambda: payee.se.open_sealed(b"not sealed"), DecodeError, what="garbage")


@check("receive")
def check_receive_credits_once_and_a_resend_is_a_duplicate(b: Bench) -> None:
    """receive: verifies, credits and logs a payment and signs a receipt the payer verifies
    (persisted); the same payment again, also after a restart, is a duplicate credited once;
    another payment with the same payer counter is refused (DOUBLE_SPEND)."""
    payer, payee = b.enrolled(5_000), b.enrolled(0, "Bank B")
    clone = b.new()  # what an attacker who broke the payer makes of it before it pays
    b.factory.write_state(clone.directory, b.state(payer))
    payment = payer.se.pay(payee.se.request(400, T0), T0)
    got = payee.se.receive(payment, T0 + 1)
    expect((got.payer, got.amount, got.counter, got.duplicate) == (payer.wid, 400, 1, False), "")
    expect(got.digest == m.parse_payment(payment).digest and got.receipt is not None, "receipt")
    persisted(b, payee)
    b.reopen(payee)
    again = payee.se.receive(payment, T0 + 2)
    expect(again.duplicate and again.amount == 400, "a re-send is not reported as a duplicate")
    st = payee.se.status(T0)
    expect((st.balance, st.log_entries) == (400, 1), "a re-send was credited or logged twice")
    twin = b.reopen(clone).pay_to(payee.wid, 50, T0 + 3)
    refused(
        b,
        payee,
        lambda: payee.se.receive(twin, T0 + 3),
        VerificationError,
        rejection=Rejection.DOUBLE_SPEND,
        what="a clone's payment with the same counter",
    )


# --- sync_upload, apply_sync ---------------------------------------------------------------------


@check("sync_upload")
def check_sync_round_trip_with_the_real_ledger(b: Bench) -> None:
    """sync_upload / apply_sync: the signed report and log settle at the real ledger; applying
    its acknowledgement drops the settled entries, renews the certificate and resets the offline
    counts (persisted); the same acknowledgement again is refused (REPLAYED), changing nothing."""
    payer, payee = b.enrolled(5_000), b.enrolled(0, "Bank B")
    payee.se.receive(payer.se.pay_to(payee.wid, 700, T0 + 1), T0 + 1)
    payer.se.unload(300, T0 + 2)
    up = payer.se.sync_upload(T0 + 3)
    types = [e.type for e in up.entries]
    expect(types == [EntryType.LOADED, EntryType.SENT, EntryType.UNLOADED], f"log is {types}")
    expect(payer.se.sync_upload(T0 + 3).entries == up.entries, "sync_upload changed the log")
    res = b.ledger.sync(up.report, up.entries, payer.se.csr(), T0 + 4)
    expect(res.ack is not None and res.certificate is not None, f"not settled: {res.anomalies}")
    assert res.ack is not None and res.certificate is not None
    payer.se.apply_sync(res.ack, res.certificate, res.bank_certificates, res.crls, T0 + 4)
    st = payer.se.status(T0 + 4)
    expect((st.log_entries, st.offline_payments, st.offline_value) == (0, 0, 0), "not reset")
    expect(st.balance == 4_000 and st.counter == 2 and st.last_sync is not None, "wrong state")
    persisted(b, payer, T0 + 4)
    refused(
        b,
        payer,
        lambda: payer.se.apply_sync(
            res.ack or b"", res.certificate or b"", res.bank_certificates, res.crls, T0 + 5
        ),
        VerificationError,
        rejection=Rejection.REPLAYED,
        what="the same acknowledgement again",
    )
    expect(b.sync(payee, T0 + 6).settled == 1, "the payee's sync does not settle the payment")
    audit = b.ledger.audit()
    expect(audit.balanced, "the ledger's books do not balance after the syncs")


@check("apply_sync")
def check_apply_sync_drops_only_what_was_settled(b: Bench) -> None:
    """apply_sync: an acknowledgement drops exactly the entries it covers (a payment made
    between the upload and the answer stays for the next sync); another wallet's
    acknowledgement is refused (VerificationError), changing nothing."""
    payer, payee, other = b.enrolled(5_000), b.enrolled(), b.enrolled(1_000)
    payer.se.pay_to(payee.wid, 100, T0 + 1)
    up = payer.se.sync_upload(T0 + 2)
    res = b.ledger.sync(up.report, up.entries, payer.se.csr(), T0 + 3)
    assert res.ack is not None and res.certificate is not None
    theirs = other.se.sync_upload(T0 + 2)
    foreign = b.ledger.sync(theirs.report, theirs.entries, other.se.csr(), T0 + 3)
    assert foreign.ack is not None and foreign.certificate is not None
    later = payer.se.pay_to(payee.wid, 200, T0 + 4)  # after the upload, before the answer
    refused(
        b,
        payer,
        lambda: payer.se.apply_sync(
            foreign.ack or b"", res.certificate or b"", res.bank_certificates, res.crls, T0 + 5
        ),
        VerificationError,
        what="another wallet's acknowledgement",
    )
    payer.se.apply_sync(res.ack, res.certificate, res.bank_certificates, res.crls, T0 + 5)
    st = payer.se.status(T0 + 5)
    expect(st.log_entries == 1 and st.offline_value == 200, "the unsettled payment was dropped")
    expect(payer.se.sync_upload(T0 + 6).entries[0].message == later, "not the later payment")
    persisted(b, payer, T0 + 6)
    expect(b.sync(payer, T0 + 7).settled == 1, "the next sync does not settle the later payment")
