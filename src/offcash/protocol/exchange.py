"""The offline payment exchange as a sans-I/O state machine, one object per side.

Theory of operation: like h11, this module moves bytes in and bytes out and never opens a
file, socket, camera or NFC field; transports (``offcash.transports``, the CLI, an app) carry
the bytes. The payee side makes a request and accepts the payment; the payer side reads the
request (to show it to its owner), pays, and takes the receipt. A transfer cut off after the
payer paid (a torn transaction) is completed by ``PayerSide.resend``, which sends the identical
payment again; the payee accepts it exactly once and answers with a receipt either way.

    payee: IDLE --start--> AWAITING_PAYMENT --receive_payment--> DONE
    payer: IDLE --receive_request--> REQUEST_READ --pay--> AWAITING_RECEIPT
           --receive_receipt--> DONE

A request may carry the payee's encryption key; the payer then seals the signed payment for it
(``offcash.encoding.sealed``: signed first, then encrypted), so that whatever carries it reads
nothing, and the payee's device opens it before verifying. A re-sent payment is sealed afresh.

Calling a method in the wrong state raises ``ProtocolStateError`` (our bug); bad bytes from the
peer raise ``DecodeError`` or ``VerificationError`` (their fault) and leave the state unchanged.
"""

from __future__ import annotations

import enum
from typing import Protocol

from offcash.crypto.trust import TrustStore
from offcash.domain.network import NetworkParams
from offcash.encoding import sealed
from offcash.errors import ProtocolStateError
from offcash.protocol import messages as m
from offcash.se.interface import Received
from offcash.verification import verify_receipt


class State(enum.Enum):
    """Where one side of an exchange stands."""

    IDLE = "idle"
    AWAITING_PAYMENT = "awaiting payment"
    REQUEST_READ = "request read"
    AWAITING_RECEIPT = "awaiting receipt"
    DONE = "done"


class PayeeDevice(Protocol):
    """What can receive: a secure element or a receive-only terminal."""

    def request(
        self, amount: int, now: int, reference: str | None = None, payee_name: str | None = None
    ) -> bytes:
        """A payment request for ``amount`` minor units, remembered as outstanding."""
        ...

    def receive(self, payment: bytes, now: int) -> Received:
        """Verify and credit a payment (exactly once; a re-send is reported as a duplicate)."""
        ...

    def open_sealed(self, data: bytes) -> bytes:
        """The signed payment inside a payment sealed for this device's key (its requests'
        ``encryption_key``); ``CannotDecrypt`` if it was sealed for another."""
        ...


class PayerDevice(Protocol):
    """What can pay: a secure element."""

    @property
    def trust(self) -> TrustStore:
        """The trust store the payer checks a receipt with."""
        ...

    @property
    def params(self) -> NetworkParams:
        """The network parameters."""
        ...

    def pay(self, request: bytes, now: int) -> bytes:
        """Debit and sign a payment answering ``request``."""
        ...

    def sent_payment(self, counter: int) -> bytes:
        """The payment signed with ``counter``, to re-send after a torn transfer."""
        ...


class _Side:
    state: State

    def _expect(self, *states: State) -> None:
        if self.state not in states:
            raise ProtocolStateError(f"not allowed in state {self.state.value!r}")


class PayeeSide(_Side):
    """The receiving side of one exchange."""

    def __init__(self, device: PayeeDevice) -> None:
        self.device = device
        self.state = State.IDLE
        self.request: m.PaymentRequest | None = None
        self.received: Received | None = None

    def start(
        self, amount: int, now: int, reference: str | None = None, payee_name: str | None = None
    ) -> bytes:
        """Make the payment request; returns the bytes to show or send to the payer."""
        self._expect(State.IDLE)
        data = self.device.request(amount, now, reference, payee_name)
        self.request = m.parse_request(data)
        self.state = State.AWAITING_PAYMENT
        return data

    def receive_payment(self, data: bytes, now: int) -> Received:
        """Accept the payment (again, after a re-send: then ``duplicate`` is True)."""
        self._expect(State.AWAITING_PAYMENT, State.DONE)
        if sealed.is_sealed(data):
            data = self.device.open_sealed(data)
        received = self.device.receive(data, now)
        self.received = received
        self.state = State.DONE
        return received


class PayerSide(_Side):
    """The paying side of one exchange."""

    def __init__(self, device: PayerDevice) -> None:
        self.device = device
        self.state = State.IDLE
        self._request: bytes | None = None
        self._seal_for: bytes | None = None
        self.payment: m.Payment | None = None
        self.receipt: m.Receipt | None = None

    def receive_request(self, data: bytes) -> m.PaymentRequest:
        """Read the payee's request, to show its owner before paying."""
        self._expect(State.IDLE)
        request = m.parse_request(data)
        self._request = data
        self._seal_for = request.encryption_key
        self.state = State.REQUEST_READ
        return request

    def pay(self, now: int, *, encrypt: bool = True) -> bytes:
        """Pay the request read; returns the payment bytes to send, sealed for the payee if
        its request gave a key (unless ``encrypt`` is False)."""
        self._expect(State.REQUEST_READ)
        assert self._request is not None
        data = self.device.pay(self._request, now)
        self.payment = m.parse_payment(data)
        if not encrypt:
            self._seal_for = None
        self.state = State.AWAITING_RECEIPT
        return self._sealed(data)

    def resend(self) -> bytes:
        """The identical payment again, after a transfer was cut off (sealed afresh)."""
        self._expect(State.AWAITING_RECEIPT, State.DONE)
        assert self.payment is not None
        return self._sealed(self.device.sent_payment(self.payment.counter))

    def _sealed(self, payment: bytes) -> bytes:
        return payment if self._seal_for is None else sealed.seal(payment, self._seal_for)

    def receive_receipt(self, data: bytes) -> m.Receipt:
        """Check the payee's signed receipt for this payment."""
        self._expect(State.AWAITING_RECEIPT)
        assert self.payment is not None
        receipt = verify_receipt(
            data, trust=self.device.trust, params=self.device.params, payment=self.payment
        )
        self.receipt = receipt
        self.state = State.DONE
        return receipt
