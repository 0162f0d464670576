"""Verification for settlement: the core's pure verifiers, on a CRL-free trust store.

Theory of operation: settlement verifies every message with ``offcash.verification`` (the very
functions payee devices run offline). ``settlement_trust`` is a ``TrustStore`` without CRLs:
revocation is judged by the ledger's own rule (did this payee hold a CRL revoking the payer when
it accepted?), not by today's CRLs.

``redeemable`` is the whole per-payment check of a terminal's redemption, as a pure function of
the bytes (a ``Spend`` or a ``Refused`` with its reason): ``offcash.ledger.pool`` runs it in
worker processes, and the service runs the very same function inline for small uploads.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from offcash.crypto.trust import TrustStore
from offcash.domain.ids import WalletId
from offcash.domain.network import NetworkParams
from offcash.errors import DecodeError, Rejection, VerificationError
from offcash.ledger.settle import Spend
from offcash.protocol import messages as m
from offcash.verification import verify_parsed_payment, verify_unload

#: Rejections that mean the message is not from a wallet any bank of this network certified.
COUNTERFEIT = frozenset(
    {
        Rejection.UNKNOWN_ISSUER,
        Rejection.BAD_CERTIFICATE_SIGNATURE,
        Rejection.BAD_CERTIFICATE,
        Rejection.BAD_SIGNATURE,
    }
)


def settlement_trust(root_der: bytes, bank_ders: list[bytes]) -> TrustStore:
    """The store settlement verifies with: this network's root and banks, and no CRLs.

    ``TrustStore`` verifies each distinct wallet certificate once and checks its validity on
    every use, so thousands of payments sharing a few certificates cost one signature each."""
    return TrustStore.create(root_der, bank_ders)


def payment(
    data: bytes,
    trust: TrustStore,
    params: NetworkParams,
    accepted_at: int | None,
    payee: WalletId | None = None,
) -> Spend:
    """Verify a payment as its payee did at ``accepted_at`` (None: at the payment's own time).

    This is ``verify_payment`` (``parse_payment`` then ``verify_parsed_payment``), parsing once:
    the acceptance time may be the payment's own."""
    p = m.parse_payment(data)
    v = verify_parsed_payment(
        p,
        trust=trust,
        params=params,
        now=p.time if accepted_at is None else accepted_at,
        payee=payee,
    )
    return Spend(
        v.payer.raw,
        p.counter,
        p.digest,
        "payment",
        p.payee.raw,
        p.amount,
        p.time,
        v.signer.bank,
        bytes(data),
    )


def unload(data: bytes, trust: TrustStore, params: NetworkParams) -> Spend:
    """Verify an SE-signed unload request."""
    u, signer = verify_unload(data, trust=trust, params=params)
    return Spend(
        signer.wallet_id.raw,
        u.counter,
        m.digest(data),
        "unload",
        None,
        u.amount,
        u.time,
        signer.bank,
        bytes(data),
    )


@dataclass(frozen=True, slots=True)
class Refused:
    """A payment refused at settlement: its digest, the reason (a ``Rejection`` name or
    ``DECODE``), whether it is a counterfeit (see ``COUNTERFEIT``) and the amount it claims
    (0 if it does not decode)."""

    digest: bytes
    reason: str
    counterfeit: bool
    amount: int


def refusal(data: bytes, exc: VerificationError | DecodeError) -> Refused:
    """The ``Refused`` for ``data`` that failed with ``exc``."""
    if isinstance(exc, DecodeError):
        return Refused(m.digest(data), "DECODE", False, 0)
    counterfeit = exc.rejection in COUNTERFEIT
    amount = 0
    if counterfeit:
        with contextlib.suppress(DecodeError):
            amount = m.parse_payment(data).amount
    return Refused(m.digest(data), exc.rejection.name, counterfeit, amount)


def redeemable(
    data: bytes, trust: TrustStore, params: NetworkParams, terminal: WalletId, now: int
) -> Spend | Refused:
    """Check a payment a receive-only terminal redeems at ``now``: verified at its own time
    (a terminal does not report when it accepted), addressed to the terminal, not from the
    future. The spend is returned without its message (the caller has the bytes)."""
    try:
        sp = payment(data, trust, params, None, payee=terminal)
        if sp.time > now + params.clock_skew:
            raise VerificationError(Rejection.FROM_THE_FUTURE)
    except (VerificationError, DecodeError) as exc:
        return refusal(data, exc)
    return Spend(
        sp.payer, sp.counter, sp.digest, sp.kind, sp.payee, sp.amount, sp.time, sp.payer_bank, b""
    )
