"""The card through the real PC/SC stack: a card process in a vpcd slot, pcscd, pyscard, and
``opensc-tool`` (a tool nobody here wrote) talking to it."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from offcash.card import link, process
from offcash.card import wallets as card_wallets
from offcash.card.pcsc import PcscChannel, card_present
from offcash.crypto.algorithms import SignatureAlgorithm
from offcash.encoding import cbor
from offcash.errors import CardNotAuthenticated
from offcash.se.card.apdu import exchange
from offcash.se.card.host import CardSecureElement
from offcash.se.card.wire import AID, Ins, decode_status

from card_doubles import SECRETS, RecordingChannel, ReplayingCard, certificate_in, genuine
from harness import T0, PilotNetwork
from pcsc_card import opensc_tool, vpcd_readers

PIN, PUK = "4321", "11223344"


@pytest.fixture
def card(tmp_path: Path) -> Iterator[process.CardProcess]:
    """A blank card in a free vpcd slot, taken out at the end."""
    vpcd_readers()
    inserted = process.start(tmp_path, "w", tmp_path / "w.card")
    yield inserted
    process.stop(tmp_path, "w")
    assert not card_present(inserted.reader)


def _session(reader: str) -> tuple[PcscChannel, CardSecureElement]:
    channel = PcscChannel(reader)
    return channel, CardSecureElement(channel)


def test_a_post_quantum_card_wallet_pays_through_pcsc(
    card: process.CardProcess, tmp_path: Path
) -> None:
    net = PilotNetwork.create(SignatureAlgorithm.ML_DSA_65)
    channel, se = _session(card.reader)
    try:
        se.personalise(net.params, net.central_bank.certificate_der, PIN, PUK)
        se.verify(PIN)
        net.wallet(1_000, se=se)
        payee = net.wallet(0, bank="Bank B")
        payment = se.pay_to(payee.status(T0).wallet_id, 300, T0)  # type: ignore[arg-type]
        assert len(payment) > 8_000  # an ML-DSA-65 payment, chained over short APDUs
        assert payee.receive(payment, T0).amount == 300
    finally:
        channel.close()
    # a new PC/SC session (the card was reset): the PIN again, the state as persisted
    channel, se = _session(card.reader)
    try:
        assert se.info.pin_tries == 3
        se.verify(PIN)
        assert se.status(T0).balance == 700
        assert se.sent_payment(1) == payment
    finally:
        channel.close()


def _opensc(reader: str, *apdus: str) -> list[tuple[int, bytes]]:
    """Send ``apdus`` with ``opensc-tool -s``; each answer's status word and data."""
    args = [opensc_tool(), "-r", reader]
    for apdu in apdus:
        args += ["-s", apdu]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60, check=True).stdout
    answers: list[tuple[int, bytes]] = []
    for line in out.splitlines():
        received = re.match(r"Received \(SW1=0x([0-9A-F]{2}), SW2=0x([0-9A-F]{2})\)", line)
        if received:
            answers.append((int(received[1] + received[2], 16), b""))
        elif answers and re.match(r"^([0-9A-F]{2} )+", line):
            sw, data = answers[-1]
            answers[-1] = (sw, data + bytes.fromhex(line[:48]))  # 16 bytes a line, then ASCII
    return answers


def test_opensc_tool_selects_and_reads_the_status(card: process.CardProcess) -> None:
    net = PilotNetwork.create()
    channel, se = _session(card.reader)
    try:
        se.personalise(net.params, net.central_bank.certificate_der, PIN, PUK)
        se.verify(PIN)
        net.wallet(1_234, se=se)
        expected = se.status(T0)
    finally:
        channel.close()
    select = "00 A4 04 00 09 " + AID.hex(" ").upper() + " 00"
    verify = "00 20 00 81 04 " + PIN.encode().hex(" ")
    status = "80 12 00 00 06 " + cbor.encode([T0]).hex(" ") + " 00"  # case 4: Le 00
    answers = _opensc(card.reader, select, verify, status)
    assert [sw for sw, _ in answers] == [0x9000, 0x9000, 0x9000]
    fci = answers[0][1]
    assert fci.hex().upper() == (
        "6F19" + "8409" + AID.hex().upper() + "A50C" + "800101" + "810101" + "820103" + "83010A"
    )
    assert decode_status(answers[2][1]) == expected
    assert decode_status(answers[2][1]).balance == 1_234
    # without VERIFY the card refuses GET STATUS: 69 82, security status not satisfied
    assert [sw for sw, _ in _opensc(card.reader, select, status)] == [0x9000, 0x6982]


def test_a_second_card_goes_to_the_other_slot(card: process.CardProcess, tmp_path: Path) -> None:
    readers = vpcd_readers()
    if len(readers) < 2:
        pytest.skip("one vpcd slot only")
    other = process.start(tmp_path, "v", tmp_path / "v.card")
    try:
        assert other.reader != card.reader and card_present(other.reader)
        assert set(process.running(tmp_path)) == {"w", "v"}
        with pytest.raises(Exception, match="every vpcd reader holds a card"):
            process.start(tmp_path, "x", tmp_path / "x.card")
    finally:
        assert process.stop(tmp_path, "v")
    assert "v" not in process.running(tmp_path)


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


def test_a_card_that_is_not_the_wallets_gets_no_pin_over_pcsc(
    card: process.CardProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through pcscd and vpcd: the wallet's card is authenticated, then gets the PIN; another
    wallet's card, and a fake card a process put in the vpcd slot (vpcd listens on all
    interfaces) replaying the genuine card's answer to an earlier challenge, are refused
    before any VERIFY: the APDUs recorded on the PC/SC channel and by the fake card say so."""
    net = PilotNetwork.create()
    channel, se = _session(card.reader)
    try:
        se.personalise(net.params, net.central_bank.certificate_der, PIN, PUK)
        se.verify(PIN)
        net.wallet(0, se=se)
        fci, _ = exchange(channel.transmit, 0x00, Ins.SELECT, 0x04, 0x00, AID)
        answer, _ = exchange(
            channel.transmit, 0x00, Ins.INTERNAL_AUTHENTICATE, 0, 0, os.urandom(32)
        )
    finally:
        channel.close()
    certificate = certificate_in((tmp_path / "w.card").read_bytes())
    channels: list[RecordingChannel] = []

    def recording(reader: str) -> RecordingChannel:
        channels.append(RecordingChannel(PcscChannel(reader)))
        return channels[-1]

    monkeypatch.setattr(card_wallets, "PcscChannel", recording)
    try:
        card_wallets.session(card.reader, PIN, [certificate])
        assert channels[-1].sent() == [Ins.SELECT, Ins.INTERNAL_AUTHENTICATE, Ins.VERIFY]
        card_wallets.close_all()
        other = genuine(net, "9999")  # the host expects that wallet's card, and its PIN
        with pytest.raises(CardNotAuthenticated):
            card_wallets.session(card.reader, "9999", [other.certificate])
        assert channels[-1].sent() == [Ins.SELECT, Ins.INTERNAL_AUTHENTICATE]
    finally:
        card_wallets.close_all()
    channel, se = _session(card.reader)
    assert se.info.pin_tries == 3  # VERIFY 9999 would have cost a try
    channel.close()

    assert process.stop(tmp_path, "w")
    fake = ReplayingCard(fci, answer)
    sock = socket.create_connection(("127.0.0.1", link.VPCD_PORT + card.slot))
    server = threading.Thread(target=link.serve, args=(sock, fake), daemon=True)
    server.start()
    try:
        _until(lambda: card_present(card.reader), "the fake card is in the reader")
        with pytest.raises(CardNotAuthenticated):
            card_wallets.session(card.reader, PIN, [certificate])
        sent = {apdu[1] for apdu in fake.apdus}
        assert Ins.INTERNAL_AUTHENTICATE in sent and not sent & SECRETS
    finally:
        card_wallets.close_all()
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        server.join(10)
        _until(lambda: not card_present(card.reader), "the fake card is out")
