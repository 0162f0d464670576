"""Signing X.509 certificates and CRLs with a key ``cryptography`` cannot hold (an HSM's).

Theory of operation: ``cryptography``'s builders sign only with its own private keys. For any
other ``Signer`` the builder signs with a throwaway key of the same algorithm: the result's TBS
is exactly what we need (the issuer, subject key, extensions and, inside it, the signature
AlgorithmIdentifier all depend on the algorithm, not on the key; the authority key identifier is
computed by the caller from the real signer's public key). We keep that TBS and its outer
AlgorithmIdentifier, have the real signer sign the TBS, and assemble the DER ourselves:
``SEQUENCE { tbs, AlgorithmIdentifier, BIT STRING signature }`` (RFC 5280 4.1 and 5.1), where
the signature is a DER ECDSA-Sig-Value for P-256 (RFC 3279) and the raw 64 bytes for Ed25519
(RFC 8410). The assembled object is parsed back and its signature verified under the signer's
public key before it is returned, so a misbehaving token cannot produce a bad certificate.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from offcash.crypto import der
from offcash.crypto.algorithms import SignatureAlgorithm
from offcash.crypto.signer import KeySigner, Signer

_SEQUENCE = 0x30
_BIT_STRING = 0x03
_P256_COORD = 32


def tlv(tag: int, content: bytes) -> bytes:
    """One DER item: ``tag``, the shortest definite length, ``content``."""
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    size = (n.bit_length() + 7) // 8
    return bytes((tag, 0x80 | size)) + n.to_bytes(size, "big") + content


def x509_signature(algorithm: SignatureAlgorithm, cose_signature: bytes) -> bytes:
    """A COSE-form signature as X.509 carries it (DER ECDSA-Sig-Value for P-256)."""
    if algorithm is SignatureAlgorithm.P256:
        if len(cose_signature) != 2 * _P256_COORD:
            raise ValueError("a P-256 signature is 64 bytes r || s")
        r = int.from_bytes(cose_signature[:_P256_COORD], "big")
        s = int.from_bytes(cose_signature[_P256_COORD:], "big")
        return encode_dss_signature(r, s)
    return cose_signature


def split_signed(data: bytes) -> tuple[bytes, bytes, bytes]:
    """The TBS, the outer AlgorithmIdentifier and the signature BIT STRING's bits of a signed
    X.509 object (certificate or CRL), each as encoded; ``ValueError`` if it is not one."""
    start, end = der.item(data, 0, len(data), _SEQUENCE)
    if end != len(data):
        raise ValueError("trailing bytes after the signed object")
    tbs_end = der.item(data, start, end, _SEQUENCE)[1]
    algorithm_end = der.item(data, tbs_end, end, _SEQUENCE)[1]
    bits_start, bits_end = der.item(data, algorithm_end, end, _BIT_STRING)
    if bits_end != end or bits_start == bits_end or data[bits_start] != 0:
        raise ValueError("the signature must be a BIT STRING with no unused bits, last")
    return data[start:tbs_end], data[tbs_end:algorithm_end], data[bits_start + 1 : bits_end]


def assemble(tbs: bytes, algorithm_identifier: bytes, signature: bytes) -> bytes:
    """``SEQUENCE { tbs, algorithm_identifier, BIT STRING signature }`` in DER."""
    return tlv(_SEQUENCE, tbs + algorithm_identifier + tlv(_BIT_STRING, b"\x00" + signature))


def _signed_der(signer: Signer, throwaway_der: bytes) -> bytes:
    tbs, algorithm_identifier, _ = split_signed(throwaway_der)
    signature = x509_signature(signer.algorithm, signer.sign(tbs))
    return assemble(tbs, algorithm_identifier, signature)


def _check(signer: Signer, tbs: bytes, signature: bytes) -> None:
    key = signer.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, tbs, ec.ECDSA(hashes.SHA256()))
    else:
        key.verify(signature, tbs)


def sign_certificate(builder: x509.CertificateBuilder, signer: Signer) -> x509.Certificate:
    """``builder``'s certificate signed by ``signer`` (directly for an in-memory key)."""
    alg = signer.algorithm
    if isinstance(signer, KeySigner):
        return builder.sign(signer.key, alg.x509_hash())
    throwaway = builder.sign(alg.generate(), alg.x509_hash())
    cert = x509.load_der_x509_certificate(
        _signed_der(signer, throwaway.public_bytes(serialization.Encoding.DER))
    )
    _check(signer, cert.tbs_certificate_bytes, cert.signature)
    return cert


def sign_crl(
    builder: x509.CertificateRevocationListBuilder, signer: Signer
) -> x509.CertificateRevocationList:
    """``builder``'s CRL signed by ``signer`` (directly for an in-memory key)."""
    alg = signer.algorithm
    if isinstance(signer, KeySigner):
        return builder.sign(signer.key, alg.x509_hash())
    throwaway = builder.sign(alg.generate(), alg.x509_hash())
    crl = x509.load_der_x509_crl(
        _signed_der(signer, throwaway.public_bytes(serialization.Encoding.DER))
    )
    _check(signer, crl.tbs_certlist_bytes, crl.signature)
    return crl
