"""The secure element as a smart card: ISO 7816-4 APDUs between a host and a card application.

``apdu`` is the codec (cases, extended length, chaining, GET RESPONSE); ``wire`` the AID,
instructions and result encodings; ``refusal`` the status words of offcash's typed errors;
``eeprom`` the card's persistent memory (PIN, PUK, state); ``applet`` the card application
(the software SE behind an APDU wall); ``host`` the ``CardSecureElement`` a wallet uses.
The links to a card (PC/SC, sockets, card processes) are outside the core, in
``offcash.card``. docs/APDU.md specifies the commands byte by byte.
"""

from offcash.se.card.applet import Applet
from offcash.se.card.host import ApduChannel, AppletChannel, CardSecureElement
from offcash.se.card.wire import AID

__all__ = ["AID", "ApduChannel", "Applet", "AppletChannel", "CardSecureElement"]
