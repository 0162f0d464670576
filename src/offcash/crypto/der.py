"""A small strict DER reader for the parts of a certificate the trust store checks.

Theory of operation: ``cryptography`` parses a certificate (``load_der_x509_certificate``
refuses anything that is not well-formed), but reading its names, extensions and signed bytes
through its Python objects re-encodes and allocates far more than a payment's own checks cost.
So once ``cryptography`` has accepted a certificate, ``certificate_parts`` slices the DER
itself: the TBS bytes exactly as signed, the issuer and subject names as they are signed, and
the extension values by OID. The reader is strict on its own account too (expected tags,
definite shortest lengths, nothing left over inside any item, no repeated extension, the same
signature algorithm inside and outside the TBS, UTCTime for validity times before 2050); any
deviation is a ``ValueError``.
"""

from __future__ import annotations

from typing import NamedTuple

_SEQUENCE = 0x30
_SET = 0x31
_INTEGER = 0x02
_BIT_STRING = 0x03
_OCTET_STRING = 0x04
_OID = 0x06
_BOOLEAN = 0x01
_UTC_TIME, _GENERALIZED_TIME = 0x17, 0x18
_VERSION = 0xA0  # [0] EXPLICIT
_ISSUER_UID, _SUBJECT_UID = 0x81, 0x82  # [1], [2] IMPLICIT
_EXTENSIONS = 0xA3  # [3] EXPLICIT
_STRINGS = {0x0C: "utf-8", 0x13: "ascii", 0x16: "ascii"}  # UTF8, Printable, IA5String


def encode_oid(dotted: str) -> bytes:
    """The content octets of an OBJECT IDENTIFIER (no tag or length)."""
    arcs = [int(a) for a in dotted.split(".")]
    out = bytearray()
    for arc in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        while arc := arc >> 7:
            chunk.append(0x80 | (arc & 0x7F))
        out += bytes(reversed(chunk))
    return bytes(out)


#: Content octets of the extension OIDs the trust store reads (RFC 5280).
BASIC_CONSTRAINTS = encode_oid("2.5.29.19")
KEY_USAGE = encode_oid("2.5.29.15")
_COMMON_NAME = encode_oid("2.5.4.3")


def item(data: bytes, pos: int, end: int, tag: int) -> tuple[int, int]:
    """The content start and end of the DER item with ``tag`` at ``pos`` (within ``end``)."""
    if pos + 2 > end or data[pos] != tag:
        raise ValueError(f"expected DER tag {tag:#04x} at offset {pos}")
    length, start = data[pos + 1], pos + 2
    if length >= 0x80:  # long form: 1 to 3 length bytes, the fewest that fit
        size = length & 0x7F
        if not 1 <= size <= 3 or start + size > end:
            raise ValueError(f"unsupported DER length at offset {pos}")
        length = int.from_bytes(data[start : start + size], "big")
        if length < 0x80 or length >> (8 * (size - 1)) == 0:
            raise ValueError(f"non-minimal DER length at offset {pos}")
        start += size
    if start + length > end:
        raise ValueError(f"DER item at offset {pos} overruns its container")
    return start, start + length


class CertificateParts(NamedTuple):
    """Slices of a DER certificate: names as signed, extension values by OID content octets,
    and the OIDs of the extensions marked critical."""

    tbs: bytes
    issuer: bytes
    subject: bytes
    extensions: dict[bytes, bytes]
    critical: frozenset[bytes]


def certificate_parts(data: bytes) -> CertificateParts:
    """Slice a DER X.509 certificate; ``ValueError`` if it is not one."""
    start, end = item(data, 0, len(data), _SEQUENCE)
    tbs_start, tbs_end = item(data, start, end, _SEQUENCE)
    outer_algorithm_end = item(data, tbs_end, end, _SEQUENCE)[1]
    if end != len(data) or item(data, outer_algorithm_end, end, _BIT_STRING)[1] != end:
        raise ValueError("not a certificate: TBS, signature algorithm, signature")
    pos = tbs_start
    if pos < tbs_end and data[pos] == _VERSION:
        pos = item(data, pos, tbs_end, _VERSION)[1]
    algorithm = item(data, pos, tbs_end, _INTEGER)[1]  # after serialNumber
    issuer = item(data, algorithm, tbs_end, _SEQUENCE)[1]
    if data[algorithm:issuer] != data[tbs_end:outer_algorithm_end]:
        raise ValueError("the signature algorithm differs inside and outside the TBS")
    validity = item(data, issuer, tbs_end, _SEQUENCE)[1]
    subject = item(data, validity, tbs_end, _SEQUENCE)[1]
    _check_validity(data, validity, subject)
    key = item(data, subject, tbs_end, _SEQUENCE)[1]
    pos = item(data, key, tbs_end, _SEQUENCE)[1]  # after subjectPublicKeyInfo
    for optional in (_ISSUER_UID, _SUBJECT_UID):
        if pos < tbs_end and data[pos] == optional:
            pos = item(data, pos, tbs_end, optional)[1]
    extensions: dict[bytes, bytes] = {}
    critical: frozenset[bytes] = frozenset()
    if pos < tbs_end:
        wrapped, pos = item(data, pos, tbs_end, _EXTENSIONS)
        extensions, critical = _extensions(data, wrapped, pos)
    if pos != tbs_end:
        raise ValueError("unexpected items at the end of the TBS")
    return CertificateParts(
        tbs=data[start:tbs_end],
        issuer=data[issuer:validity],
        subject=data[subject:key],
        extensions=extensions,
        critical=critical,
    )


def _check_validity(data: bytes, start: int, end: int) -> None:
    """``Validity ::= SEQUENCE { notBefore Time, notAfter Time }`` with RFC 5280's rule (section
    4.1.2.5): UTCTime through 2049, GeneralizedTime from 2050 (the time formats themselves are
    checked by the X.509 parser)."""
    pos, seq_end = item(data, start, end, _SEQUENCE)
    for _ in range(2):
        tag = data[pos] if pos < seq_end else -1
        if tag == _UTC_TIME:
            pos = item(data, pos, seq_end, _UTC_TIME)[1]
        elif tag == _GENERALIZED_TIME:
            value_start, pos = item(data, pos, seq_end, _GENERALIZED_TIME)
            if data[value_start : value_start + 4] < b"2050":
                raise ValueError("GeneralizedTime for a time before 2050")
        else:
            raise ValueError("a validity time is neither UTCTime nor GeneralizedTime")
    if pos != seq_end:
        raise ValueError("unexpected items in the validity")


def _extensions(data: bytes, pos: int, end: int) -> tuple[dict[bytes, bytes], frozenset[bytes]]:
    """``Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension``: value octets by OID octets, and
    the OIDs marked critical."""
    pos, seq_end = item(data, pos, end, _SEQUENCE)
    if seq_end != end or pos == seq_end:
        raise ValueError("malformed extensions")
    out: dict[bytes, bytes] = {}
    critical: set[bytes] = set()
    while pos < seq_end:
        ext_start, ext_end = item(data, pos, seq_end, _SEQUENCE)
        oid_start, oid_end = item(data, ext_start, ext_end, _OID)
        oid, at = data[oid_start:oid_end], oid_end
        if at < ext_end and data[at] == _BOOLEAN:  # critical; DER omits the default FALSE
            flag_start, at = item(data, at, ext_end, _BOOLEAN)
            if data[flag_start:at] != b"\xff":
                raise ValueError("extension criticality is not DER TRUE")
            critical.add(oid)
        value_start, value_end = item(data, at, ext_end, _OCTET_STRING)
        if value_end != ext_end:
            raise ValueError("unexpected items in an extension")
        if oid in out:
            raise ValueError("repeated extension")
        out[oid] = data[value_start:value_end]
        pos = ext_end
    return out, frozenset(critical)


def octet_string(value: bytes) -> bytes:
    """The content of ``value``, which must be exactly one DER OCTET STRING (an extension
    value of that type); ``ValueError`` otherwise."""
    start, end = item(value, 0, len(value), _OCTET_STRING)
    if end != len(value):
        raise ValueError("trailing bytes after the OCTET STRING")
    return value[start:end]


def encode_octet_string(content: bytes) -> bytes:
    """The DER OCTET STRING holding ``content`` (at most 2^24 - 1 bytes)."""
    n = len(content)
    if n < 0x80:
        head = bytes([n])
    else:
        size = (n.bit_length() + 7) // 8
        head = bytes([0x80 | size]) + n.to_bytes(size, "big")
    return bytes([_OCTET_STRING]) + head + content


def key_usage_bit(value: bytes, bit: int) -> bool:
    """Whether the KeyUsage extension value (a DER BIT STRING) asserts ``bit`` (0 is
    digitalSignature)."""
    start, end = item(value, 0, len(value), _BIT_STRING)
    if end != len(value) or start == end:
        raise ValueError("malformed key usage")
    unused, bits = value[start], value[start + 1 : end]
    if unused > 7 or (not bits and unused) or (bits and bits[-1] & ((1 << unused) - 1)):
        raise ValueError("malformed key usage")
    return bit // 8 < len(bits) and bool(bits[bit // 8] & (0x80 >> (bit % 8)))


def common_name(name: bytes) -> str:
    """The one common name in a DER ``Name``; ``""`` if there is none, ``ValueError`` if there
    are several (a wallet certificate names exactly one wallet). Other attributes are
    ignored."""
    pos, end = item(name, 0, len(name), _SEQUENCE)
    if end != len(name):
        raise ValueError("trailing bytes after the name")
    found: str | None = None
    while pos < end:
        rdn_start, pos = item(name, pos, end, _SET)
        at = rdn_start
        while at < pos:
            attr_start, at = item(name, at, pos, _SEQUENCE)
            oid_start, oid_end = item(name, attr_start, at, _OID)
            if name[oid_start:oid_end] == _COMMON_NAME:
                tag = name[oid_end] if oid_end < at else -1
                encoding = _STRINGS.get(tag)
                if encoding is None:
                    raise ValueError("common name is not a UTF8, Printable or IA5 string")
                value_start, value_end = item(name, oid_end, at, tag)
                if value_end != at:
                    raise ValueError("unexpected items in a name attribute")
                if found is not None:
                    raise ValueError("more than one common name")
                found = name[value_start:value_end].decode(encoding)
    return found or ""
