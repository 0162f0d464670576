"""INTERNAL AUTHENTICATE on the card: the answer to a host's challenge, before any PIN.

The oracle is ``cryptography`` on the certificate's key over the documented bytes (the context
written out here, not the code's constant): the card signs ``"offcash card authentication
v1\\0" || challenge`` with its certified key, needs no PIN, unlocks nothing, and signs nothing
but 32-byte challenges in that context."""

from __future__ import annotations

import os

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from offcash.encoding import cbor
from offcash.se.card import wire
from offcash.se.card.apdu import SW, Command, exchange, split_response
from offcash.se.card.applet import Applet
from offcash.se.card.eeprom import MemoryEeprom
from offcash.se.card.host import AppletChannel, CardSecureElement
from offcash.se.card.wire import Ins, SelectInfo

from card_doubles import RecordingChannel, genuine
from harness import PilotNetwork

PIN, PUK = "1234", "87654321"
CONTEXT = b"offcash card authentication v1\x00"
SELECT = Command(0x00, Ins.SELECT, 0x04, 0x00, wire.AID, 256).encode()


def _verifies(certificate: bytes, signature: bytes, signed: bytes) -> bool:
    key = x509.load_der_x509_certificate(certificate).public_key()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            r, s = int.from_bytes(signature[:32]), int.from_bytes(signature[32:])
            key.verify(encode_dss_signature(r, s), signed, ec.ECDSA(hashes.SHA256()))
        else:
            key.verify(signature, signed)  # type: ignore[call-arg, union-attr]
    except (InvalidSignature, ValueError):
        return False
    return True


def _select(applet: Applet) -> SelectInfo:
    data, sw = split_response(applet.process(SELECT))
    assert sw == SW.OK
    return SelectInfo.decode(data)


def _authenticate(
    applet: Applet, challenge: bytes, *, p1: int = 0, extended: bool = False
) -> tuple[bytes, int, RecordingChannel]:
    channel = RecordingChannel(AppletChannel(applet))
    data, sw = exchange(
        channel.transmit, 0x00, Ins.INTERNAL_AUTHENTICATE, p1, 0, challenge, extended=extended
    )
    return data, sw, channel


@pytest.mark.parametrize("extended", [False, True], ids=["short", "extended"])
def test_the_card_signs_the_challenge_in_its_context_without_the_pin(
    network_of_algorithm: PilotNetwork, extended: bool
) -> None:
    net = network_of_algorithm
    card = genuine(net, PIN, PUK)
    _select(card.applet)  # a new session: no PIN verified
    challenge = os.urandom(32)
    signature, sw, channel = _authenticate(card.applet, challenge, extended=extended)
    assert sw == SW.OK
    assert len(signature) == net.params.algorithm.signature_size
    assert _verifies(card.certificate, signature, CONTEXT + challenge)
    assert not _verifies(card.certificate, signature, challenge)  # only in its context
    if len(signature) > 256 and not extended:  # ML-DSA: 61 XX and GET RESPONSE
        assert Ins.GET_RESPONSE in channel.sent()
    # nothing unlocked: the PIN is still needed, and no try was used
    status = Command(0x80, Ins.GET_STATUS, 0, 0, cbor.encode([0]), 256).encode()
    assert split_response(card.applet.process(status))[1] == SW.SECURITY_STATUS
    assert _select(card.applet).pin_tries == 3


def test_each_challenge_gets_its_own_answer(p256: PilotNetwork) -> None:
    card = genuine(p256, PIN, PUK)
    _select(card.applet)
    first, second = os.urandom(32), os.urandom(32)
    answer, sw, _ = _authenticate(card.applet, first)
    assert sw == SW.OK
    assert _verifies(card.certificate, answer, CONTEXT + first)
    assert not _verifies(card.certificate, answer, CONTEXT + second)


@pytest.mark.parametrize("size", [0, 1, 31, 33, 64, 300])
def test_a_challenge_of_another_size_is_refused_so_nothing_else_gets_signed(
    p256: PilotNetwork, size: int
) -> None:
    card = genuine(p256, PIN, PUK)
    _select(card.applet)
    answer, sw, _ = _authenticate(card.applet, os.urandom(size))
    assert (answer, sw) == (b"", SW.WRONG_LENGTH)


def test_wrong_p1_p2_not_selected_blank_or_unenrolled_are_refused(p256: PilotNetwork) -> None:
    challenge = os.urandom(32)
    card = genuine(p256, PIN, PUK)
    card.applet.reset()  # powered again: not selected
    assert _authenticate(card.applet, challenge)[1] == SW.CONDITIONS
    _select(card.applet)
    assert _authenticate(card.applet, challenge, p1=1)[1] == SW.WRONG_P1P2
    blank = Applet(MemoryEeprom())
    _select(blank)
    assert _authenticate(blank, challenge)[1] == SW.CONDITIONS
    unenrolled = Applet(MemoryEeprom())
    host = CardSecureElement(AppletChannel(unenrolled))
    host.personalise(p256.params, p256.central_bank.certificate_der, PIN, PUK)
    assert _authenticate(unenrolled, challenge)[1] == SW.CONDITIONS
    error = Command(0x80, Ins.GET_ERROR, 0, 0, le=256).encode()
    data, sw = split_response(unenrolled.process(error))
    assert sw == SW.OK and "not enrolled" in cbor.decode(data)[1][0]


def test_a_blocked_or_dead_card_still_proves_it_is_the_wallets(p256: PilotNetwork) -> None:
    """So the host knows its own card before it presents the PUK, or says the card is dead."""
    card = genuine(p256, PIN, PUK)
    host = CardSecureElement(AppletChannel(card.applet))
    challenge = os.urandom(32)
    for _ in range(3):
        verify = Command(0x00, Ins.VERIFY, 0, wire.PIN_REFERENCE, b"9999").encode()
        card.applet.process(verify)
    assert _select(card.applet).life_cycle is wire.LifeCycle.PIN_BLOCKED
    answer, sw, _ = _authenticate(card.applet, challenge)
    assert sw == SW.OK and _verifies(card.certificate, answer, CONTEXT + challenge)
    for _ in range(10):
        wrong_puk = b"00000000" + wire.pad_pin(b"5555")
        card.applet.process(
            Command(0x00, Ins.RESET_RETRY_COUNTER, 0, wire.PIN_REFERENCE, wrong_puk).encode()
        )
    assert _select(card.applet).life_cycle is wire.LifeCycle.DEAD
    answer, sw, _ = _authenticate(card.applet, challenge)
    assert sw == SW.OK and _verifies(card.certificate, answer, CONTEXT + challenge)
    host.authenticate([card.certificate])
