"""A receive-only terminal: a payee without a secure element (a shop PC, a plain terminal).

Theory of operation: a terminal has a wallet id registered to its owner's account but no key
and no balance. It makes payment requests, verifies payments offline with the same
``PayeeBook.verify`` (and so the same ``verify_payment``) as a secure element, and keeps the
accepted payments until it redeems them online, where settlement credits the owner's account.
It cannot spend what it received offline: there is no key to sign with and nothing to debit.
Its state is plain CBOR; the caller persists it (``offcash.se.storage.atomic_write``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from offcash.crypto.trust import TrustStore
from offcash.domain.ids import WalletId, new_nonce
from offcash.domain.network import NetworkParams
from offcash.encoding import cbor
from offcash.encoding.fields import bstr, uint
from offcash.errors import CannotDecrypt, DecodeError, MoneyError
from offcash.protocol import messages as m
from offcash.protocol.payee import PayeeBook
from offcash.se.interface import Received


@dataclass
class ReceiveOnlyTerminal:
    """A payee device without a secure element."""

    #: the wallet id the ledger registered for this terminal
    wallet_id: WalletId
    #: the network parameters it verifies with
    params: NetworkParams
    #: root, bank CAs and CRLs (refreshed at each redemption)
    trust: TrustStore
    #: its memory of outstanding requests and of the payments it accepted
    book: PayeeBook = field(default_factory=PayeeBook)
    #: the payments held for redemption: (accepted at, payment)
    held: list[tuple[int, bytes]] = field(default_factory=list)

    def request(
        self, amount: int, now: int, reference: str | None = None, payee_name: str | None = None
    ) -> bytes:
        """A payment request for ``amount`` minor units, remembered as outstanding."""
        if type(amount) is not int or amount <= 0:
            raise MoneyError(f"amount must be a positive integer of minor units, not {amount!r}")
        req = m.PaymentRequest(
            self.wallet_id, amount, self.params.currency, new_nonce(), now, reference, payee_name
        )
        self.book.maybe_prune(now, self.params.max_payment_age)
        encoded = req.encode()
        self.book.add_request(req, encoded)
        return encoded

    def open_sealed(self, data: bytes) -> bytes:
        """A receive-only terminal holds no key, and its requests carry none: a sealed payment
        was sealed for someone else (``CannotDecrypt``)."""
        raise CannotDecrypt("a receive-only terminal has no encryption key")

    def receive(self, payment: bytes, now: int) -> Received:
        """Verify and keep a payment (exactly once); terminals sign no receipt."""
        verified, duplicate = self.book.verify(
            payment, trust=self.trust, params=self.params, payee=self.wallet_id, now=now
        )
        p = verified.payment
        if not duplicate:
            self.book.record(verified, now)
            self.held.append((now, payment))
        return Received(verified.payer, p.amount, p.counter, p.digest, None, duplicate)

    def payments_to_redeem(self) -> list[bytes]:
        """The payments held for redemption."""
        return [payment for _, payment in self.held]

    def redeemed(self, digests: set[bytes]) -> None:
        """Forget payments the settlement service confirmed as redeemed."""
        self.held = [(t, p) for t, p in self.held if m.digest(p) not in digests]

    def encode(self) -> bytes:
        """The terminal's state, for the caller to persist."""
        return cbor.encode(
            [
                self.wallet_id.raw,
                self.params.to_cbor(),
                [self.trust.root_der, self.trust.bank_certificates(), self.trust.crl_ders()],
                self.book.to_cbor(),
                [[t, payment] for t, payment in self.held],
            ]
        )

    @classmethod
    def decode(cls, data: bytes) -> ReceiveOnlyTerminal:
        """A terminal from ``encode``'s bytes."""
        try:
            v: Any = cbor.decode(data, path="terminal", max_bytes=64 * 1024 * 1024)
            if type(v) is not list or len(v) != 5:
                raise DecodeError("terminal", "expected an array of 5 items")
            root, banks, crls = v[2]
            return cls(
                WalletId(v[0]),
                NetworkParams.from_cbor(v[1], "terminal.params"),
                TrustStore.create(root, banks, crls),
                PayeeBook.from_cbor(v[3]),
                [(uint()(t, "terminal.held"), bstr(1)(p, "terminal.held")) for t, p in v[4]],
            )
        except (IndexError, KeyError, TypeError, ValueError) as exc:
            raise DecodeError("terminal", f"unreadable terminal state: {exc}") from None
