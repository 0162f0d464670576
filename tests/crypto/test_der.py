"""The strict DER reader the trust store checks wallet certificates with: it agrees with
cryptography on well-formed certificates and refuses what DER does not allow, including in
certificates a bank really signed."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from offcash.crypto import der, pki
from offcash.crypto.algorithms import SignatureAlgorithm
from offcash.crypto.trust import TrustStore, WalletCertificate
from offcash.errors import Rejection, VerificationError
from offcash.issuance import Bank

from factories import make_signer
from harness import T0, PilotNetwork

_COMMON_NAME = der.encode_oid("2.5.4.3")


def _tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    length = bytes([n]) if n < 0x80 else bytes([0x80 | (n.bit_length() + 7) // 8])
    if n >= 0x80:
        length += n.to_bytes(length[0] & 0x7F, "big")
    return bytes([tag]) + length + content


def _children(data: bytes) -> list[bytes]:
    """The DER items (tag, length and content) inside a constructed item."""
    start, end = der.item(data, 0, len(data), data[0])
    out = []
    while start < end:
        stop = der.item(data, start, end, data[start])[1]
        out.append(data[start:stop])
        start = stop
    return out


def _rebuild(item: bytes, children: list[bytes]) -> bytes:
    return _tlv(item[0], b"".join(children))


def _edit_extensions(tbs: bytes, edit: Callable[[list[bytes]], list[bytes]]) -> bytes:
    fields = _children(tbs)
    wrapper = fields[-1]
    (sequence,) = _children(wrapper)
    fields[-1] = _rebuild(wrapper, [_rebuild(sequence, edit(_children(sequence)))])
    return _rebuild(tbs, fields)


def _with_value(extension: bytes, value: bytes) -> bytes:
    """``extension`` (OID, criticality) with another value."""
    return _rebuild(extension, [*_children(extension)[:-1], _tlv(0x04, value)])


def _resigned(cert_der: bytes, bank: Bank, edit_tbs: Callable[[bytes], bytes]) -> bytes:
    """``cert_der`` with its TBS edited, signed again by ``bank`` as a real issuance would be."""
    tbs, algorithm, _ = _children(cert_der)
    new_tbs = edit_tbs(tbs)
    if isinstance(bank.key, ec.EllipticCurvePrivateKey):
        signature = bank.key.sign(new_tbs, ec.ECDSA(hashes.SHA256()))
    else:
        signature = bank.key.sign(new_tbs)
    return _tlv(0x30, new_tbs + algorithm + _tlv(0x03, b"\x00" + signature))


def _subject_cn(tbs: bytes, tag: int, value: bytes) -> bytes:
    fields = _children(tbs)
    at = 5 if fields[0][0] == 0xA0 else 4  # version, serial, signature, issuer, validity
    attribute = _tlv(0x30, _tlv(0x06, _COMMON_NAME) + _tlv(tag, value))
    fields[at] = _tlv(0x30, _tlv(0x31, attribute))
    return _rebuild(tbs, fields)


# --- agreement with cryptography ------------------------------------------------------------


def test_parts_agree_with_cryptography(network: PilotNetwork) -> None:
    for cert_der in (make_signer(network).cert, network.bank_ders[0], network.bank_ders[1]):
        cert = x509.load_der_x509_certificate(cert_der)
        parts = der.certificate_parts(cert_der)
        assert parts.tbs == cert.tbs_certificate_bytes
        assert parts.issuer == cert.issuer.public_bytes()
        assert parts.subject == cert.subject.public_bytes()
        assert der.common_name(parts.subject) == pki.common_name(cert.subject)
        assert der.common_name(parts.issuer) == pki.common_name(cert.issuer)
        expected = {}
        for ext in cert.extensions:
            value = ext.value
            raw = value.value if isinstance(value, x509.UnrecognizedExtension) else value
            expected[der.encode_oid(ext.oid.dotted_string)] = (
                raw if isinstance(raw, bytes) else raw.public_bytes()
            )
        assert parts.extensions == expected


def test_key_usage_agrees_with_cryptography(network: PilotNetwork) -> None:
    wallet = x509.load_der_x509_certificate(make_signer(network).cert)
    bank = x509.load_der_x509_certificate(network.bank_ders[0])
    for cert in (wallet, bank):
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        value = der.certificate_parts(pki.der(cert)).extensions[der.KEY_USAGE]
        assert der.key_usage_bit(value, 0) is usage.digital_signature
        assert der.key_usage_bit(value, 5) is usage.key_cert_sign
        assert der.key_usage_bit(value, 6) is usage.crl_sign
        assert der.key_usage_bit(value, 8) is False  # beyond the bits present


def test_encode_oid() -> None:
    assert der.BASIC_CONSTRAINTS == b"\x55\x1d\x13"
    assert der.KEY_USAGE == b"\x55\x1d\x0f"
    assert der.encode_oid("1.2.840.10045.4.3.2") == bytes.fromhex("2a8648ce3d040302")
    policy = der.encode_oid(pki.WALLET_POLICY_OID.dotted_string)
    assert policy == bytes.fromhex("6981faa9e09980d88be4c2bfe0c6b0ab969ff629")


# --- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        b"\x04\x02\x07\x80",  # not a BIT STRING
        b"\x03\x00",  # no unused-bits octet
        b"\x03\x02\x08\x80",  # more than 7 unused bits
        b"\x03\x01\x01",  # unused bits without any bit
        b"\x03\x02\x07\x81",  # a padding bit set
        b"\x03\x02\x07\x80\x00",  # trailing bytes
        b"\x03\x81\x02\x07\x80",  # long-form length where the short form fits
    ],
    ids=bytes.hex,
)
def test_malformed_key_usage_refused(value: bytes) -> None:
    with pytest.raises(ValueError):
        der.key_usage_bit(value, 0)


def test_common_name_string_types() -> None:
    def name(tag: int, value: bytes, before: bytes = b"") -> bytes:
        attribute = _tlv(0x30, _tlv(0x06, _COMMON_NAME) + _tlv(tag, value))
        return _tlv(0x30, before + _tlv(0x31, attribute))

    org = _tlv(0x31, _tlv(0x30, _tlv(0x06, der.encode_oid("2.5.4.10")) + _tlv(0x0C, b"Org")))
    assert der.common_name(name(0x0C, "Bänk".encode())) == "Bänk"  # UTF8String
    assert der.common_name(name(0x13, b"Bank")) == "Bank"  # PrintableString
    assert der.common_name(name(0x16, b"Bank", before=org)) == "Bank"  # IA5String, second RDN
    assert der.common_name(_tlv(0x30, org)) == ""
    for bad in (
        name(0x1E, "Bank".encode("utf-16-be")),  # BMPString: not read
        name(0x0C, b"\xff"),  # not UTF-8
        name(0x0C, b"Bank") + b"\x00",  # trailing bytes
        _tlv(0x30, _tlv(0x30, b"")),  # an RDN that is not a SET
    ):
        with pytest.raises(ValueError):
            der.common_name(bad)


def _surgery(cert_der: bytes) -> dict[str, bytes]:
    """Structural defects, without a valid signature (the reader refuses them unsigned)."""
    tbs, algorithm, signature = _children(cert_der)
    ed = algorithm == _tlv(0x30, _tlv(0x06, der.encode_oid("1.3.101.112")))
    other = der.encode_oid("1.3.101.112" if not ed else "1.2.840.10045.4.3.2")
    content = tbs[der.item(tbs, 0, len(tbs), tbs[0])[0] :]
    size = (len(content).bit_length() + 7) // 8 + 1  # one length byte more than needed
    longer = bytes([tbs[0], 0x80 | size]) + len(content).to_bytes(size, "big") + content
    return {
        "truncated": cert_der[:-1],
        "trailing": cert_der + b"\x00",
        "tbs_length_not_minimal": _tlv(0x30, longer + algorithm + signature),
        "outer_algorithm_differs": _tlv(0x30, tbs + _tlv(0x30, _tlv(0x06, other)) + signature),
        "no_signature": _tlv(0x30, tbs + algorithm),
        "repeated_extension": _tlv(
            0x30, _edit_extensions(tbs, lambda e: [*e, e[-1]]) + algorithm + signature
        ),
        "explicit_non_critical": _tlv(
            0x30,
            _edit_extensions(
                tbs,
                lambda e: [
                    _tlv(0x30, _children(x)[0] + b"\x01\x01\x00" + _children(x)[-1]) for x in e
                ],
            )
            + algorithm
            + signature,
        ),
        "empty_extensions": _tlv(0x30, _edit_extensions(tbs, lambda e: []) + algorithm + signature),
    }


@pytest.mark.parametrize(
    "defect",
    [
        "truncated",
        "trailing",
        "tbs_length_not_minimal",
        "outer_algorithm_differs",
        "no_signature",
        "repeated_extension",
        "explicit_non_critical",
        "empty_extensions",
    ],
)
def test_structural_defects_refused(p256: PilotNetwork, defect: str) -> None:
    with pytest.raises(ValueError):
        der.certificate_parts(_surgery(make_signer(p256).cert)[defect])


# --- the trust store on certificates a bank really signed -----------------------------------


def _check(net: PilotNetwork, cert_der: bytes) -> WalletCertificate:
    trust = TrustStore.create(net.central_bank.certificate_der, net.bank_ders)
    trust.certificate_cache = 0
    return trust.wallet_certificate(cert_der, T0)


def test_resigning_unchanged_is_accepted(network: PilotNetwork) -> None:
    s = make_signer(network)
    again = _resigned(s.cert, network.banks[0], lambda tbs: tbs)
    if network.params.algorithm is SignatureAlgorithm.ED25519:
        assert again == s.cert  # deterministic signatures: the very same bytes
    assert _check(network, again).wallet_id == s.wallet_id


def test_subject_common_name_as_printable_string_is_accepted(network: PilotNetwork) -> None:
    s = make_signer(network)
    cert = _resigned(
        s.cert, network.banks[0], lambda tbs: _subject_cn(tbs, 0x13, str(s.wallet_id).encode())
    )
    assert _check(network, cert).wallet_id == s.wallet_id


@pytest.mark.parametrize(
    "edit",
    [
        lambda tbs: _edit_extensions(tbs, lambda e: [*e, e[-1]]),  # repeated extension
        lambda tbs: _edit_extensions(tbs, lambda e: e[1:]),  # no BasicConstraints
        lambda tbs: _edit_extensions(tbs, lambda e: [e[0], e[2]]),  # no KeyUsage
        lambda tbs: _edit_extensions(tbs, lambda e: e[:2]),  # no WalletPolicy
        lambda tbs: _edit_extensions(  # KeyUsage without digitalSignature (keyCertSign)
            tbs, lambda e: [e[0], _with_value(e[1], b"\x03\x02\x02\x04"), e[2]]
        ),
        lambda tbs: _edit_extensions(  # BasicConstraints cA FALSE written out (not DER)
            tbs, lambda e: [_with_value(e[0], b"\x30\x03\x01\x01\x00"), *e[1:]]
        ),
        lambda tbs: _edit_extensions(  # an unknown extension marked critical
            tbs,
            lambda e: [
                *e,
                _tlv(0x30, _tlv(0x06, der.encode_oid("1.2.3.4")) + b"\x01\x01\xff" + _tlv(4, b"")),
            ],
        ),
        lambda tbs: _subject_cn(tbs, 0x1E, "x".encode("utf-16-be")),  # BMPString CN
        lambda tbs: _subject_cn(tbs, 0x0C, b"not a wallet id"),
    ],
    ids=[
        "repeated_extension",
        "no_basic_constraints",
        "no_key_usage",
        "no_policy",
        "no_digital_signature",
        "explicit_ca_false",
        "unknown_critical_extension",
        "bmp_string_subject",
        "subject_not_a_wallet_id",
    ],
)
def test_bank_signed_defects_are_bad_certificates(
    network: PilotNetwork, edit: Callable[[bytes], bytes]
) -> None:
    cert = _resigned(make_signer(network).cert, network.banks[0], edit)
    with pytest.raises(VerificationError) as info:
        _check(network, cert)
    assert info.value.rejection is Rejection.BAD_CERTIFICATE


def test_unknown_non_critical_extension_is_accepted(network: PilotNetwork) -> None:
    extra = _tlv(0x30, _tlv(0x06, der.encode_oid("1.2.3.4")) + _tlv(4, b"\x05\x00"))
    edit = lambda tbs: _edit_extensions(tbs, lambda e: [*e, extra])  # noqa: E731
    cert = _resigned(make_signer(network).cert, network.banks[0], edit)
    assert der.certificate_parts(cert).critical == {
        der.BASIC_CONSTRAINTS,
        der.KEY_USAGE,
    }
    assert _check(network, cert).der == cert


def test_octet_strings() -> None:
    """The EncryptionKey and EncryptionKeyDigest extension values (docs/PROTOCOL.md section
    8): DER OCTET STRINGs, with the shortest length form, read back only when exact."""
    heads = {0: "0400", 32: "0420", 127: "047f", 128: "048180", 255: "0481ff", 1216: "048204c0"}
    for size, head in heads.items():
        content = bytes(range(256)) * 5
        value = der.encode_octet_string(content[:size])
        assert value.hex() == head + content[:size].hex()
        assert der.octet_string(value) == content[:size]
    for bad in ("", "0401", "04020000ff", "0381800000", "048120" + "00" * 32, "0500"):
        with pytest.raises(ValueError):
            der.octet_string(bytes.fromhex(bad))
