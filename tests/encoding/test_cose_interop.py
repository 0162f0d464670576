"""An independent COSE implementation (python-cwt) verifies offcash's messages.

The issue asks for it: the project's COSE_Sign1 is its own small implementation, so a second
one must agree that the payments are valid RFC 9052 messages and that tampering breaks them.
"""

from __future__ import annotations

import cwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from offcash.crypto.algorithms import SignatureAlgorithm
from offcash.domain.ids import WalletId
from offcash.encoding import cose
from offcash.protocol import messages as m

from factories import P256_N, cose_join, cose_parts, make_signer
from harness import T0, PilotNetwork

COSE_ALG = {SignatureAlgorithm.P256: "ES256", SignatureAlgorithm.ED25519: "EdDSA"}


def _cwt_key(certificate_der: bytes, alg: SignatureAlgorithm) -> cwt.COSEKey:
    public = x509.load_der_x509_certificate(certificate_der).public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return cwt.COSEKey.from_pem(pem, alg=COSE_ALG[alg])


def _payment(network: PilotNetwork) -> bytes:
    a, b = network.wallet(1000), network.wallet()
    return a.pay(b.request(250, T0, reference="inv 1"), T0)


def test_cwt_verifies_a_payment(network: PilotNetwork) -> None:
    data = _payment(network)
    parsed = m.parse_payment(data)
    key = _cwt_key(parsed.envelope.certificate_der, network.params.algorithm)
    protected, unprotected, payload = cwt.COSE.new().decode_with_headers(data, key)
    assert payload == parsed.envelope.payload
    assert unprotected == {}
    assert protected[1] == network.params.algorithm.cose_id
    assert protected[33] == parsed.envelope.certificate_der
    assert protected[cose.HEADER_KIND] == cose.Kind.PAYMENT
    assert protected[cose.HEADER_VERSION] == cose.PROTOCOL_VERSION


def test_cwt_verifies_every_signed_kind(network: PilotNetwork) -> None:
    s = make_signer(network)
    bank = network.banks[0]
    key = _cwt_key(s.cert, network.params.algorithm)
    bank_key = _cwt_key(bank.certificate_der, network.params.algorithm)
    signed = [
        (m.sign_receipt(s.key, s.cert, payment=bytes(32), time=T0), key),
        (m.sign_unload(s.key, s.cert, amount=1, currency="EUR", counter=1, time=T0), key),
        (s.report(), key),
        (bank.voucher(WalletId(bytes(12)), 5, "EUR", T0), bank_key),
        (
            m.sign_ack(
                bank.key,
                bank.certificate_der,
                wallet=bytes(12),
                sync_seq=0,
                entries=0,
                log_digest=bytes(32),
                time=T0,
            ),
            bank_key,
        ),
    ]
    for data, k in signed:
        assert cwt.COSE.new().decode(data, k) == cose.decode_sign1(data).payload


@pytest.mark.parametrize("where", [0, 17, -1])
def test_cwt_rejects_a_flipped_signature_byte(network: PilotNetwork, where: int) -> None:
    data = _payment(network)
    parts = cose_parts(data)
    sig = bytearray(parts[3])
    sig[where] ^= 0x01
    parts[3] = bytes(sig)
    key = _cwt_key(m.parse_payment(data).envelope.certificate_der, network.params.algorithm)
    with pytest.raises(cwt.VerifyError):
        cwt.COSE.new().decode(cose_join(parts), key)


def test_cwt_rejects_a_tampered_payload(network: PilotNetwork) -> None:
    data = _payment(network)
    parts = cose_parts(data)
    parts[2] = parts[2].replace(b"inv 1", b"inv 2")
    key = _cwt_key(m.parse_payment(data).envelope.certificate_der, network.params.algorithm)
    with pytest.raises(cwt.VerifyError):
        cwt.COSE.new().decode(cose_join(parts), key)


def test_cwt_rejects_another_signers_key(network: PilotNetwork) -> None:
    data = _payment(network)
    key = _cwt_key(make_signer(network).cert, network.params.algorithm)
    with pytest.raises(cwt.VerifyError):
        cwt.COSE.new().decode(data, key)


def test_offcash_verifies_a_cwt_signed_message(network: PilotNetwork) -> None:
    """The other direction: cwt signs a Sign1 with our headers; our decoder and verifier agree."""
    from offcash.crypto.algorithms import verify

    s = make_signer(network)
    pem = s.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    key = cwt.COSEKey.from_pem(pem, alg=COSE_ALG[network.params.algorithm])
    payload = cose.decode_sign1(s.payment(WalletId(bytes(12)))).payload
    protected = {
        1: network.params.algorithm.cose_id,
        33: s.cert,
        cose.HEADER_KIND: int(cose.Kind.PAYMENT),
        cose.HEADER_VERSION: cose.PROTOCOL_VERSION,
    }
    data = cwt.COSE.new(deterministic_header=True).encode_and_sign(
        payload, key, protected=protected
    )
    env = cose.decode_sign1(data)
    sig = env.signature
    if network.params.algorithm is SignatureAlgorithm.P256:
        # cwt does not normalize ECDSA's s: offcash accepts only the canonical (low) form, so
        # another implementation must normalize as offcash's signers do (docs/PROTOCOL.md)
        high = int.from_bytes(sig[32:], "big") > P256_N // 2
        assert verify(s.key.public_key(), sig, env.to_be_signed()) is not high
        low = min(int.from_bytes(sig[32:], "big"), P256_N - int.from_bytes(sig[32:], "big"))
        sig = sig[:32] + low.to_bytes(32, "big")
    assert verify(s.key.public_key(), sig, env.to_be_signed())
    assert m.parse_payment(data).payee == WalletId(bytes(12))
