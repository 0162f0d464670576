"""Cards for the card-authentication tests: a genuine enrolled card in memory, a channel that
records every APDU the host sends, and a fake card that replays a genuine card's answer."""

from __future__ import annotations

from dataclasses import dataclass, field

from offcash.se.card import wire
from offcash.se.card.apdu import SW, Command, response
from offcash.se.card.applet import Applet
from offcash.se.card.eeprom import CardImage, MemoryEeprom
from offcash.se.card.host import ApduChannel, AppletChannel, CardSecureElement
from offcash.se.card.wire import Ins
from offcash.se.state import SEState

from harness import PilotNetwork

#: The instructions that carry a PIN or a PUK to the card.
SECRETS = {Ins.VERIFY, Ins.CHANGE_REFERENCE_DATA, Ins.RESET_RETRY_COUNTER}


@dataclass
class Genuine:
    """An enrolled card in memory: its applet, memory and wallet certificate."""

    applet: Applet
    eeprom: MemoryEeprom
    certificate: bytes


def genuine(net: PilotNetwork, pin: str, puk: str = "12345678") -> Genuine:
    """A new card, personalised with ``pin`` and enrolled in ``net`` (Bank A)."""
    eeprom = MemoryEeprom()
    applet = Applet(eeprom)
    se = CardSecureElement(AppletChannel(applet))
    se.personalise(net.params, net.central_bank.certificate_der, pin, puk)
    se.verify(pin)
    net.wallet(0, se=se)
    return Genuine(applet, eeprom, certificate_in(eeprom.read()))


def certificate_in(image: bytes | None) -> bytes:
    """The wallet certificate in a card's memory image."""
    assert image is not None
    certificate = SEState.decode(CardImage.decode(image).state).certificate
    assert certificate is not None
    return certificate


@dataclass
class RecordingChannel:
    """An ``ApduChannel`` (and a PC/SC-like channel: ``close``) that records every command."""

    inner: ApduChannel
    apdus: list[bytes] = field(default_factory=list)

    def transmit(self, apdu: bytes) -> bytes:
        self.apdus.append(bytes(apdu))
        return self.inner.transmit(apdu)

    def connected(self) -> bool:
        """Always: the card in memory is never pulled out."""
        return True

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()

    def sent(self) -> list[int]:
        """The INS byte of every command sent, in order."""
        return [apdu[1] for apdu in self.apdus]


@dataclass
class ReplayingCard:
    """A fake card (an applet for ``offcash.card.link``): SELECT answered like the genuine
    card, INTERNAL AUTHENTICATE with ``answer`` (a genuine card's answer to an earlier
    challenge), anything else (a PIN it would keep) with ``90 00``. Records every command."""

    fci: bytes
    answer: bytes
    apdus: list[bytes] = field(default_factory=list)
    atr: bytes = wire.ATR

    def reset(self) -> None:
        """Power and reset: nothing to forget."""

    def process(self, apdu: bytes) -> bytes:
        self.apdus.append(bytes(apdu))
        ins = Command.parse(apdu).ins
        if ins == Ins.SELECT:
            return response(SW.OK, self.fci)
        if ins == Ins.INTERNAL_AUTHENTICATE:
            return response(SW.OK, self.answer)
        return response(SW.OK)
