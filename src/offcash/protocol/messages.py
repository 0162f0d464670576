"""Every offcash message, field by field, with strict encoding and decoding.

Theory of operation: a ``PaymentRequest`` is plain deterministic CBOR (the payee may be a
device without a key). Every other message is a COSE_Sign1 (``offcash.encoding.cose``) whose
payload is a deterministic CBOR map with small integer keys, and whose protected header names
its ``Kind``. ``parse_*`` functions check structure and types only and return the message with
its ``Sign1`` envelope; whether a signed message is *acceptable* is decided by
``offcash.verification``. docs/PROTOCOL.md specifies each map; keep the two in step.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import cbor2

from offcash.crypto.algorithms import PrivateKey
from offcash.crypto.signer import SigningKey
from offcash.domain.ids import NONCE_BYTES, WALLET_ID_BYTES, WalletId
from offcash.domain.money import Currency, Money, is_known_currency
from offcash.encoding import cbor, cose, sealed
from offcash.encoding.cose import Kind, Sign1
from offcash.encoding.fields import (
    Field,
    array_of,
    bstr,
    converted,
    int_in,
    read,
    tstr,
    uint,
    write,
)
from offcash.errors import DecodeError

DIGEST_BYTES = 32


def _currency(code: str) -> str:
    if not is_known_currency(code):
        raise DecodeError("", f"unknown ISO 4217 currency {code!r}")
    return code


_WALLET = converted(bstr(WALLET_ID_BYTES, WALLET_ID_BYTES), WalletId)
_NONCE = bstr(NONCE_BYTES, NONCE_BYTES)
_DIGEST = bstr(DIGEST_BYTES, DIGEST_BYTES)
_CURRENCY = converted(tstr(3), _currency)
_AMOUNT = uint()
_TIME = uint(2**40)
_REFERENCE = tstr(140)


def digest(message: bytes) -> bytes:
    """How payee memory, receipts, logs and the ledger name a message.

    A signed message (a COSE_Sign1) is named by what was signed (``Sign1.digest``: SHA-256 of
    its ``Sig_structure``, the protected header and payload), never by its signature bytes, so
    a malleated or re-signed copy of a payment is the same payment. Anything else (an unsigned
    request, bytes that do not decode) is named by the SHA-256 of its bytes."""
    try:
        return cose.decode_sign1(message).digest
    except DecodeError:
        return hashlib.sha256(message).digest()


def _raw(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.raw if type(v) is WalletId else v) for k, v in values.items()}


def _signed(
    kind: Kind, schema: dict[int, Field], values: dict[str, Any], key: SigningKey, cert: bytes
) -> bytes:
    return cose.sign1(kind, readable_payload(kind, schema, values), key, cert)


def readable_payload(kind: Kind, schema: dict[int, Field], values: dict[str, Any]) -> bytes:
    """The payload for ``values``, refused before anything signs it unless the strict decoder
    every reader uses (``_open``) reads it back as exactly ``values``: a signer never signs a
    message nobody can read. ``TypeError`` for a value CBOR cannot hold, ``ValueError`` for
    one the decoder refuses (a ``str`` payee, a ``bool`` or negative amount, a long reference)."""
    name = kind.name.lower()
    try:
        payload = cbor.encode(write(schema, _raw(values)))
    except (cbor2.CBOREncodeError, TypeError, ValueError) as exc:
        raise TypeError(f"cannot encode this {name}: {exc}") from None
    try:
        decoded = read(cbor.decode(payload, path=name), name, schema)
    except DecodeError as exc:
        raise ValueError(f"refusing to sign an unreadable {name}: {exc}") from None
    if _raw(decoded) != _raw({f.name: values[f.name] for f in schema.values()}):
        raise ValueError(f"refusing to sign a {name} that does not read back as given")
    return payload


def _open(
    data: bytes, kind: Kind, schema: dict[int, Field], name: str
) -> tuple[Sign1, dict[str, Any]]:
    envelope = cose.decode_sign1(data, name)
    if envelope.kind is not kind:
        raise DecodeError(
            f"{name}.protected.kind", f"expected {kind.name}, got {envelope.kind.name}"
        )
    payload = read(cbor.decode(envelope.payload, path=f"{name}.payload"), f"{name}.payload", schema)
    return envelope, payload


# --- PaymentRequest (unsigned) -----------------------------------------------------------


def _kem_public_key(raw: bytes) -> bytes:
    try:
        sealed.check_public_key(raw)
    except ValueError as exc:
        raise DecodeError("", str(exc)) from None
    return raw


_REQUEST = {
    0: Field("kind", int_in(frozenset({int(Kind.PAYMENT_REQUEST)}))),
    1: Field("version", int_in(frozenset({cose.PROTOCOL_VERSION}))),
    2: Field("payee", _WALLET),
    3: Field("amount", _AMOUNT),
    4: Field("currency", _CURRENCY),
    5: Field("nonce", _NONCE),
    6: Field("time", _TIME),
    7: Field("reference", _REFERENCE, required=False),
    8: Field("payee_name", tstr(64), required=False),
    9: Field("encryption_key", converted(bstr(32, 1216), _kem_public_key), required=False),
}


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    """The payee's request: who, how much, a fresh nonce. ``payee_name`` is a display hint."""

    payee: WalletId
    amount: int
    currency: str
    nonce: bytes
    time: int
    reference: str | None = None
    payee_name: str | None = None
    #: The payee's KEM public key (``offcash.encoding.sealed``): seal the payment for it.
    encryption_key: bytes | None = None

    @property
    def money(self) -> Money:
        """The requested amount as ``Money``."""
        return Money(self.amount, Currency.of(self.currency))

    def encode(self) -> bytes:
        """The request's deterministic CBOR bytes."""
        values = {
            "kind": int(Kind.PAYMENT_REQUEST),
            "version": cose.PROTOCOL_VERSION,
            "payee": self.payee,
            "amount": self.amount,
            "currency": self.currency,
            "nonce": self.nonce,
            "time": self.time,
            "reference": self.reference,
            "payee_name": self.payee_name,
            "encryption_key": self.encryption_key,
        }
        return cbor.encode(write(_REQUEST, _raw(values)))


def parse_request(data: bytes) -> PaymentRequest:
    """Decode a payment request strictly."""
    fields = read(cbor.decode(data, path="request"), "request", _REQUEST)
    del fields["kind"], fields["version"]
    return PaymentRequest(**fields)


# --- Payment ------------------------------------------------------------------------------

_PAYMENT = {
    1: Field("payee", _WALLET),
    2: Field("amount", _AMOUNT),
    3: Field("currency", _CURRENCY),
    4: Field("counter", uint()),
    5: Field("time", _TIME),
    6: Field("nonce", _NONCE, required=False),
    7: Field("reference", _REFERENCE, required=False),
}


@dataclass(frozen=True, slots=True)
class Payment:
    """A signed offline payment. The payer is the wallet named by the certificate in the header;
    ``nonce`` answers a request, or is None for a one-way payment."""

    envelope: Sign1
    encoded: bytes
    #: The payment's identity, ``digest(encoded)``: SHA-256 of what the payer signed.
    digest: bytes
    payee: WalletId
    amount: int
    currency: str
    counter: int
    time: int
    nonce: bytes | None
    reference: str | None


def sign_payment(
    key: PrivateKey,
    certificate_der: bytes,
    *,
    payee: WalletId,
    amount: int,
    currency: str,
    counter: int,
    time: int,
    nonce: bytes | None,
    reference: str | None,
) -> bytes:
    """A signed payment (COSE_Sign1 of kind PAYMENT)."""
    values = {
        "payee": payee,
        "amount": amount,
        "currency": currency,
        "counter": counter,
        "time": time,
        "nonce": nonce,
        "reference": reference,
    }
    return _signed(Kind.PAYMENT, _PAYMENT, values, key, certificate_der)


def parse_payment(data: bytes) -> Payment:
    """Decode a payment strictly (no signature check)."""
    envelope, fields = _open(data, Kind.PAYMENT, _PAYMENT, "payment")
    encoded = bytes(data)
    return Payment(envelope=envelope, encoded=encoded, digest=envelope.digest, **fields)


# --- Receipt ------------------------------------------------------------------------------

_RECEIPT = {1: Field("payment", _DIGEST), 2: Field("time", _TIME)}


@dataclass(frozen=True, slots=True)
class Receipt:
    """The payee's signed acknowledgement of a payment (by the payment's digest)."""

    envelope: Sign1
    encoded: bytes
    payment: bytes
    time: int


def sign_receipt(key: PrivateKey, certificate_der: bytes, *, payment: bytes, time: int) -> bytes:
    """A signed receipt for the payment whose digest is ``payment``."""
    return _signed(Kind.RECEIPT, _RECEIPT, {"payment": payment, "time": time}, key, certificate_der)


def parse_receipt(data: bytes) -> Receipt:
    """Decode a receipt strictly (no signature check)."""
    envelope, fields = _open(data, Kind.RECEIPT, _RECEIPT, "receipt")
    return Receipt(envelope=envelope, encoded=bytes(data), **fields)


# --- LoadVoucher (bank-signed) --------------------------------------------------------------

_VOUCHER = {
    1: Field("wallet", _WALLET),
    2: Field("amount", _AMOUNT),
    3: Field("currency", _CURRENCY),
    4: Field("voucher_id", _NONCE),
    5: Field("time", _TIME),
    6: Field("expires", _TIME),
}


@dataclass(frozen=True, slots=True)
class LoadVoucher:
    """A bank's single-use order to credit ``amount`` into one wallet's secure element."""

    envelope: Sign1
    encoded: bytes
    wallet: WalletId
    amount: int
    currency: str
    voucher_id: bytes
    time: int
    expires: int


def sign_voucher(
    key: SigningKey,
    bank_certificate_der: bytes,
    *,
    wallet: WalletId,
    amount: int,
    currency: str,
    voucher_id: bytes,
    time: int,
    expires: int,
) -> bytes:
    """A bank-signed load voucher."""
    values = {
        "wallet": wallet,
        "amount": amount,
        "currency": currency,
        "voucher_id": voucher_id,
        "time": time,
        "expires": expires,
    }
    return _signed(Kind.LOAD_VOUCHER, _VOUCHER, values, key, bank_certificate_der)


def parse_voucher(data: bytes) -> LoadVoucher:
    """Decode a load voucher strictly (no signature check)."""
    envelope, fields = _open(data, Kind.LOAD_VOUCHER, _VOUCHER, "voucher")
    return LoadVoucher(envelope=envelope, encoded=bytes(data), **fields)


# --- UnloadRequest (SE-signed) --------------------------------------------------------------

_UNLOAD = {
    1: Field("amount", _AMOUNT),
    2: Field("currency", _CURRENCY),
    3: Field("counter", uint()),
    4: Field("time", _TIME),
}


@dataclass(frozen=True, slots=True)
class UnloadRequest:
    """The secure element's single-use order, already debited, to credit the owner's account.
    It takes a counter value like a payment, so it is single-use in the same way."""

    envelope: Sign1
    encoded: bytes
    amount: int
    currency: str
    counter: int
    time: int


def sign_unload(
    key: PrivateKey, certificate_der: bytes, *, amount: int, currency: str, counter: int, time: int
) -> bytes:
    """An SE-signed unload request."""
    values = {"amount": amount, "currency": currency, "counter": counter, "time": time}
    return _signed(Kind.UNLOAD_REQUEST, _UNLOAD, values, key, certificate_der)


def parse_unload(data: bytes) -> UnloadRequest:
    """Decode an unload request strictly (no signature check)."""
    envelope, fields = _open(data, Kind.UNLOAD_REQUEST, _UNLOAD, "unload")
    return UnloadRequest(envelope=envelope, encoded=bytes(data), **fields)


# --- SyncReport (SE-signed) and SyncAck (bank-signed) ----------------------------------------


def _crl_held(v: Any, path: str) -> tuple[str, int]:
    """``[bank, crl_number]``: a bank's CRL the reporting SE holds."""
    if type(v) is not list or len(v) != 2:
        raise DecodeError(path, "expected [bank, crl_number]")
    return tstr(64)(v[0], f"{path}[0]"), uint()(v[1], f"{path}[1]")


#: at most this many CRLs (one per bank) in a report
MAX_REPORTED_CRLS = 64

_REPORT = {
    1: Field("sync_seq", uint()),
    2: Field("counter", uint()),
    3: Field("balance", _AMOUNT),
    4: Field("currency", _CURRENCY),
    5: Field("entries", uint()),
    6: Field("log_digest", _DIGEST),
    7: Field("time", _TIME),
    8: Field("crls", array_of(_crl_held, MAX_REPORTED_CRLS), required=False),
}


@dataclass(frozen=True, slots=True)
class SyncReport:
    """The secure element's signed statement of its state and of its log since the last sync.
    ``log_digest`` chains the ``entries`` log entries uploaded beside it (``offcash.se.log``)."""

    envelope: Sign1
    encoded: bytes
    sync_seq: int
    counter: int
    balance: int
    currency: str
    entries: int
    log_digest: bytes
    time: int
    #: ``(bank, crl_number)`` of each CRL the SE holds (None: a report that does not say)
    crls: list[tuple[str, int]] | None = None


def sign_report(key: PrivateKey, certificate_der: bytes, **values: Any) -> bytes:
    """An SE-signed sync report (keyword arguments: the SyncReport fields; ``crls`` optional)."""
    values.setdefault("crls", None)
    if values["crls"] is not None:  # CBOR arrays, read back as tuples
        values["crls"] = [(bank, number) for bank, number in values["crls"]]
    return _signed(Kind.SYNC_REPORT, _REPORT, values, key, certificate_der)


def parse_report(data: bytes) -> SyncReport:
    """Decode a sync report strictly (no signature check)."""
    envelope, fields = _open(data, Kind.SYNC_REPORT, _REPORT, "report")
    return SyncReport(envelope=envelope, encoded=bytes(data), **fields)


_ACK = {
    1: Field("wallet", _WALLET),
    2: Field("sync_seq", uint()),
    3: Field("entries", uint()),
    4: Field("log_digest", _DIGEST),
    5: Field("time", _TIME),
}


@dataclass(frozen=True, slots=True)
class SyncAck:
    """The bank's signed acknowledgement that a report's log is settled: the secure element may
    drop those entries and start a new offline period."""

    envelope: Sign1
    encoded: bytes
    wallet: WalletId
    sync_seq: int
    entries: int
    log_digest: bytes
    time: int


def sign_ack(key: SigningKey, bank_certificate_der: bytes, **values: Any) -> bytes:
    """A bank-signed sync acknowledgement (keyword arguments: the SyncAck fields)."""
    return _signed(Kind.SYNC_ACK, _ACK, values, key, bank_certificate_der)


def parse_ack(data: bytes) -> SyncAck:
    """Decode a sync acknowledgement strictly (no signature check)."""
    envelope, fields = _open(data, Kind.SYNC_ACK, _ACK, "ack")
    return SyncAck(envelope=envelope, encoded=bytes(data), **fields)
