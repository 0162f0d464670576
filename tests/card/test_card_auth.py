"""The host authenticates a wallet's card before it sends the PIN (attack review: a fake card
in the reader, e.g. one a remote process put in a vpcd slot, learnt the PIN before the wallet
id check refused it).

In process: ``offcash.card.wallets`` (what the CLI opens cards with) runs over channels that
record every APDU, in place of PC/SC; "no PIN was sent" is read off those records."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from offcash.card import wallets as card_wallets
from offcash.errors import CardNotAuthenticated
from offcash.se.card import wire
from offcash.se.card.apdu import exchange
from offcash.se.card.host import AppletChannel
from offcash.se.card.wire import Ins

from card_doubles import SECRETS, Genuine, RecordingChannel, ReplayingCard, genuine
from harness import PilotNetwork

PIN, OTHER_PIN = "1234", "4321"
READER = "Reader 0"


@pytest.fixture
def reader(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, RecordingChannel]]:
    """The card in ``READER``: the test puts a recording channel to it in the dict."""
    channels: dict[str, RecordingChannel] = {}
    monkeypatch.setattr(card_wallets, "PcscChannel", lambda name: channels[name])
    yield channels
    card_wallets.close_all()


def _insert(channels: dict[str, RecordingChannel], card: Genuine) -> RecordingChannel:
    card.applet.reset()  # a card just put in the reader
    channels[READER] = RecordingChannel(AppletChannel(card.applet))
    return channels[READER]


def test_the_wallets_card_is_authenticated_then_gets_the_pin(
    p256: PilotNetwork, reader: dict[str, RecordingChannel]
) -> None:
    card = genuine(p256, PIN)
    channel = _insert(reader, card)
    se = card_wallets.session(READER, PIN, [card.certificate])
    assert channel.sent() == [Ins.SELECT, Ins.INTERNAL_AUTHENTICATE, Ins.VERIFY]
    assert se.status(0).wallet_id is not None  # the PIN session works


def test_another_card_gets_no_pin_and_no_puk(
    p256: PilotNetwork, reader: dict[str, RecordingChannel]
) -> None:
    """The reader holds another wallet's genuine card (a different key): refused before VERIFY,
    and before RESET RETRY COUNTER on the PUK path."""
    mine, other = genuine(p256, PIN), genuine(p256, OTHER_PIN)
    channel = _insert(reader, other)
    with pytest.raises(CardNotAuthenticated, match="not the wallet key's signature"):
        card_wallets.session(READER, PIN, [mine.certificate])
    assert channel.sent() == [Ins.SELECT, Ins.INTERNAL_AUTHENTICATE]
    channel = _insert(reader, other)
    with pytest.raises(CardNotAuthenticated):
        card_wallets.card(READER, [mine.certificate]).unblock("12345678", PIN)
    assert not SECRETS & set(channel.sent())
    # the other card's PIN tries are untouched (a VERIFY with PIN would have cost one)
    card_wallets.close_all()
    assert card_wallets.card(READER, [other.certificate]).pin_tries() == 3


def test_a_fake_card_replaying_an_answer_to_an_earlier_challenge_gets_no_pin(
    p256: PilotNetwork, reader: dict[str, RecordingChannel]
) -> None:
    card = genuine(p256, PIN)
    card.applet.reset()
    host = AppletChannel(card.applet)
    fci, _ = exchange(host.transmit, 0x00, Ins.SELECT, 0x04, 0x00, wire.AID)
    earlier = os.urandom(32)
    answer, _ = exchange(host.transmit, 0x00, Ins.INTERNAL_AUTHENTICATE, 0, 0, earlier)
    fake = ReplayingCard(fci, answer)
    reader[READER] = RecordingChannel(AppletChannel(fake))
    with pytest.raises(CardNotAuthenticated):
        card_wallets.session(READER, PIN, [card.certificate])
    assert [apdu[1] for apdu in fake.apdus] == [Ins.SELECT, Ins.INTERNAL_AUTHENTICATE]
    assert fake.apdus[1][5:37] != earlier  # a fresh challenge, which the old answer is not for


def test_the_card_is_accepted_under_either_certificate_a_sync_was_between(
    p256: PilotNetwork, reader: dict[str, RecordingChannel]
) -> None:
    """A sync that re-keys (algorithm migration) may stop between the card and the registry:
    the host accepts the key of either certificate."""
    card, other = genuine(p256, PIN), genuine(p256, OTHER_PIN)
    channel = _insert(reader, card)
    card_wallets.session(READER, PIN, [other.certificate, card.certificate])
    assert channel.sent()[-1] == Ins.VERIFY
