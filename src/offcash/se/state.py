"""The software secure element's state and its strict encoding.

Theory of operation: ``SEState`` is everything a ``SoftwareSecureElement`` holds (key, network
parameters, trust anchors and CRLs, certificate, balance and counters, the log since the last
sync, the payee's memory, the vouchers applied, the requests paid, the key payments are sealed
for, the next signing and sealing keys after an algorithm migration, the sealing key it
replaced). ``encode`` writes it as
deterministic CBOR; ``decode`` reads it back strictly, so a damaged or crafted state file gives a
``SecureElementError`` and never another exception. It knows nothing of sealing or files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from offcash.domain.network import NetworkParams
from offcash.encoding import cbor
from offcash.encoding.fields import array_of, bstr, uint
from offcash.encoding.sealed import KemKey, KemSuite
from offcash.errors import DecodeError, OffcashError, SecureElementError
from offcash.protocol.payee import PayeeBook
from offcash.se import log
from offcash.se.paid import PaidRequests

#: Log entries an SE holds before it must sync (a capacity, not a bank policy).
MAX_LOG_ENTRIES = 1024
#: The version ``encode`` writes, and the number of items of its array (the version first).
STATE_VERSION = 5
STATE_ITEMS = 17
#: Version 1 had no memory of paid requests (item 12), read as an empty one; versions 1 and 2
#: had no encryption key (item 13), read as none (such an SE asks for unsealed payments);
#: versions 1 to 3 had no pending key of an algorithm migration (item 14), read as none;
#: versions 1 to 4 had no next and retired KEM keys (items 15 and 16), read as none.
ITEMS_BY_VERSION = {1: 12, 2: 13, 3: 14, 4: 15, 5: 17}


@dataclass
class SEState:
    """The whole state of a software secure element."""

    key_der: bytes
    params: NetworkParams
    root: bytes
    banks: list[bytes] = field(default_factory=list)
    crls: list[bytes] = field(default_factory=list)
    certificate: bytes | None = None
    balance: int = 0
    counter: int = 0
    sync_seq: int = 0
    last_sync: int = 0
    log_base: bytes = log.GENESIS
    entries: list[log.Entry] = field(default_factory=list)
    book: PayeeBook = field(default_factory=PayeeBook)
    vouchers: dict[bytes, int] = field(default_factory=dict)
    paid: PaidRequests = field(default_factory=PaidRequests)
    #: The KEM key payers seal payments for (``offcash.encoding.sealed``): suite and secret.
    encryption_key: KemKey | None = None
    #: After an algorithm migration, the key of the new algorithm (PKCS#8 DER) waiting for its
    #: certificate: it replaces ``key_der`` at the sync that certifies it.
    next_key_der: bytes | None = None
    #: After an algorithm migration, the KEM key of the new network's suite: its CSR asks to
    #: bind it, and it replaces ``encryption_key`` once a certificate binds it.
    next_encryption_key: KemKey | None = None
    #: The KEM key ``next_encryption_key`` replaced: payments sealed for it in flight still
    #: open, until the first certificate installed at or after ``retired_until``.
    retired_encryption_key: KemKey | None = None
    retired_until: int = 0

    def small_items(self) -> dict[int, Any]:
        """The items of the state array (by index) that do not grow with use: all but the
        log (9), the payee book (10) and the requests paid (12)."""
        key, nxt, retired = (
            self.encryption_key,
            self.next_encryption_key,
            self.retired_encryption_key,
        )
        return {
            1: self.key_der,
            2: self.params.to_cbor(),
            3: self.root,
            4: self.banks,
            5: self.crls,
            6: self.certificate,
            7: [self.balance, self.counter, self.sync_seq, self.last_sync],
            8: self.log_base,
            11: self.vouchers,
            13: None if key is None else [key.suite.cose_id, key.secret],
            14: self.next_key_der,
            15: None if nxt is None else [nxt.suite.cose_id, nxt.secret],
            16: None
            if retired is None
            else [retired.suite.cose_id, retired.secret, self.retired_until],
        }

    def encode(self) -> bytes:
        """The state as deterministic CBOR."""
        items = self.small_items()
        items[9] = [e.encode() for e in self.entries]
        items[10] = self.book.to_cbor()
        items[12] = self.paid.to_cbor()
        return cbor.encode([STATE_VERSION, *(items[i] for i in range(1, STATE_ITEMS))])

    @classmethod
    def decode(cls, data: bytes) -> SEState:
        """The state from ``encode``'s bytes; ``SecureElementError`` if unreadable."""
        try:
            v: Any = cbor.decode(data, path="state", max_bytes=64 * 1024 * 1024)
            if (
                type(v) is not list
                or not v
                or type(v[0]) is not int
                or v[0] not in ITEMS_BY_VERSION
            ):
                version = v[0] if type(v) is list and v else None
                raise SecureElementError(f"unsupported state version {version!r}")
            if len(v) != ITEMS_BY_VERSION[v[0]]:
                raise DecodeError("state", f"expected an array of {ITEMS_BY_VERSION[v[0]]} items")
            der, ders = bstr(1), array_of(bstr(1), 1024)
            balance, counter, sync_seq, last_sync = (
                uint()(x, "state.counters") for x in _items(v[7], 4, "state.counters")
            )
            if type(v[11]) is not dict:
                raise DecodeError("state.vouchers", "expected a map")
            return cls(
                key_der=der(v[1], "state.key"),
                params=NetworkParams.from_cbor(v[2], "state.params"),
                root=der(v[3], "state.root"),
                banks=ders(v[4], "state.banks"),
                crls=ders(v[5], "state.crls"),
                certificate=None if v[6] is None else der(v[6], "state.certificate"),
                balance=balance,
                counter=counter,
                sync_seq=sync_seq,
                last_sync=last_sync,
                log_base=bstr(32, 32)(v[8], "state.log_base"),
                entries=[
                    log.Entry.decode(e)
                    for e in array_of(bstr(1), MAX_LOG_ENTRIES)(v[9], "state.entries")
                ],
                book=PayeeBook.from_cbor(v[10]),
                vouchers={
                    bstr(1, 64)(i, "state.vouchers"): uint()(e, "state.vouchers")
                    for i, e in v[11].items()
                },
                paid=PaidRequests.from_cbor(v[12], "state.paid") if len(v) > 12 else PaidRequests(),
                encryption_key=_kem_key(v[13], "state.encryption_key") if len(v) > 13 else None,
                next_key_der=der(v[14], "state.next_key")
                if len(v) > 14 and v[14] is not None
                else None,
                next_encryption_key=_kem_key(v[15], "state.next_encryption_key")
                if len(v) > 15
                else None,
                **(_retired(v[16]) if len(v) > 16 else {}),
            )
        except SecureElementError:
            raise
        except (OffcashError, IndexError, TypeError, ValueError, KeyError) as exc:
            raise SecureElementError(f"secure element state is unreadable: {exc}") from None


def _kem_key(value: Any, path: str) -> KemKey | None:
    if value is None:
        return None
    alg, secret = _items(value, 2, path)
    suite = KemSuite.from_cose(alg) if type(alg) is int else None
    if suite is None:
        raise DecodeError(path, f"unknown KEM suite {alg!r}")
    key = KemKey(suite, bstr(32, 96)(secret, path))
    key.public()  # refuse a key that does not load
    return key


def _retired(value: Any) -> dict[str, Any]:
    """The retired KEM key item: None, or ``[suite, secret, retired_until]``."""
    if value is None:
        return {}
    path = "state.retired_encryption_key"
    alg, secret, until = _items(value, 3, path)
    return {
        "retired_encryption_key": _kem_key([alg, secret], path),
        "retired_until": uint()(until, path),
    }


def _items(value: Any, n: int, path: str) -> list[Any]:
    if type(value) is not list or len(value) != n:
        raise DecodeError(path, f"expected an array of {n} items")
    return value
