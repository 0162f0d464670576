"""Attacks on the card boundary (red team of the card, branch atk13).

Each test is an attack that worked before its fix: two card processes over one card memory
(a clone that double-spends and multiplies the PIN tries), a second connection riding the
PIN-verified session of the first, a hostile card that answers ``61xx`` forever, and the lost
answer of a payment (recovered with SENT PAYMENT)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from offcash.card import link
from offcash.card.kind import EEPROM, PIN, CardFactory
from offcash.domain.ids import WalletId
from offcash.encoding import cbor
from offcash.errors import SecureElementError
from offcash.se.card import wire
from offcash.se.card.apdu import SW, Command, response, split_response
from offcash.se.card.applet import Applet
from offcash.se.card.eeprom import CardImage, FileEeprom
from offcash.se.card.host import AppletChannel, CardSecureElement
from offcash.se.card.wire import Ins
from offcash.se.interface import SecureElement

from harness import T0, PilotNetwork


@pytest.fixture
def factory() -> Iterator[CardFactory]:
    f = CardFactory()
    yield f
    f.close()


def _wid(se: SecureElement) -> WalletId:
    wid = se.status(T0).wallet_id
    assert wid is not None
    return wid


def _verify(applet: Applet, pin: bytes) -> int:
    applet.process(Command(0, Ins.SELECT, 4, 0x0C, wire.AID).encode())
    return split_response(
        applet.process(Command(0, Ins.VERIFY, 0, wire.PIN_REFERENCE, wire.pad_pin(pin)).encode())
    )[1]


def test_a_second_card_process_over_the_same_memory_cannot_spend_the_money_again(
    p256: PilotNetwork, factory: CardFactory, tmp_path: Path
) -> None:
    """Two card processes over one card file (a stale ``cards/NAME.json``, a ``card stop``
    whose process outlived its record, a hand-started ``python -m offcash.card``): each keeps
    the image it read at start. Before the fix the second one paid from the balance the first
    had already spent: 1 000 on the card, 1 600 received."""
    folder = tmp_path / "card"
    card = factory.create(folder, p256.params, p256.central_bank.certificate_der)
    p256.wallet(1_000, se=card)
    clone = CardSecureElement(AppletChannel(Applet(FileEeprom(folder / EEPROM))))
    clone.verify(PIN)
    shop, cafe = p256.wallet(0, bank="Bank B"), p256.wallet(0, bank="Bank B")
    shop.receive(card.pay_to(_wid(shop), 800, T0), T0)
    with pytest.raises(SecureElementError):
        cafe.receive(clone.pay_to(_wid(cafe), 800, T0), T0)
    assert cafe.status(T0).balance == 0
    assert CardImage.decode((folder / EEPROM).read_bytes()).state == factory.read_state(folder)
    assert card.status(T0).balance == 200  # the first process still works


def test_two_card_processes_over_one_memory_do_not_multiply_the_pin_tries(
    p256: PilotNetwork, factory: CardFactory, tmp_path: Path
) -> None:
    """A thief with two card processes over one memory alternates his guesses between them:
    before the fix each process counted down from its own copy of the counter (six guesses
    instead of three; the sixth, right, unlocked the card)."""
    folder = tmp_path / "card"
    factory.create(folder, p256.params, p256.central_bank.certificate_der)
    factory.close()
    first, second = (Applet(FileEeprom(folder / EEPROM)) for _ in range(2))
    guesses = [b"0000", b"1111", b"2222", b"3333", b"4444", PIN.encode()]
    answers = [_verify((first, second)[i % 2], guess) for i, guess in enumerate(guesses)]
    compared = [sw for sw in answers if sw >> 4 == SW.WRONG_PIN >> 4 or sw == SW.OK]
    assert len(compared) <= 3
    assert SW.OK not in answers
    assert CardImage.decode((folder / EEPROM).read_bytes()).pin_tries == 3 - len(compared)


def test_a_second_connection_does_not_ride_the_verified_session(
    p256: PilotNetwork, factory: CardFactory, tmp_path: Path
) -> None:
    """The card server listens on 127.0.0.1 for any local user. Before the fix a second
    connection shared the first one's session: without power on, SELECT or PIN, it read the
    status (and could pay) in the session the owner had verified."""
    folder = tmp_path / "card"
    owner = factory.create(folder, p256.params, p256.central_bank.certificate_der)
    p256.wallet(1_000, se=owner)
    server = factory._cards[folder][0]
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        status = Command(wire.CLA_PROPRIETARY, Ins.GET_STATUS, 0, 0, cbor.encode([T0]), 256)
        try:
            link.send(sock, status.encode())
            answer = link.receive(sock)
        except OSError:
            answer = None  # the server refused the second connection: also safe
    assert answer is None or split_response(answer)[1] != SW.OK
    assert owner.status(T0).balance == 1_000  # the owner's session goes on


class _EndlessCard:
    """A hostile card (or a fake one in the reader): every answer says 256 more bytes follow."""

    def __init__(self) -> None:
        self.sent = 0

    def transmit(self, apdu: bytes) -> bytes:
        self.sent += 1
        if self.sent > 10_000:  # the attack has won: the host would loop for ever
            raise AssertionError("the host kept asking for more")
        return response(SW.MORE_DATA, b"\x00" * 256)


def test_a_card_answering_more_data_for_ever_is_refused_by_the_host() -> None:
    card = _EndlessCard()
    with pytest.raises(SecureElementError):
        CardSecureElement(card)  # SELECT: the answer never ends
    assert card.sent * 256 <= wire.MAX_RESPONSE + 256


class _LossyChannel:
    """The link to a card that drops the answer of one command (reader pulled, socket reset)
    after the card has executed it."""

    def __init__(self, applet: Applet, drop_ins: int) -> None:
        self.applet, self.drop_ins, self.dropped = applet, drop_ins, False

    def transmit(self, apdu: bytes) -> bytes:
        answer = self.applet.process(apdu)
        if apdu[1] == self.drop_ins and not self.dropped:
            self.dropped = True
            raise SecureElementError("the card connection failed")
        return answer


def test_a_payment_whose_answer_is_lost_is_recovered_with_sent_payment(
    p256: PilotNetwork, factory: CardFactory, tmp_path: Path
) -> None:
    """The card debits, the answer never reaches the host (an error there): the payment is not
    lost, SENT PAYMENT reads it back, and the payee is paid once."""
    folder = tmp_path / "card"
    p256.wallet(1_000, se=factory.create(folder, p256.params, p256.central_bank.certificate_der))
    factory.close()
    channel = _LossyChannel(Applet(FileEeprom(folder / EEPROM)), Ins.PAY_TO)
    card = CardSecureElement(channel)
    card.verify(PIN)
    shop = p256.wallet(0, bank="Bank B")
    with pytest.raises(SecureElementError):
        card.pay_to(_wid(shop), 300, T0)
    status = card.status(T0)
    assert status.balance == 700  # the card did debit
    payment = card.sent_payment(status.counter)
    got = shop.receive(payment, T0)
    assert (got.amount, got.duplicate) == (300, False)
    assert shop.receive(card.sent_payment(status.counter), T0).duplicate
    assert shop.status(T0).balance == 300
