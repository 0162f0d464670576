"""The payee's memory: outstanding requests, paid nonces, and the payments already accepted.

Theory of operation: ``verify_payment`` checks everything that needs no memory; ``PayeeBook``
adds what does. A request-mode payment must answer an outstanding nonce; a one-way payment is
protected against replay by remembering ``(payer, counter)``. The same ``(payer, counter)`` with
the same payment (the same digest: what the payer signed, so a malleated or re-signed copy is
the same payment) is a re-send after a torn transfer (accepted once, then reported as a
duplicate); with another signed content it is a double spend. Entries are kept for the network's
maximum payment age, after which ``verify_payment`` refuses the payment as too old anyway, so
the book stays bounded. Secure elements and receive-only terminals both use it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from offcash.crypto.trust import TrustStore
from offcash.domain.ids import WalletId
from offcash.domain.network import NetworkParams
from offcash.encoding.fields import bstr, uint
from offcash.errors import DecodeError, Rejection, VerificationError
from offcash.protocol.messages import PaymentRequest, parse_payment, parse_request
from offcash.verification import VerifiedPayment, verify_parsed_payment

#: Requests a payee keeps outstanding at once; the oldest is dropped beyond this.
MAX_OUTSTANDING = 32


@dataclass
class PayeeBook:
    """What a payee remembers between payments (persisted with the device's state)."""

    outstanding: dict[bytes, bytes] = field(default_factory=dict)  # nonce -> encoded request
    paid: dict[bytes, int] = field(default_factory=dict)  # nonce -> time paid
    seen: dict[tuple[bytes, int], tuple[bytes, int]] = field(default_factory=dict)
    # (payer wallet id, counter) -> (payment digest, payment time)
    pruned_at: int = 0
    #: Outstanding requests already decoded, with the encoding each was decoded from (memory
    #: only: a restored book decodes each request again on first use).
    _decoded: dict[bytes, tuple[bytes, PaymentRequest]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def add_request(self, request: PaymentRequest, encoded: bytes) -> None:
        """Remember a request as outstanding, with its encoding (``request.encode()``: what is
        persisted, and what ``request_for`` decodes again after a restore)."""
        self.outstanding[request.nonce] = encoded
        self._decoded[request.nonce] = (encoded, request)
        while len(self.outstanding) > MAX_OUTSTANDING:
            oldest = next(iter(self.outstanding))
            del self.outstanding[oldest]
            self._decoded.pop(oldest, None)

    def request_for(self, nonce: bytes | None) -> PaymentRequest | None:
        """The outstanding request with this nonce, if any."""
        if nonce is None or nonce not in self.outstanding:
            return None
        return self._request(nonce)

    def _request(self, nonce: bytes) -> PaymentRequest:
        """The outstanding request with this nonce, decoded once."""
        encoded = self.outstanding[nonce]
        held = self._decoded.get(nonce)
        if held is not None and held[0] is encoded:
            return held[1]
        request = parse_request(encoded)
        self._decoded[nonce] = (encoded, request)
        return request

    def verify(
        self, payment: bytes, *, trust: TrustStore, params: NetworkParams, payee: WalletId, now: int
    ) -> tuple[VerifiedPayment, bool]:
        """Verify ``payment`` for ``payee`` against the stateless rules and this book.

        Returns the verified payment and whether it is a duplicate of one already accepted.
        Nothing is recorded: call ``record`` once the payee has credited it."""
        parsed = parse_payment(payment)
        verified = verify_parsed_payment(
            parsed,
            trust=trust,
            params=params,
            now=now,
            payee=payee,
            request=self.request_for(parsed.nonce),
        )
        return verified, self.is_duplicate(verified)

    def is_duplicate(self, verified: VerifiedPayment) -> bool:
        """Whether this exact payment was already accepted (a re-send after a torn transfer).

        Raises ``VerificationError`` if it conflicts with what the payee already holds: a
        different payment with the same payer and counter, or a nonce not outstanding."""
        payment = verified.payment
        held = self.seen.get((verified.payer.raw, payment.counter))
        if held is not None:
            # a book written before messages were named by their signed content holds the
            # SHA-256 of the bytes: the same bytes again are the same payment too
            if held[0] == payment.digest or held[0] == hashlib.sha256(payment.encoded).digest():
                return True
            raise VerificationError(
                Rejection.DOUBLE_SPEND, f"payer {verified.payer} counter {payment.counter}"
            )
        if payment.nonce is not None and payment.nonce not in self.outstanding:
            if payment.nonce in self.paid:
                raise VerificationError(Rejection.NONCE_USED)
            raise VerificationError(Rejection.UNKNOWN_NONCE)
        return False

    def record(self, verified: VerifiedPayment, now: int) -> None:
        """Remember an accepted payment and close its request."""
        payment = verified.payment
        key = (verified.payer.raw, payment.counter)
        # seen and paid only ever gain new keys in place; anything else rebuilds them, so a
        # persisted copy can be brought up to date by appending (offcash.se.journal)
        if key in self.seen:
            self.seen = dict(self.seen)
        self.seen[key] = (payment.digest, payment.time)
        if payment.nonce is not None:
            self.outstanding.pop(payment.nonce, None)
            self._decoded.pop(payment.nonce, None)
            if payment.nonce in self.paid:
                self.paid = dict(self.paid)
            self.paid[payment.nonce] = now

    def maybe_prune(self, now: int, max_age: int, every: int = 3600) -> None:
        """``prune``, at most once per ``every`` seconds of device time (pruning is O(n))."""
        if now - self.pruned_at >= every:
            self.prune(now, max_age)

    def prune(self, now: int, max_age: int) -> None:
        """Forget what is older than ``max_age``: such payments are refused as too old anyway."""
        horizon = now - max_age
        self.pruned_at = now
        self.seen = {k: v for k, v in self.seen.items() if v[1] >= horizon}
        self.paid = {k: t for k, t in self.paid.items() if t >= horizon}
        self.outstanding = {
            n: r for n, r in self.outstanding.items() if self._request(n).time >= horizon
        }
        self._decoded = {n: d for n, d in self._decoded.items() if n in self.outstanding}

    def to_cbor(self) -> list[Any]:
        """A CBOR-ready form for persistence."""
        return [
            self.outstanding,
            self.paid,
            [[p, c, d, t] for (p, c), (d, t) in self.seen.items()],
            self.pruned_at,
        ]

    @classmethod
    def from_cbor(cls, value: list[Any]) -> PayeeBook:
        """The book from ``to_cbor``'s form; ``DecodeError`` if it is not that form."""
        path = "book"
        if type(value) is not list or len(value) != 4:
            raise DecodeError(path, "expected [outstanding, paid, seen, pruned_at]")
        outstanding, paid, seen, pruned_at = value
        if type(outstanding) is not dict or type(paid) is not dict or type(seen) is not list:
            raise DecodeError(path, "expected two maps and an array")
        nonce, time, request, digest = bstr(1, 64), uint(), bstr(1), bstr(32, 32)
        book = cls(pruned_at=time(pruned_at, f"{path}.pruned_at"))
        for n, r in outstanding.items():
            book.outstanding[nonce(n, f"{path}.outstanding")] = request(r, f"{path}.outstanding")
        for n, t in paid.items():
            book.paid[nonce(n, f"{path}.paid")] = time(t, f"{path}.paid")
        for i, item in enumerate(seen):
            where = f"{path}.seen[{i}]"
            if type(item) is not list or len(item) != 4:
                raise DecodeError(where, "expected [payer, counter, digest, time]")
            p, c, d, t = item
            book.seen[(nonce(p, where), time(c, where))] = (digest(d, where), time(t, where))
        return book
