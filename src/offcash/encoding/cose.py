"""COSE_Sign1 (RFC 9052) with the signer's certificate in ``x5chain`` (RFC 9360).

Theory of operation: this is a small, strict COSE_Sign1 for offcash's messages. The protected
header always carries the algorithm, the signer's certificate (``x5chain``, a single DER
certificate: the bank CAs and root are trust anchors the verifier already holds), the message
kind (a purpose tag) and the protocol version; because they are signed, a signature made for
one kind of message is never accepted as another. The unprotected header is empty. The
signature covers the RFC 9052 ``Sig_structure`` ("Signature1", protected, empty external AAD,
payload). ``decode_sign1`` only parses and checks structure; ``offcash.verification`` decides
whether a message is acceptable. The tests verify these messages with an independent COSE
library (python-cwt).
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from typing import Any

import cbor2

from offcash.crypto.algorithms import PrivateKey, SignatureAlgorithm, algorithm_of, sign
from offcash.encoding import cbor
from offcash.encoding.fields import Field, bstr, int_in, read
from offcash.errors import DecodeError

COSE_SIGN1_TAG = 18
HEADER_ALG = 1
HEADER_X5CHAIN = 33
#: Private-use header labels (RFC 9052 section 3.1: less than -65536).
HEADER_KIND = -65537
HEADER_VERSION = -65538

PROTOCOL_VERSION = 1


class Kind(enum.IntEnum):
    """Purpose tags: what a signed message is, so no signature serves two purposes."""

    PAYMENT_REQUEST = 1
    PAYMENT = 2
    RECEIPT = 3
    LOAD_VOUCHER = 4
    UNLOAD_REQUEST = 5
    SYNC_REPORT = 6
    SYNC_ACK = 7


_PROTECTED = {
    HEADER_ALG: Field("alg", int_in(frozenset(a.cose_id for a in SignatureAlgorithm))),
    HEADER_X5CHAIN: Field("x5chain", bstr(1, 16384)),
    HEADER_KIND: Field("kind", int_in(frozenset(int(k) for k in Kind))),
    HEADER_VERSION: Field("version", int_in(frozenset({PROTOCOL_VERSION}))),
}


@dataclass(frozen=True, slots=True)
class Sign1:
    """A structurally valid COSE_Sign1, not yet verified."""

    alg: SignatureAlgorithm
    kind: Kind
    version: int
    certificate_der: bytes
    protected: bytes
    payload: bytes
    signature: bytes

    def to_be_signed(self) -> bytes:
        """The RFC 9052 ``Sig_structure`` bytes this message's signature covers."""
        return sig_structure(self.protected, self.payload)


def sig_structure(protected: bytes, payload: bytes) -> bytes:
    """``["Signature1", protected, h'', payload]`` in deterministic CBOR (no maps inside, so
    ``cbor2``'s shortest-form encoding is already the deterministic one)."""
    return bytes(cbor2.dumps(["Signature1", protected, b"", payload]))


@functools.lru_cache(maxsize=64)
def _protected_header(alg: int, certificate_der: bytes, kind: Kind) -> bytes:
    return cbor.encode(
        {
            HEADER_ALG: alg,
            HEADER_X5CHAIN: certificate_der,
            HEADER_KIND: int(kind),
            HEADER_VERSION: PROTOCOL_VERSION,
        }
    )


def sign1(kind: Kind, payload: bytes, key: PrivateKey, certificate_der: bytes) -> bytes:
    """Sign ``payload`` as a COSE_Sign1 of ``kind`` with ``key`` (whose certificate is given)."""
    protected = _protected_header(algorithm_of(key).cose_id, certificate_der, kind)
    signature = sign(key, sig_structure(protected, payload))
    # The only map is the empty unprotected header: cbor2's output is deterministic as is.
    return bytes(cbor2.dumps(cbor2.CBORTag(COSE_SIGN1_TAG, [protected, {}, payload, signature])))


def decode_sign1(
    data: bytes, path: str = "cose", *, max_bytes: int = cbor.MAX_MESSAGE_BYTES
) -> Sign1:
    """Parse a COSE_Sign1 strictly (structure and headers only; no signature check)."""
    item: Any = cbor.decode(data, path=path, max_bytes=max_bytes)
    if not isinstance(item, cbor2.CBORTag) or item.tag != COSE_SIGN1_TAG:
        raise DecodeError(path, "expected a COSE_Sign1 (CBOR tag 18)")
    body = item.value
    if type(body) is not list or len(body) != 4:
        raise DecodeError(path, "COSE_Sign1 must be an array of 4 items")
    protected_raw, unprotected, payload, signature = body
    protected_raw = bstr(1, max_bytes)(protected_raw, f"{path}.protected")
    if unprotected != {}:
        raise DecodeError(f"{path}.unprotected", "the unprotected header must be empty")
    payload = bstr(1, max_bytes)(payload, f"{path}.payload")
    signature = bstr(1, 8192)(signature, f"{path}.signature")
    header = read(
        cbor.decode(protected_raw, path=f"{path}.protected"), f"{path}.protected", _PROTECTED
    )
    alg = SignatureAlgorithm.from_cose(header["alg"])
    assert alg is not None  # int_in admitted only known identifiers
    return Sign1(
        alg=alg,
        kind=Kind(header["kind"]),
        version=header["version"],
        certificate_der=header["x5chain"],
        protected=protected_raw,
        payload=payload,
        signature=signature,
    )
