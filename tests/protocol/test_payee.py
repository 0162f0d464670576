"""The payee's memory (``PayeeBook``): outstanding nonces, torn-transfer re-sends, double spends."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from offcash.domain.ids import WalletId
from offcash.errors import Rejection, VerificationError
from offcash.protocol import messages as m
from offcash.protocol.payee import MAX_OUTSTANDING, PayeeBook
from offcash.verification import verify_payment

from factories import Signer, make_signer, trust_of
from harness import T0, PilotNetwork, SEs

PAYEE = WalletId(bytes(range(12)))


def _request(nonce: bytes, amount: int = 100, time: int = T0) -> m.PaymentRequest:
    return m.PaymentRequest(payee=PAYEE, amount=amount, currency="EUR", nonce=nonce, time=time)


@pytest.fixture
def payer(network: PilotNetwork) -> Signer:
    return make_signer(network)


def _accept(book: PayeeBook, net: PilotNetwork, data: bytes, now: int = T0) -> bool:
    verified, duplicate = book.verify(
        data, trust=trust_of(net), params=net.params, payee=PAYEE, now=now
    )
    if not duplicate:
        book.record(verified, now)
    return duplicate


def _rejection(book: PayeeBook, net: PilotNetwork, data: bytes) -> Rejection:
    with pytest.raises(VerificationError) as info:
        _accept(book, net, data)
    return info.value.rejection


def test_one_way_resend_is_a_duplicate_then_double_spend(
    network: PilotNetwork, payer: Signer
) -> None:
    book = PayeeBook()
    first = payer.payment(PAYEE, counter=1)
    assert _accept(book, network, first) is False
    assert _accept(book, network, first) is True  # torn transfer: the identical bytes again
    assert _accept(book, network, first) is True
    other = payer.payment(PAYEE, counter=1, amount=101)
    assert _rejection(book, network, other) is Rejection.DOUBLE_SPEND
    # the same payment re-signed (ECDSA is randomized; Ed25519 is not, so change the reference)
    again = payer.payment(PAYEE, counter=1, reference="again")
    assert _rejection(book, network, again) is Rejection.DOUBLE_SPEND
    assert _accept(book, network, payer.payment(PAYEE, counter=2)) is False


def test_request_mode_nonces(network: PilotNetwork, payer: Signer) -> None:
    book = PayeeBook()
    req = _request(bytes(16))
    book.add_request(req, req.encode())
    assert book.request_for(req.nonce) == req
    assert book.request_for(None) is None
    data = payer.payment(PAYEE, nonce=req.nonce)
    assert _accept(book, network, data) is False
    assert req.nonce in book.paid and req.nonce not in book.outstanding
    assert _accept(book, network, data) is True  # re-send after a torn transfer
    fresh = payer.payment(PAYEE, nonce=req.nonce, counter=2)
    assert _rejection(book, network, fresh) is Rejection.NONCE_USED
    unknown = payer.payment(PAYEE, nonce=b"\x01" * 16, counter=3)
    assert _rejection(book, network, unknown) is Rejection.UNKNOWN_NONCE


def test_request_amount_enforced_through_the_book(network: PilotNetwork, payer: Signer) -> None:
    book = PayeeBook()
    req = _request(bytes(16), amount=500)
    book.add_request(req, req.encode())
    assert (
        _rejection(book, network, payer.payment(PAYEE, nonce=req.nonce))
        is Rejection.AMOUNT_MISMATCH
    )
    assert req.nonce in book.outstanding  # a refused payment leaves the request open


def test_double_spend_to_the_same_payee_across_modes(network: PilotNetwork, payer: Signer) -> None:
    """One counter spent once in request mode and once one-way is a double spend."""
    book = PayeeBook()
    req = _request(bytes(16))
    book.add_request(req, req.encode())
    assert _accept(book, network, payer.payment(PAYEE, nonce=req.nonce, counter=5)) is False
    assert _rejection(book, network, payer.payment(PAYEE, counter=5)) is Rejection.DOUBLE_SPEND


def test_outstanding_is_bounded() -> None:
    book = PayeeBook()
    reqs = [_request(i.to_bytes(16, "big")) for i in range(MAX_OUTSTANDING + 3)]
    for r in reqs:
        book.add_request(r, r.encode())
    assert len(book.outstanding) == MAX_OUTSTANDING
    assert reqs[0].nonce not in book.outstanding and reqs[-1].nonce in book.outstanding


def test_requests_are_decoded_from_the_encodings_held() -> None:
    """Requests are kept decoded beside their encodings; replacing an encoding (or restoring
    the book) decodes it again, and closed or dropped requests are forgotten."""
    book = PayeeBook()
    first, other = _request(b"\x05" * 16, amount=100), _request(b"\x05" * 16, amount=200)
    book.add_request(first, first.encode())
    assert book.request_for(first.nonce) == first
    book.outstanding[first.nonce] = other.encode()
    assert book.request_for(first.nonce) == other
    assert PayeeBook.from_cbor(book.to_cbor()).request_for(first.nonce) == other
    del book.outstanding[first.nonce]
    assert book.request_for(first.nonce) is None


def test_prune_and_persistence(network: PilotNetwork, payer: Signer) -> None:
    book = PayeeBook()
    old, new = _request(b"\x00" * 16, time=T0 - 1000), _request(b"\x01" * 16, time=T0)
    for r in (old, new):
        book.add_request(r, r.encode())
    _accept(book, network, payer.payment(PAYEE, counter=1))
    restored = PayeeBook.from_cbor(book.to_cbor())
    assert (restored.outstanding, restored.paid, restored.seen) == (
        book.outstanding,
        book.paid,
        book.seen,
    )
    book.prune(T0 + 500, max_age=1000)
    assert list(book.outstanding) == [new.nonce]
    assert book.seen  # the payment (time T0) is younger than the horizon
    book.prune(T0 + 2000, max_age=1000)
    assert not book.seen and not book.outstanding


def test_receive_only_terminal_uses_the_same_book(network: PilotNetwork, ses: SEs) -> None:
    """A payee without an SE verifies and keeps payments with the same rules (paid by an SE of
    each kind)."""
    network = network.with_ses(ses)
    payer_se = network.wallet(1000)
    book = PayeeBook()
    req = _request(b"\x07" * 16, amount=300)
    book.add_request(req, req.encode())
    data = payer_se.pay(req.encode(), T0)
    kwargs: dict[str, Any] = {"trust": trust_of(network), "params": network.params, "payee": PAYEE}
    verified, duplicate = book.verify(data, now=T0, **kwargs)
    assert not duplicate and verified.payment.amount == 300
    book.record(verified, T0)
    assert book.verify(data, now=T0, **kwargs)[1] is True


def test_a_book_from_before_content_digests_still_knows_its_payments(
    network: PilotNetwork, ses: SEs
) -> None:
    """A book persisted when a payment was named by the SHA-256 of its bytes: the same bytes
    again are still a duplicate, not a double spend (issue 9, finding 1); SEs of each kind."""
    network = network.with_ses(ses)
    payee = network.wallet()
    wid = payee.status(T0).wallet_id
    assert wid is not None
    data = network.wallet(500).pay_to(wid, 100, T0)
    trust = payee.trust
    verified = verify_payment(data, trust=trust, params=network.params, now=T0, payee=wid)
    book = PayeeBook()
    book.seen[(verified.payer.raw, verified.payment.counter)] = (
        hashlib.sha256(data).digest(),
        T0,
    )
    restored = PayeeBook.from_cbor(book.to_cbor())
    assert restored.verify(data, trust=trust, params=network.params, payee=wid, now=T0)[1]
