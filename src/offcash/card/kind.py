"""``CardFactory``: card secure elements for the parametrised test suites and the conformance kit.

Theory of operation: each SE the factory makes is a card whose memory is one file under the
given folder (``card.eeprom``), run by an ``Applet`` in a thread of this process behind a real
local TCP socket (``offcash.card.link.CardServer``, the vpcd protocol), reached by a
``CardSecureElement`` over a ``SocketChannel``: every operation crosses the APDU codec, the
chaining and GET RESPONSE, the status-word mapping and a socket, as it would to a card in a
reader, yet thousands of tests stay fast (PC/SC itself is tested end to end apart). ``reopen``
restarts the card (a new applet over the same memory: state as last persisted, PIN session
lost; the card authenticated with INTERNAL AUTHENTICATE, then the PIN presented again);
``read_state`` / ``write_state`` are the physical attacker who
broke the chip and reads or rewrites the ``SEState`` bytes in its memory.
"""

from __future__ import annotations

from pathlib import Path

from offcash.card.link import CardServer, SocketChannel
from offcash.domain.network import NetworkParams
from offcash.errors import SecureElementError
from offcash.se.card.applet import Applet
from offcash.se.card.eeprom import CardImage, FileEeprom
from offcash.se.card.host import CardSecureElement
from offcash.se.state import SEState

EEPROM = "card.eeprom"
#: The PIN and PUK of every card the factory makes (a test knows them).
PIN = "2468"
PUK = "13572468"


class CardFactory:
    """Makes card SEs in folders (``offcash.se.conformance.SEFactory``)."""

    kind = "card"

    def __init__(self, *, extended: bool = False) -> None:
        self.extended = extended
        self._cards: dict[Path, tuple[CardServer, SocketChannel]] = {}

    def _insert(self, directory: Path) -> CardSecureElement:
        self._remove(directory)
        server = CardServer(Applet(FileEeprom(directory / EEPROM)))
        channel = SocketChannel(server.port)
        self._cards[directory] = (server, channel)
        return CardSecureElement(channel, extended=self.extended)

    def _remove(self, directory: Path) -> None:
        card = self._cards.pop(directory, None)
        if card is not None:
            card[1].close()
            card[0].close()

    def create(
        self, directory: Path, params: NetworkParams, root_certificate: bytes
    ) -> CardSecureElement:
        """A new, personalised, unenrolled card SE with its memory under ``directory``, its
        PIN verified."""
        directory.mkdir(parents=True, exist_ok=True)
        if (directory / EEPROM).exists():
            raise SecureElementError(f"{directory} already holds a card")
        se = self._insert(directory)
        se.personalise(params, root_certificate, PIN, PUK)
        se.verify(PIN)
        return se

    def reopen(self, directory: Path) -> CardSecureElement:
        """The card of ``directory`` after a restart (state as last persisted), authenticated
        against the certificate in its memory (once enrolled) as a host does before the PIN,
        then PIN verified; the SE returned before for ``directory`` stops working (its card
        was pulled out)."""
        se = self._insert(directory)
        certificate = SEState.decode(self.read_state(directory)).certificate
        if certificate is not None:
            se.authenticate([certificate])
        se.verify(PIN)
        return se

    def read_state(self, directory: Path) -> bytes:
        """The ``SEState`` bytes in the card's memory (an attacker who broke the chip)."""
        return CardImage.decode((directory / EEPROM).read_bytes()).state

    def write_state(self, directory: Path, state: bytes) -> None:
        """Write ``SEState`` bytes into the card's memory (a broken chip: clone, roll back,
        edit); ``reopen`` then runs on them."""
        eeprom = FileEeprom(directory / EEPROM)
        image = CardImage.decode(directory.joinpath(EEPROM).read_bytes())
        image.state = state
        eeprom.write(image.encode())

    def close(self) -> None:
        """Stop every card server and close every channel the factory opened."""
        for directory in list(self._cards):
            self._remove(directory)
