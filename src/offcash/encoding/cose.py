"""COSE_Sign1 (RFC 9052) with the signer's certificate in ``x5chain`` (RFC 9360).

Theory of operation: this is a small, strict COSE_Sign1 for offcash's messages. The protected
header always carries the algorithm, the signer's certificate (``x5chain``, a single DER
certificate: the bank CAs and root are trust anchors the verifier already holds), the message
kind (a purpose tag) and the protocol version; because they are signed, a signature made for
one kind of message is never accepted as another. The unprotected header is empty. The
signature covers the RFC 9052 ``Sig_structure`` ("Signature1", protected, empty external AAD,
payload). A message is named by what was signed, never by its signature bytes:
``Sign1.digest`` is the SHA-256 of the ``Sig_structure`` (protected header and payload), so a
second signature over the same content (a relay's malleated twin, or the signer signing again)
names the same message. ``decode_sign1`` only parses and checks structure;
``offcash.verification`` decides whether a message is acceptable. The tests verify these
messages with an independent COSE library (python-cwt).
"""

from __future__ import annotations

import enum
import functools
import hashlib
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

# The fixed parts of the two layouts this module writes by concatenation (every item in them is
# a byte string, an empty map or a constant, so no key order is involved).
#: ``Sig_structure`` up to its protected header: an array of 4, then the text "Signature1".
_SIG_STRUCTURE = cbor.head(4, 4) + cbor.encode("Signature1")
#: ``COSE_Sign1`` up to its protected header: tag 18, then an array of 4.
_SIGN1 = cbor.head(6, COSE_SIGN1_TAG) + cbor.head(4, 4)
_EMPTY_MAP = cbor.encode({})
_EMPTY_BYTES = cbor.encode(b"")
#: Bound on a signature's size (ML-DSA-87's is 4627 bytes).
_MAX_SIGNATURE = 8192


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

    @property
    def digest(self) -> bytes:
        """The message's identity: ``content_digest`` of its protected header and payload."""
        return content_digest(self.protected, self.payload)


def content_digest(protected: bytes, payload: bytes) -> bytes:
    """SHA-256 of the ``Sig_structure`` over ``protected`` and ``payload``: what a signature
    covers, so the name of a signed message does not depend on its signature bytes."""
    return hashlib.sha256(sig_structure(protected, payload)).digest()


def sig_structure(protected: bytes, payload: bytes) -> bytes:
    """``["Signature1", protected, h'', payload]`` in deterministic CBOR."""
    return b"".join(
        (_SIG_STRUCTURE, cbor.byte_string(protected), _EMPTY_BYTES, cbor.byte_string(payload))
    )


@functools.lru_cache(maxsize=64)
def _protected_header(alg: int, certificate_der: bytes, kind: Kind) -> bytes:
    """The protected header, refused (``ValueError``) unless ``decode_sign1`` reads it back:
    nothing is signed under a header no verifier accepts (a certificate over its bound)."""
    header = cbor.encode(
        {
            HEADER_ALG: alg,
            HEADER_X5CHAIN: certificate_der,
            HEADER_KIND: int(kind),
            HEADER_VERSION: PROTOCOL_VERSION,
        }
    )
    try:
        read(cbor.decode(header, path="protected"), "protected", _PROTECTED)
    except DecodeError as exc:
        raise ValueError(f"refusing to sign under an unreadable header: {exc}") from None
    return header


def sign1(kind: Kind, payload: bytes, key: PrivateKey, certificate_der: bytes) -> bytes:
    """Sign ``payload`` as a COSE_Sign1 of ``kind`` with ``key`` (whose certificate is given)."""
    if type(payload) is not bytes or type(certificate_der) is not bytes:
        raise TypeError("the payload and the certificate must be bytes")
    protected = _protected_header(algorithm_of(key).cose_id, certificate_der, kind)
    signature = sign(key, sig_structure(protected, payload))
    return b"".join(
        (
            _SIGN1,
            cbor.byte_string(protected),
            _EMPTY_MAP,
            cbor.byte_string(payload),
            cbor.byte_string(signature),
        )
    )


def decode_sign1(
    data: bytes, path: str = "cose", *, max_bytes: int = cbor.MAX_MESSAGE_BYTES
) -> Sign1:
    """Parse a COSE_Sign1 strictly (structure and headers only; no signature check)."""
    protected_raw, payload, signature = _split(data, max_bytes) or _decode(data, path, max_bytes)
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


def _split(data: bytes, max_bytes: int) -> tuple[bytes, bytes, bytes] | None:
    """Protected header, payload and signature, read in place if ``data`` is exactly what
    ``sign1`` writes (the one deterministic layout) with sizes ``_decode`` admits; else None."""
    if type(data) is not bytes or len(data) > max_bytes or not data.startswith(_SIGN1):
        return None
    protected = cbor.byte_string_at(data, len(_SIGN1))
    if protected is None or not data.startswith(_EMPTY_MAP, protected[1]):
        return None
    payload = cbor.byte_string_at(data, protected[1] + len(_EMPTY_MAP))
    signature = None if payload is None else cbor.byte_string_at(data, payload[1])
    if (
        payload is None
        or signature is None
        or signature[1] != len(data)
        or protected[0] == protected[1]
        or payload[0] == payload[1]
        or not 1 <= signature[1] - signature[0] <= _MAX_SIGNATURE
    ):
        return None
    return (
        data[protected[0] : protected[1]],
        data[payload[0] : payload[1]],
        data[signature[0] : signature[1]],
    )


def _decode(data: bytes, path: str, max_bytes: int) -> tuple[bytes, bytes, bytes]:
    """Protected header, payload and signature by the general strict decoder, which refuses
    whatever ``_split`` did not read with the precise ``DecodeError``."""
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
    signature = bstr(1, _MAX_SIGNATURE)(signature, f"{path}.signature")
    return protected_raw, payload, signature
