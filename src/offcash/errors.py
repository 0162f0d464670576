"""The typed errors of offcash.

Theory of operation: every refusal offcash can make is an exception from this module, so a
caller (a wallet app, the settlement service, the CLI) can tell *why* without parsing text.
Errors split by blame, as in h11: a ``RemoteError`` means the other party (a peer device, an
uploaded file, an HTTP client) sent something unacceptable; a ``LocalError`` means this side
refuses or cannot act (a limit, the balance, a wrong PIN). Any other exception escaping a
decoder or a verifier is a bug.
"""

from __future__ import annotations

import enum


class OffcashError(Exception):
    """Base of every error offcash raises on purpose."""

    #: Stable machine-readable code, used in problem documents and CLI JSON output.
    code: str = "offcash-error"


class RemoteError(OffcashError):
    """The input from the other party is unacceptable (malformed, forged, replayed...)."""

    code = "remote-error"


class LocalError(OffcashError):
    """This side refuses or cannot act (limits, balance, PIN, missing enrolment...)."""

    code = "local-error"


class DecodeError(RemoteError):
    """An encoded message is malformed; ``path`` names the field (e.g. ``payload.amount``)."""

    code = "decode-error"

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path or '<message>'}: {reason}")
        self.path = path
        self.reason = reason


class Rejection(enum.Enum):
    """Every reason the verification of a signed message can fail."""

    ALGORITHM_NOT_ALLOWED = "signature algorithm not allowed by the network"
    BAD_CERTIFICATE = "signer certificate is malformed or not a wallet certificate"
    UNKNOWN_ISSUER = "signer certificate is not issued by a bank the root certified"
    BAD_CERTIFICATE_SIGNATURE = "signer certificate signature does not verify"
    CERT_NOT_YET_VALID = "signer certificate not yet valid at the message time"
    CERT_EXPIRED = "signer certificate expired at the message time"
    REVOKED = "signer is revoked in a CRL held by the verifier"
    BAD_SIGNATURE = "message signature does not verify"
    NON_CANONICAL_SIGNATURE = "signature is not in canonical form (ECDSA with a high s)"
    FROM_THE_FUTURE = "message time is later than the verifier's clock allows"
    TOO_OLD = "message is older than the network's maximum payment age"
    WRONG_PAYEE = "payment is addressed to another payee"
    WRONG_WALLET = "message is addressed to another wallet"
    NONCE_MISMATCH = "payment does not answer this request's nonce"
    UNKNOWN_NONCE = "payment answers no outstanding request"
    NONCE_USED = "request was already paid"
    AMOUNT_MISMATCH = "amount differs from the request"
    CURRENCY_MISMATCH = "currency differs from the request or the network"
    NON_POSITIVE_AMOUNT = "amount must be positive"
    PAYER_LIMIT_EXCEEDED = "payment exceeds a limit certified for the payer"
    REPLAYED = "payment from this payer with this counter was already accepted"
    DOUBLE_SPEND = "another payment with the same payer and counter is known"
    SELF_PAYMENT = "payer and payee are the same wallet"


class VerificationError(RemoteError):
    """A signed message failed verification; ``rejection`` says which rule."""

    code = "verification-failed"

    def __init__(self, rejection: Rejection, detail: str = "") -> None:
        text = rejection.value if not detail else f"{rejection.value}: {detail}"
        super().__init__(text)
        self.rejection = rejection
        self.detail = detail


class Limit(enum.Enum):
    """The offline limits a bank sets and a secure element enforces (Polaris 5.5.11)."""

    MAX_BALANCE = "maximum balance held"
    MAX_PAYMENT = "maximum single payment"
    MAX_OFFLINE_PAYMENTS = "maximum number of offline payments since the last sync"
    MAX_OFFLINE_VALUE = "maximum cumulative value sent offline since the last sync"
    MAX_OFFLINE_SECONDS = "maximum time since the last sync (seconds)"
    MAX_LOG_ENTRIES = "maximum log entries held before a sync"
    MAX_PAID_REQUESTS = "maximum requests remembered as paid"


class LimitExceeded(LocalError):
    """An operation would break a limit; names the limit, the value it would reach and the bound."""

    code = "limit-exceeded"

    def __init__(self, limit: Limit, value: int, bound: int) -> None:
        super().__init__(f"{limit.value}: {value} would exceed {bound}")
        self.limit = limit
        self.value = value
        self.bound = bound


class InsufficientFunds(LocalError):
    """The secure element holds less than the amount asked for."""

    code = "insufficient-funds"

    def __init__(self, balance: int, amount: int) -> None:
        super().__init__(f"balance {balance} is less than {amount}")
        self.balance = balance
        self.amount = amount


class MoneyError(LocalError, ValueError):
    """An amount or currency is invalid, or currencies are mixed (a ``ValueError`` too: a bad
    amount passed to a secure element is a bad argument)."""

    code = "invalid-money"


class SecureElementError(LocalError):
    """The secure element cannot act (not enrolled, state unreadable, wrong PIN...)."""

    code = "secure-element"


class SecureElementRevoked(SecureElementError):
    """The secure element holds a CRL from its bank that revokes its own certificate: it signs
    no payment and no unload any more (what it already signed it can still re-send)."""

    code = "se-revoked"


class WrongPin(SecureElementError):
    """The PIN does not unseal the secure element's state."""

    code = "wrong-pin"


class WrongPuk(WrongPin):
    """A card's PUK is wrong (RESET RETRY COUNTER refused; its own tries count down)."""

    code = "wrong-puk"


class PinBlocked(WrongPin):
    """The secure element refuses every PIN: too many wrong tries blocked it (a card unblocks
    it with its PUK, see docs/APDU.md)."""

    code = "pin-blocked"


class CardNotAuthenticated(SecureElementError):
    """The card in the reader did not prove it holds the key of the wallet's certificate
    (INTERNAL AUTHENTICATE, docs/APDU.md): another card, or a fake one. It was given no PIN."""

    code = "card-not-authenticated"


class CannotDecrypt(RemoteError):
    """A sealed message that does not open with this key: sealed for someone else, or altered
    on the way."""

    code = "cannot-decrypt"


class ServiceUnavailable(OffcashError):
    """The settlement service or its database cannot be reached now (a connection refused or
    cut, a timeout, a database down): nothing is known to have happened; retry later (calls
    that move money take an idempotency key, so a retry takes effect once)."""

    code = "service-unavailable"


class TransportError(RemoteError):
    """A QR code, text or file could not be read as an offcash message."""

    code = "transport-error"


class ProtocolStateError(LocalError):
    """A payment exchange was driven out of order (a bug in the caller, not the peer's fault)."""

    code = "protocol-state"
