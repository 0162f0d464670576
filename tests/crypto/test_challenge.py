"""The card-authentication signature: its bytes can be no other offcash signature's."""

from __future__ import annotations

import os

import pytest

from offcash.crypto import challenge, pki
from offcash.domain.ids import WalletId
from offcash.domain.limits import DEFAULT_LIMITS
from offcash.errors import DecodeError, SecureElementError
from offcash.se.software import SoftwareSecureElement

from harness import T0, PilotNetwork


def test_the_signed_bytes_are_the_context_and_exactly_32_challenge_bytes() -> None:
    assert challenge.signed_bytes(bytes(32)) == b"offcash card authentication v1\x00" + bytes(32)
    for size in (0, 31, 33):
        with pytest.raises(ValueError, match="32 bytes"):
            challenge.signed_bytes(bytes(size))
    with pytest.raises(ValueError):
        challenge.signed_bytes(bytearray(32))  # type: ignore[arg-type]


def test_the_context_is_apart_from_every_other_signed_form() -> None:
    signed = challenge.signed_bytes(bytes(32))
    assert signed[0] not in (0x84, 0x30)  # a COSE Sig_structure, a DER SEQUENCE
    rollover = pki.ROLLOVER_CONTEXT
    assert not signed.startswith(rollover) and not rollover.startswith(challenge.CONTEXT)


def _software_se(net: PilotNetwork) -> SoftwareSecureElement:
    root = net.central_bank.certificate_der
    return SoftwareSecureElement(SoftwareSecureElement.new_state(net.params, root))


def test_an_se_answers_under_its_certificates_key_once_enrolled(
    network_of_algorithm: PilotNetwork,
) -> None:
    net = network_of_algorithm
    se, other = _software_se(net), _software_se(net)
    with pytest.raises(SecureElementError, match="not enrolled"):
        se.authenticate(bytes(32))
    certificates = []
    for s in (se, other):
        certificate = net.bank().certify_wallet(s.csr(), WalletId.random(), DEFAULT_LIMITS, 0, T0)
        s.enroll(certificate, net.bank_ders, [], T0)
        certificates.append(certificate)
    nonce = os.urandom(32)
    answer = se.authenticate(nonce)
    assert challenge.verify_challenge(challenge.certificate_key(certificates[0]), nonce, answer)
    assert not challenge.verify_challenge(
        challenge.certificate_key(certificates[0]), os.urandom(32), answer
    )
    assert not challenge.verify_challenge(challenge.certificate_key(certificates[1]), nonce, answer)
    with pytest.raises(DecodeError):
        challenge.certificate_key(b"not a certificate")
