"""The APDU codec: ISO 7816-4 cases, extended length, chaining, GET RESPONSE, malformed input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offcash.encoding import cbor
from offcash.se.card.apdu import SW, ApduError, Command, chain, exchange, split_response
from offcash.se.card.applet import Applet
from offcash.se.card.eeprom import MemoryEeprom
from offcash.se.card.wire import AID, ATR, Ins

from harness import PilotNetwork

SELECT = bytes.fromhex("00A40400") + bytes([len(AID)]) + AID + b"\x00"  # case 4: Le 00


# --- the four cases, short and extended, byte for byte (ISO 7816-4 5.1) ----------------------

VECTORS = [
    ("00A40400", Command(0x00, 0xA4, 0x04, 0x00)),  # case 1
    ("00C0000000", Command(0x00, 0xC0, 0, 0, le=256)),  # case 2 short, Le 00 = 256
    ("00C0000010", Command(0x00, 0xC0, 0, 0, le=16)),
    ("0020008104" + "31323334", Command(0x00, 0x20, 0, 0x81, b"1234")),  # case 3 short
    ("8012000003" + "010203" + "00", Command(0x80, 0x12, 0, 0, b"\x01\x02\x03", 256)),  # case 4
    ("80120000000000", Command(0x80, 0x12, 0, 0, le=65536, extended=True)),  # case 2 extended
    ("8012000000012C", Command(0x80, 0x12, 0, 0, le=300, extended=True)),
    ("80120000000003" + "010203", Command(0x80, 0x12, 0, 0, b"\x01\x02\x03", extended=True)),
    (
        "80120000000003" + "010203" + "0000",
        Command(0x80, 0x12, 0, 0, b"\x01\x02\x03", 65536, True),
    ),
]


@pytest.mark.parametrize(("hex_apdu", "command"), VECTORS)
def test_the_standard_cases_parse_and_encode_byte_for_byte(hex_apdu: str, command: Command) -> None:
    apdu = bytes.fromhex(hex_apdu)
    assert Command.parse(apdu) == command
    assert command.encode() == apdu


def test_long_data_or_le_switch_to_the_extended_form() -> None:
    long = Command(0x80, 0x42, 0, 0, b"x" * 256, 256).encode()
    assert long[4] == 0 and long[5:7] == (256).to_bytes(2, "big") and long[-2:] == b"\x01\x00"
    assert Command.parse(long).data == b"x" * 256


@given(
    cla=st.integers(0, 255),
    ins=st.integers(0, 255),
    data=st.binary(max_size=600),
    le=st.none() | st.integers(1, 65536),
    extended=st.booleans(),
)
def test_every_command_reads_back_as_it_was_written(
    cla: int, ins: int, data: bytes, le: int | None, extended: bool
) -> None:
    command = Command(cla, ins, 1, 2, data, le, extended)
    parsed = Command.parse(command.encode())
    assert (parsed.cla, parsed.ins, parsed.p1, parsed.p2, parsed.data, parsed.le) == (
        cla,
        ins,
        1,
        2,
        data,
        le,
    )


@pytest.mark.parametrize(
    "hex_apdu",
    [
        "",
        "00",
        "00A404",  # shorter than a header
        "00A4040005" + "0102",  # Lc 5, 2 bytes
        "00A4040002" + "010203" + "0000",  # Lc 2, then 4 bytes
        "00A4040000",  # no: this is case 2 (Le 256), fine - replaced below
        "00A404000000",  # extended, truncated length
        "00A40400000000" + "01",  # extended Lc 0
        "00A404000000050102",  # extended Lc 5, 2 bytes
    ],
)
def test_malformed_lengths_are_6700(hex_apdu: str) -> None:
    apdu = bytes.fromhex(hex_apdu)
    if hex_apdu == "00A4040000":  # a valid case 2: documents why it is not malformed
        assert Command.parse(apdu).le == 256
        return
    with pytest.raises(ApduError) as e:
        Command.parse(apdu)
    assert e.value.sw == SW.WRONG_LENGTH
    assert split_response(Applet(MemoryEeprom()).process(apdu))[1] == SW.WRONG_LENGTH


# --- the applet answers every malformed APDU with a status word, never a crash -------------


def _sw(applet: Applet, hex_apdu: str) -> int:
    return split_response(applet.process(bytes.fromhex(hex_apdu)))[1]


@pytest.mark.parametrize(
    ("hex_apdu", "sw"),
    [
        ("01A40400", SW.LOGICAL_CHANNEL_NOT_SUPPORTED),
        ("0CA40400", SW.SECURE_MESSAGING_NOT_SUPPORTED),
        ("40A40400", SW.CLA_NOT_SUPPORTED),
        ("FFA40400", SW.LOGICAL_CHANNEL_NOT_SUPPORTED),
        ("00B00000", SW.INS_NOT_SUPPORTED),  # READ BINARY: no files here
        ("00A4000000", SW.WRONG_P1P2),  # SELECT by file id
        ("00A4040005F0AABBCCDD", SW.NOT_FOUND),  # another application
        ("00C0000000", SW.CONDITIONS),  # GET RESPONSE with nothing pending
        ("8012000000", SW.CONDITIONS),  # nothing selected
        ("0020008104" + "31323334", SW.CONDITIONS),  # VERIFY before SELECT
    ],
)
def test_refused_apdus_get_their_iso_status_word(hex_apdu: str, sw: int) -> None:
    assert _sw(Applet(MemoryEeprom()), hex_apdu) == sw


def test_select_answers_the_documented_fci_on_a_blank_card() -> None:
    answer = Applet(MemoryEeprom()).process(SELECT)
    # 6F FCI: 84 the AID, A5 proprietary: 80 version 01, 81 life cycle 00 (blank),
    # 82 PIN tries 00, 83 PUK tries 00; then 90 00
    fci = "6F198409" + AID.hex() + "A50C" + "800101" + "810100" + "820100" + "830100"
    assert answer.hex().upper() == (fci + "9000").upper()
    # without Le (case 3) the FCI waits for GET RESPONSE: 61 1B, then 00 C0 00 00 1B
    applet = Applet(MemoryEeprom())
    assert applet.process(SELECT[:-1]).hex().upper() == "611B"
    assert applet.process(bytes.fromhex("00C000001B")).hex().upper() == (fci + "9000").upper()
    assert ATR[0] == 0x3B


def test_a_partial_aid_selects_the_application() -> None:
    applet = Applet(MemoryEeprom())
    assert _sw(applet, "00A4040C04" + AID[:4].hex()) == SW.OK  # P2 0C: no FCI
    assert applet.process(bytes.fromhex("00A4040C04") + AID[:4]) == b"\x90\x00"


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_random_bytes_never_crash_the_card(apdu: bytes) -> None:
    applet = Applet(MemoryEeprom())
    applet.process(SELECT)
    answer = applet.process(apdu)
    _data, sw = split_response(answer)
    assert 0x6000 <= sw <= 0x6FFF or sw == SW.OK
    assert sw != SW.UNKNOWN  # a malformed APDU is a checking error, not an internal one


# --- chaining and GET RESPONSE -----------------------------------------------------------------


def _personalised(net: PilotNetwork) -> Applet:
    applet = Applet(MemoryEeprom())
    applet.process(SELECT)
    args = cbor.encode(
        [net.params.to_cbor(), net.central_bank.certificate_der, b"1234", b"12345678"]
    )
    _data, sw = exchange(applet.process, 0x80, Ins.PERSONALISE, 0, 0, args)
    assert sw == SW.OK, hex(sw)
    assert exchange(applet.process, 0x00, Ins.VERIFY, 0, 0x81, b"1234")[1] == SW.OK
    return applet


def test_a_chain_is_joined_and_a_long_answer_dealt_out_in_pieces(network: PilotNetwork) -> None:
    applet = _personalised(network)
    sent: list[bytes] = []

    def transmit(apdu: bytes) -> bytes:
        sent.append(apdu)
        return applet.process(apdu)

    short, sw = exchange(transmit, 0x80, Ins.GET_TRUST, 0, 0)
    assert sw == SW.OK
    pieces = len(sent)
    # the answer (root certificate and network parameters) came in GET RESPONSE pieces
    assert pieces == 1 + (len(short) - 1) // 256
    assert all(a[:4] == bytes.fromhex("00C00000") for a in sent[1:])
    extended, sw = exchange(applet.process, 0x80, Ins.GET_TRUST, 0, 0, extended=True)
    assert sw == SW.OK and extended == short
    assert cbor.decode(short, max_bytes=1 << 20)[1] == network.central_bank.certificate_der


def test_a_chain_broken_by_another_command_is_refused() -> None:
    applet = Applet(MemoryEeprom())
    applet.process(SELECT)
    first = chain(0x80, Ins.PERSONALISE, 0, 0, b"\x00" * 600)[0]
    assert first.chained and split_response(applet.process(first.encode()))[1] == SW.OK
    other = Command(0x80, Ins.GET_STATUS, 0, 0, b"\x81\x00").encode()
    assert split_response(applet.process(other))[1] == SW.LAST_COMMAND_EXPECTED


def test_a_chain_longer_than_the_card_joins_is_refused() -> None:
    applet = Applet(MemoryEeprom())
    applet.process(SELECT)
    piece = Command(0x90, Ins.PERSONALISE, 0, 0, b"\x00" * 65535).encode()
    sws = {split_response(applet.process(piece))[1] for _ in range(17)}
    assert SW.WRONG_LENGTH in sws  # 17 x 64 KiB > the 1 MiB the card joins


def test_chained_commands_carry_a_post_quantum_sized_message() -> None:
    data = bytes(range(256)) * 40  # 10 KiB, an ML-DSA-65 payment's size
    commands = chain(0x80, Ins.RECEIVE, 0, 0, data)
    assert len(commands) == 41
    assert all(c.chained for c in commands[:-1]) and not commands[-1].chained
    assert b"".join(c.data for c in commands) == data
    assert all(len(c.encode()) <= 5 + 255 + 1 for c in commands)  # every one a short APDU
