"""The offcash card application's commands and how their results travel (docs/APDU.md).

Theory of operation: the application is selected by ``AID``; ISO commands (CLA 00) handle
selection, PIN and PUK; offcash operations (CLA 80, one INS each, ``INS``) carry their
arguments as one deterministic CBOR array in the data field and answer one CBOR item. This
module holds those constants and the encodings of the structured results (``Status``,
``Received``, ``SyncUpload``, the trust material and the SELECT answer), both ways; the
decoders are strict, since the host reads what a card answers as untrusted input (a
``SecureElementError`` names what is wrong).
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from typing import Any

from offcash.domain.ids import WalletId
from offcash.domain.limits import Limits
from offcash.domain.network import NetworkParams
from offcash.encoding import cbor
from offcash.errors import OffcashError, SecureElementError
from offcash.se.interface import Received, Status, SyncUpload
from offcash.se.log import Entry

#: The application identifier: F0 (ISO 7816-5 category F: a proprietary, unregistered RID)
#: then "OFFCASH" in ASCII, then the application version 01.
AID = bytes.fromhex("F0") + b"OFFCASH" + b"\x01"
#: The card's answer to reset: T=1 (TD1 80, TD2 01), historical bytes "OFFCASH" after the
#: category indicator 80, and the check byte TCK.
_ATR_BODY = bytes.fromhex("8880 01") + b"\x80" + b"OFFCASH"
ATR = bytes.fromhex("3B") + _ATR_BODY + bytes([functools.reduce(int.__xor__, _ATR_BODY)])

CLA_ISO = 0x00
CLA_PROPRIETARY = 0x80
#: Largest command data the card joins from a chain (a sync apply with post-quantum
#: certificates and CRLs is a few tens of KB).
MAX_COMMAND = 1024 * 1024
#: Largest answer the host collects from a card (GET RESPONSE): the same bound.
MAX_RESPONSE = MAX_COMMAND


class Ins(enum.IntEnum):
    """The instructions of the application (CLA 00 for the ISO ones, 80 for the others; all
    even, none 6X or 9X, as ISO 7816-3 requires)."""

    SELECT = 0xA4
    VERIFY = 0x20
    CHANGE_REFERENCE_DATA = 0x24
    RESET_RETRY_COUNTER = 0x2C
    INTERNAL_AUTHENTICATE = 0x88
    GET_RESPONSE = 0xC0
    PERSONALISE = 0x10
    GET_STATUS = 0x12
    GET_TRUST = 0x14
    GET_ERROR = 0x16
    CSR = 0x18
    ENROL = 0x1A
    INSTALL_CRLS = 0x1C
    MIGRATE = 0x1E
    LOAD = 0x30
    UNLOAD = 0x32
    REQUEST = 0x40
    PAY = 0x42
    PAY_TO = 0x44
    SENT_PAYMENT = 0x46
    OPEN_SEALED = 0x50
    RECEIVE = 0x52
    SYNC_UPLOAD = 0x70
    SYNC_APPLY = 0x72


#: P2 of VERIFY, CHANGE REFERENCE DATA and RESET RETRY COUNTER: the PIN (specific reference 1).
PIN_REFERENCE = 0x81
#: Width of a PIN or PUK field in CHANGE REFERENCE DATA and RESET RETRY COUNTER (padded FF).
PIN_FIELD = 16


class LifeCycle(enum.IntEnum):
    """The application's life cycle state, in the SELECT answer."""

    BLANK = 0  # no key yet: only PERSONALISE
    PERSONALISED = 1  # key made, PIN set
    PIN_BLOCKED = 2  # the PUK unblocks it
    DEAD = 3  # the PUK is blocked too: the card does nothing more


def pad_pin(pin: bytes) -> bytes:
    """A PIN or PUK in a fixed field of ``PIN_FIELD`` bytes, padded with FF."""
    if len(pin) > PIN_FIELD:
        raise ValueError(f"a PIN has at most {PIN_FIELD} characters")
    return pin + b"\xff" * (PIN_FIELD - len(pin))


def unpad_pin(field: bytes) -> bytes:
    """The PIN in a padded field."""
    return field.rstrip(b"\xff")


@dataclass(frozen=True, slots=True)
class SelectInfo:
    """What SELECT answers: the FCI template (tag 6F) with the AID (84) and proprietary data
    (A5: 80 version, 81 life cycle, 82 PIN tries left, 83 PUK tries left)."""

    aid: bytes
    version: int
    life_cycle: LifeCycle
    pin_tries: int
    puk_tries: int

    def encode(self) -> bytes:
        """The FCI bytes."""
        fields = (self.version, self.life_cycle, self.pin_tries, self.puk_tries)
        prop = b"".join(
            bytes((tag, 1, value)) for tag, value in zip(b"\x80\x81\x82\x83", fields, strict=True)
        )
        body = bytes([0x84, len(self.aid)]) + self.aid + bytes([0xA5, len(prop)]) + prop
        return bytes([0x6F, len(body)]) + body

    @classmethod
    def decode(cls, data: bytes) -> SelectInfo:
        """The FCI from a card; ``SecureElementError`` if it is not this application's."""
        try:
            if data[0] != 0x6F or data[1] != len(data) - 2 or data[2] != 0x84:
                raise ValueError("not an FCI template")
            n = data[3]
            aid, rest = data[4 : 4 + n], data[4 + n :]
            if rest[0] != 0xA5 or rest[1] != 12 or len(rest) != 14:
                raise ValueError("no proprietary data")
            p = rest[2:]
            if p[0::3] != bytes([0x80, 0x81, 0x82, 0x83]) or p[1::3] != b"\x01" * 4:
                raise ValueError("unexpected proprietary tags")
            return cls(bytes(aid), p[2], LifeCycle(p[5]), p[8], p[11])
        except (IndexError, ValueError) as exc:
            raise SecureElementError(f"the card's SELECT answer is unreadable: {exc}") from None


def encode_status(s: Status) -> bytes:
    """GET STATUS's answer: a CBOR array of the ``Status`` fields in order (the wallet id as
    its 12 bytes, the limits as an array of five integers or null)."""
    limits = s.limits
    return cbor.encode(
        [
            None if s.wallet_id is None else s.wallet_id.raw,
            s.bank,
            s.currency,
            s.balance,
            s.counter,
            None
            if limits is None
            else [
                limits.max_balance,
                limits.max_payment,
                limits.max_offline_payments,
                limits.max_offline_value,
                limits.max_offline_seconds,
            ],
            s.certificate_expires,
            s.last_sync,
            s.offline_payments,
            s.offline_value,
            s.log_entries,
        ]
    )


def decode_status(data: bytes) -> Status:
    """``encode_status``'s bytes, read strictly."""
    v = _array(data, 11, "status")
    wid, bank, currency, balance, counter, limits, expires, last_sync, n, value, entries = v
    return Status(
        wallet_id=None if wid is None else _wallet(wid),
        bank=None if bank is None else _t(bank, str),
        currency=_t(currency, str),
        balance=_t(balance, int),
        counter=_t(counter, int),
        limits=None if limits is None else Limits(*[_t(x, int) for x in _list(limits, 5)]),
        certificate_expires=None if expires is None else _t(expires, int),
        last_sync=None if last_sync is None else _t(last_sync, int),
        offline_payments=_t(n, int),
        offline_value=_t(value, int),
        log_entries=_t(entries, int),
    )


def encode_received(r: Received) -> bytes:
    """RECEIVE's answer: ``[payer, amount, counter, digest, receipt or null, duplicate]``."""
    return cbor.encode([r.payer.raw, r.amount, r.counter, r.digest, r.receipt, r.duplicate])


def decode_received(data: bytes) -> Received:
    """``encode_received``'s bytes, read strictly."""
    payer, amount, counter, digest, receipt, duplicate = _array(data, 6, "received")
    return Received(
        _wallet(payer),
        _t(amount, int),
        _t(counter, int),
        _t(digest, bytes),
        None if receipt is None else _t(receipt, bytes),
        _t(duplicate, bool),
    )


def encode_upload(u: SyncUpload) -> bytes:
    """SYNC UPLOAD's answer: ``[report, [entry, ...]]``, each entry in its own encoding."""
    return cbor.encode([u.report, [e.encode() for e in u.entries]])


def decode_upload(data: bytes) -> SyncUpload:
    """``encode_upload``'s bytes, read strictly."""
    report, entries = _array(data, 2, "upload")
    try:
        items = [Entry.decode(_t(e, bytes)) for e in _list(entries, None)]
    except OffcashError as exc:
        raise SecureElementError(f"the card's sync upload is unreadable: {exc}") from None
    return SyncUpload(_t(report, bytes), items)


def encode_trust(
    params: NetworkParams, root: bytes, banks: list[bytes], crls: list[bytes]
) -> bytes:
    """GET TRUST's answer: ``[params, root, [bank certificate, ...], [CRL, ...]]``."""
    return cbor.encode([params.to_cbor(), root, banks, crls])


def decode_trust(data: bytes) -> tuple[NetworkParams, bytes, list[bytes], list[bytes]]:
    """``encode_trust``'s bytes, read strictly."""
    params, root, banks, crls = _array(data, 4, "trust")
    try:
        p = NetworkParams.from_cbor(params, "trust.params")
    except OffcashError as exc:
        raise SecureElementError(f"the card's network parameters are unreadable: {exc}") from None
    return (
        p,
        _t(root, bytes),
        [_t(b, bytes) for b in _list(banks, None)],
        [_t(c, bytes) for c in _list(crls, None)],
    )


def decode_answer(data: bytes, path: str) -> Any:
    """One CBOR item a card answered; ``SecureElementError`` if it is not one."""
    try:
        return cbor.decode(data, path=path, max_bytes=64 * 1024 * 1024)
    except OffcashError as exc:
        raise SecureElementError(f"the card's answer is unreadable: {exc}") from None


def _array(data: bytes, n: int, path: str) -> list[Any]:
    return _list(decode_answer(data, path), n)


def _list(value: Any, n: int | None) -> list[Any]:
    if type(value) is not list or (n is not None and len(value) != n):
        raise SecureElementError(f"the card's answer is not an array of {n} items")
    return value


def _wallet(value: Any) -> WalletId:
    try:
        return WalletId(_t(value, bytes))
    except OffcashError as exc:
        raise SecureElementError(f"the card's answer holds a bad wallet id: {exc}") from None


def _t(value: Any, kind: type) -> Any:
    if type(value) is not kind:
        raise SecureElementError(
            f"the card's answer holds a {type(value).__name__} where a {kind.__name__} belongs"
        )
    return value
