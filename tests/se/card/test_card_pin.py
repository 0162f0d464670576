"""The card's PIN and PUK: retry counters persisted before comparing, blocking, unblocking."""

from __future__ import annotations

from pathlib import Path

import pytest

from offcash.errors import PinBlocked, SecureElementError, WrongPin
from offcash.se.card.apdu import split_response
from offcash.se.card.applet import Applet
from offcash.se.card.eeprom import CardImage, FileEeprom
from offcash.se.card.host import AppletChannel, CardSecureElement
from offcash.se.card.wire import AID, LifeCycle

from harness import T0, PilotNetwork

PIN, PUK = "1234", "87654321"
VERIFY = bytes.fromhex("0020008104")


class RecordingEeprom(FileEeprom):
    """A card memory file that also remembers every image written, in order."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.writes: list[CardImage] = []

    def write(self, image: bytes) -> None:
        super().write(image)
        self.writes.append(CardImage.decode(image))


def _card(path: Path, net: PilotNetwork | None = None) -> CardSecureElement:
    """The card whose memory is ``path`` (personalised first when ``net`` is given), freshly
    powered: a new applet over the file, as after pulling the card out and back in."""
    se = CardSecureElement(AppletChannel(Applet(FileEeprom(path))))
    if net is not None:
        se.personalise(net.params, net.central_bank.certificate_der, PIN, PUK)
    return se


@pytest.fixture
def card_file(tmp_path: Path, p256: PilotNetwork) -> Path:
    path = tmp_path / "card.eeprom"
    _card(path, p256)
    return path


def test_three_wrong_pins_block_the_card_and_then_the_right_one_is_refused(
    card_file: Path,
) -> None:
    se = _card(card_file)
    assert se.info.pin_tries == 3 and se.pin_tries() == 3
    for left in ("2 tries", "1 try"):
        with pytest.raises(WrongPin, match=f"{left} left") as e:
            se.verify("9999")
        assert type(e.value) is WrongPin
    with pytest.raises(PinBlocked):  # 63C0: the third wrong try blocks
        se.verify("9999")
    with pytest.raises(PinBlocked):  # 6983: the right PIN no longer opens it
        se.verify(PIN)
    raw = AppletChannel(Applet(FileEeprom(card_file)))
    raw.transmit(bytes.fromhex("00A4040009") + AID)
    assert split_response(raw.transmit(VERIFY + PIN.encode()))[1] == 0x6983
    assert _card(card_file).info.life_cycle is LifeCycle.PIN_BLOCKED


def test_the_counter_survives_a_card_restart(card_file: Path) -> None:
    for _ in range(2):
        with pytest.raises(WrongPin):
            _card(card_file).verify("0000")
    assert _card(card_file).info.pin_tries == 1  # in the SELECT answer, after a restart
    with pytest.raises(PinBlocked):
        _card(card_file).verify("0000")
    with pytest.raises(PinBlocked):
        _card(card_file).verify(PIN)


def test_the_try_is_persisted_before_the_comparison(tmp_path: Path, p256: PilotNetwork) -> None:
    path = tmp_path / "card.eeprom"
    _card(path, p256)
    eeprom = RecordingEeprom(path)
    se = CardSecureElement(AppletChannel(Applet(eeprom)))
    se.verify(PIN)
    # first the decremented counter, then (the PIN matched) the restored one
    assert [w.pin_tries for w in eeprom.writes] == [2, 3]


class PowerCut(Exception):
    pass


class CutAfterFirstWrite(FileEeprom):
    """A card memory whose power is cut right after the first write."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.written = 0

    def write(self, image: bytes) -> None:
        if self.written:
            raise PowerCut
        super().write(image)
        self.written += 1


def test_cutting_the_power_during_a_try_costs_the_try(card_file: Path) -> None:
    applet = Applet(CutAfterFirstWrite(card_file))
    applet.process(bytes.fromhex("00A4040009") + AID)
    # the right PIN, but the power goes before the counter is restored: no answer, no session
    assert split_response(applet.process(VERIFY + PIN.encode()))[1] == 0x6F00
    assert _card(card_file).info.pin_tries == 2


def test_the_puk_unblocks_with_a_new_pin(card_file: Path, p256: PilotNetwork) -> None:
    se = _card(card_file)
    for _ in range(3):
        with pytest.raises(WrongPin):
            se.verify("0000")
    with pytest.raises(WrongPin, match="9 tries left"):
        se.unblock("11111111", "5555")
    se.unblock(PUK, "5555")
    se = _card(card_file)
    assert se.info.pin_tries == 3 and se.info.puk_tries == 10
    with pytest.raises(WrongPin):
        se.verify(PIN)  # the old PIN is gone
    se.verify("5555")
    assert se.status(T0).currency == p256.params.currency


def test_ten_wrong_puks_kill_the_card(card_file: Path) -> None:
    se = _card(card_file)
    for _ in range(9):
        with pytest.raises(WrongPin):
            se.unblock("00000000", "5555")
    with pytest.raises(PinBlocked):
        se.unblock("00000000", "5555")
    with pytest.raises(PinBlocked):
        se.unblock(PUK, "5555")
    assert _card(card_file).info.life_cycle is LifeCycle.DEAD
    with pytest.raises(PinBlocked):
        _card(card_file).verify(PIN)


def test_operations_need_the_pin_in_the_session(card_file: Path) -> None:
    se = _card(card_file)
    with pytest.raises(SecureElementError, match="not verified"):
        se.status(T0)
    se.verify(PIN)
    assert se.pin_tries() == 3
    se.select()  # a new SELECT ends the session
    with pytest.raises(SecureElementError, match="not verified"):
        se.csr()


def test_change_pin(card_file: Path) -> None:
    se = _card(card_file)
    with pytest.raises(WrongPin):
        se.change_pin("0000", "2222")
    se.change_pin(PIN, "2222")
    with pytest.raises(WrongPin, match="2 tries left"):
        _card(card_file).verify(PIN)
    _card(card_file).verify("2222")  # and the counter is full again


@pytest.mark.parametrize("pin", ["", "123", "x" * 17, "12 4", "12\u00e94"])
def test_a_pin_of_the_wrong_form_is_a_value_error(card_file: Path, pin: str) -> None:
    with pytest.raises(ValueError):
        _card(card_file).verify(pin)
    assert _card(card_file).info.pin_tries == 3  # refused before anything was sent


def test_a_personalised_card_cannot_be_personalised_again(
    card_file: Path, p256: PilotNetwork
) -> None:
    se = _card(card_file)
    with pytest.raises(SecureElementError, match="already personalised"):
        se.personalise(p256.params, p256.central_bank.certificate_der, "9999", "99999999")
    se.verify(PIN)
