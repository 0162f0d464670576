"""Verification of signed messages: one pure function per message kind.

Theory of operation: nothing here reads a clock, a file or a database. A verifier passes in
what it holds (a ``TrustStore`` with its CRLs, the ``NetworkParams``), the time it takes as
"now", and what it expects (the payee it is, the request it made). The payee device runs
``verify_payment`` offline before crediting; the settlement service runs the very same function
online. Each failed rule raises ``VerificationError`` with a ``Rejection`` naming it; state that
only the holder knows (is this nonce outstanding? was this payment seen?) is checked by the
holder, after this function, with the same rejection codes.
"""

from __future__ import annotations

from dataclasses import dataclass

from offcash.crypto.algorithms import SignatureAlgorithm, is_canonical, verify
from offcash.crypto.pki import common_name
from offcash.crypto.trust import TrustStore, WalletCertificate
from offcash.domain.ids import WalletId
from offcash.domain.network import NetworkParams
from offcash.encoding.cose import Sign1
from offcash.errors import Rejection, VerificationError
from offcash.protocol import messages as m


@dataclass(frozen=True, slots=True)
class Verified:
    """A message that passed verification, with the certificate of the wallet that signed it."""

    signer: WalletCertificate


@dataclass(frozen=True, slots=True)
class VerifiedPayment(Verified):
    """A payment that passed every stateless rule."""

    payment: m.Payment

    @property
    def payer(self) -> WalletId:
        """The paying wallet."""
        return self.signer.wallet_id


def _check_wallet_signature(
    envelope: Sign1, trust: TrustStore, params: NetworkParams, at: int
) -> WalletCertificate:
    if not params.accepts(envelope.alg, at):
        raise VerificationError(Rejection.ALGORITHM_NOT_ALLOWED, envelope.alg.short)
    signer = trust.wallet_certificate(envelope.certificate_der, at)
    if signer.algorithm is not envelope.alg:
        raise VerificationError(Rejection.ALGORITHM_NOT_ALLOWED, "header alg differs from the key")
    legacy = params.legacy
    if (
        legacy is not None
        and legacy in (signer.algorithm, signer.issuer_algorithm)
        and signer.not_after > params.legacy_until
    ):  # an old CA's signature (a broken key's, perhaps) vouches for nothing after the end
        raise VerificationError(
            Rejection.ALGORITHM_NOT_ALLOWED,
            f"a certificate of {legacy.short} (key or issuer) valid after the migration's end",
        )
    _check_canonical(envelope.alg, envelope.signature)
    if not verify(signer.public_key, envelope.signature, envelope.to_be_signed()):
        raise VerificationError(Rejection.BAD_SIGNATURE)
    return signer


def _check_canonical(alg: SignatureAlgorithm, signature: bytes) -> None:
    """Refuse a signature in a form ``sign`` never produces (a relay's twin of a real one)."""
    if not is_canonical(alg, signature):
        raise VerificationError(Rejection.NON_CANONICAL_SIGNATURE, f"{alg.short} with a high s")


def _check_time(time: int, now: int, params: NetworkParams) -> None:
    if time > now + params.clock_skew:
        raise VerificationError(Rejection.FROM_THE_FUTURE, f"{time} > {now} + {params.clock_skew}")
    if time < now - params.max_payment_age:
        raise VerificationError(Rejection.TOO_OLD, f"{time} < {now} - {params.max_payment_age}")


def verify_payment(
    data: bytes,
    *,
    trust: TrustStore,
    params: NetworkParams,
    now: int,
    payee: WalletId | None = None,
    request: m.PaymentRequest | None = None,
) -> VerifiedPayment:
    """Verify a payment against every stateless rule (docs/PROTOCOL.md, "Verifying a payment").

    ``now`` is the verifier's time of acceptance. ``payee``, if given, must be the addressee;
    ``request``, if given, must be what the payment answers (nonce, payee, amount, currency).
    Raises ``DecodeError`` for malformed input and ``VerificationError`` for a broken rule.
    """
    payment = m.parse_payment(data)
    return verify_parsed_payment(
        payment, trust=trust, params=params, now=now, payee=payee, request=request
    )


def verify_parsed_payment(
    payment: m.Payment,
    *,
    trust: TrustStore,
    params: NetworkParams,
    now: int,
    payee: WalletId | None = None,
    request: m.PaymentRequest | None = None,
) -> VerifiedPayment:
    """``verify_payment`` for a payment already decoded with ``messages.parse_payment``."""
    signer = _check_wallet_signature(payment.envelope, trust, params, payment.time)
    _check_time(payment.time, now, params)
    if payment.currency != params.currency:
        raise VerificationError(
            Rejection.CURRENCY_MISMATCH, f"{payment.currency} on a {params.currency} network"
        )
    if payment.amount <= 0:
        raise VerificationError(Rejection.NON_POSITIVE_AMOUNT)
    if payment.payee == signer.wallet_id:
        raise VerificationError(Rejection.SELF_PAYMENT)
    if payee is not None and payment.payee != payee:
        raise VerificationError(Rejection.WRONG_PAYEE, f"addressed to {payment.payee}")
    if request is not None:
        if payment.nonce != request.nonce:
            raise VerificationError(Rejection.NONCE_MISMATCH)
        if payment.payee != request.payee:
            raise VerificationError(Rejection.WRONG_PAYEE, f"addressed to {payment.payee}")
        if payment.amount != request.amount:
            raise VerificationError(
                Rejection.AMOUNT_MISMATCH, f"{payment.amount} != {request.amount}"
            )
        if payment.currency != request.currency:
            raise VerificationError(
                Rejection.CURRENCY_MISMATCH, f"{payment.currency} != {request.currency}"
            )
    limits = signer.limits
    if payment.amount > limits.max_payment:
        raise VerificationError(
            Rejection.PAYER_LIMIT_EXCEEDED, f"amount {payment.amount} > {limits.max_payment}"
        )
    if payment.counter <= signer.counter_base:
        raise VerificationError(
            Rejection.PAYER_LIMIT_EXCEEDED, "counter not after the certified sync"
        )
    if payment.counter - signer.counter_base > limits.max_offline_payments:
        raise VerificationError(
            Rejection.PAYER_LIMIT_EXCEEDED, "more offline payments than certified"
        )
    if payment.time - signer.not_before > limits.max_offline_seconds:
        raise VerificationError(Rejection.PAYER_LIMIT_EXCEEDED, "longer offline than certified")
    return VerifiedPayment(signer=signer, payment=payment)


def verify_receipt(
    data: bytes, *, trust: TrustStore, params: NetworkParams, payment: m.Payment
) -> m.Receipt:
    """Verify the payee's receipt for ``payment``: signed by the payee, for this payment."""
    receipt = m.parse_receipt(data)
    signer = _check_wallet_signature(receipt.envelope, trust, params, receipt.time)
    if signer.wallet_id != payment.payee:
        raise VerificationError(Rejection.WRONG_PAYEE, "receipt not signed by the payee")
    if receipt.payment != payment.digest:
        raise VerificationError(Rejection.NONCE_MISMATCH, "receipt is for another payment")
    return receipt


def verify_unload(
    data: bytes, *, trust: TrustStore, params: NetworkParams
) -> tuple[m.UnloadRequest, WalletCertificate]:
    """Verify an SE-signed unload request; returns it with the signer's certificate."""
    unload = m.parse_unload(data)
    signer = _check_wallet_signature(unload.envelope, trust, params, unload.time)
    if unload.currency != params.currency:
        raise VerificationError(Rejection.CURRENCY_MISMATCH, unload.currency)
    if unload.amount <= 0:
        raise VerificationError(Rejection.NON_POSITIVE_AMOUNT)
    return unload, signer


def verify_report(
    data: bytes, *, trust: TrustStore, params: NetworkParams
) -> tuple[m.SyncReport, WalletCertificate]:
    """Verify an SE-signed sync report; returns it with the signer's certificate.

    The certificate is checked at the report's time: a wallet whose certificate expired offline
    can still sync (renewal is what the sync is for), so the time is the SE's own claim and the
    settlement service bounds it."""
    report = m.parse_report(data)
    not_after = trust.wallet_certificate(report.envelope.certificate_der, None).not_after
    signer = _check_wallet_signature(report.envelope, trust, params, min(report.time, not_after))
    return report, signer


def legacy_end(params: NetworkParams) -> int:
    """After an algorithm migration, the last instant anything signed under the old algorithm
    is accepted, whatever time it claims: ``legacy_until + max_payment_age`` (a payment signed
    at ``legacy_until`` is presented until then; rule 9 refuses anything older)."""
    return params.legacy_until + params.max_payment_age


def _check_bank_signature(
    envelope: Sign1, trust: TrustStore, params: NetworkParams, at: int, now: int | None
) -> str:
    if not params.accepts(envelope.alg, at):
        raise VerificationError(Rejection.ALGORITHM_NOT_ALLOWED, envelope.alg.short)
    if envelope.alg is params.legacy and now is not None and now > legacy_end(params):
        # its signed time is the signer's word: a broken old CA key could backdate it
        raise VerificationError(
            Rejection.ALGORITHM_NOT_ALLOWED, f"{envelope.alg.short} bank signatures have ended"
        )
    bank = trust.bank_certificate(envelope.certificate_der)
    _check_canonical(envelope.alg, envelope.signature)
    if not verify(bank.public_key(), envelope.signature, envelope.to_be_signed()):  # type: ignore[arg-type]
        raise VerificationError(Rejection.BAD_SIGNATURE)
    return common_name(bank.subject)


def verify_voucher(
    data: bytes, *, trust: TrustStore, params: NetworkParams, wallet: WalletId, bank: str, now: int
) -> m.LoadVoucher:
    """Verify a load voucher: signed by ``bank`` (the wallet's own), for ``wallet``, unexpired."""
    voucher = m.parse_voucher(data)
    if _check_bank_signature(voucher.envelope, trust, params, voucher.time, now) != bank:
        raise VerificationError(Rejection.UNKNOWN_ISSUER, "voucher not from the wallet's bank")
    if voucher.wallet != wallet:
        raise VerificationError(Rejection.WRONG_WALLET, f"voucher is for {voucher.wallet}")
    if voucher.currency != params.currency:
        raise VerificationError(Rejection.CURRENCY_MISMATCH, voucher.currency)
    if voucher.amount <= 0:
        raise VerificationError(Rejection.NON_POSITIVE_AMOUNT)
    if now > voucher.expires:
        raise VerificationError(Rejection.TOO_OLD, "voucher expired")
    return voucher


def verify_ack(
    data: bytes,
    *,
    trust: TrustStore,
    params: NetworkParams,
    wallet: WalletId,
    bank: str,
    now: int | None = None,
) -> m.SyncAck:
    """Verify a sync acknowledgement: signed by the wallet's bank, for this wallet (at ``now``,
    if given: an old-algorithm one only until ``legacy_end``)."""
    ack = m.parse_ack(data)
    if _check_bank_signature(ack.envelope, trust, params, ack.time, now) != bank:
        raise VerificationError(
            Rejection.UNKNOWN_ISSUER, "acknowledgement not from the wallet's bank"
        )
    if ack.wallet != wallet:
        raise VerificationError(Rejection.WRONG_WALLET, f"acknowledgement is for {ack.wallet}")
    return ack
