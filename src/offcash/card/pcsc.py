"""The PC/SC channel: a card in any reader pcscd knows (physical, NFC, or vsmartcard's vpcd).

Theory of operation: ``PcscChannel`` opens a PC/SC context (pyscard's ``smartcard.scard``, the
thin binding of the PC/SC API), connects to the card in the named reader in shared mode, and
holds a PC/SC transaction for as long as the channel is open, so no other application
interleaves its APDUs with ours (a chain half sent, a PIN verified for someone else). Closing
ends the transaction and resets the card, which ends the card's session: the next user has to
present the PIN again. Nothing here knows offcash: it carries bytes, and works the same with a
physical reader.
"""

from __future__ import annotations

from typing import Any

from offcash.errors import SecureElementError


def _scard() -> Any:
    try:
        from smartcard import scard
    except ImportError:
        raise SecureElementError(
            "PC/SC is not available: install pyscard (pip) and pcscd (Debian: pcscd)"
        ) from None
    return scard


def _check(result: int, what: str) -> None:
    scard = _scard()
    if result != scard.SCARD_S_SUCCESS:
        raise SecureElementError(f"PC/SC {what} failed: {scard.SCardGetErrorMessage(result)}")


def readers() -> list[str]:
    """The reader names pcscd lists (empty when pcscd runs with no reader)."""
    scard = _scard()
    result, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    _check(result, "connection to pcscd (is pcscd running?)")
    try:
        result, names = scard.SCardListReaders(context, [])
        if result == scard.SCARD_E_NO_READERS_AVAILABLE:
            return []
        _check(result, "listing readers")
        return list(names)
    finally:
        scard.SCardReleaseContext(context)


class PcscChannel:
    """A channel to the card in ``reader`` (an ``ApduChannel``), inside a PC/SC transaction."""

    def __init__(self, reader: str) -> None:
        scard = _scard()
        self.reader = reader
        result, self._context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        _check(result, "connection to pcscd (is pcscd running?)")
        try:
            result, self._card, self._protocol = scard.SCardConnect(
                self._context,
                reader,
                scard.SCARD_SHARE_SHARED,
                scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
            )
            _check(result, f"connection to the card in {reader!r}")
            _check(scard.SCardBeginTransaction(self._card), "transaction")
        except BaseException:
            scard.SCardReleaseContext(self._context)
            raise

    def transmit(self, apdu: bytes) -> bytes:
        """The card's response APDU to ``apdu``."""
        scard = _scard()
        result, answer = scard.SCardTransmit(self._card, self._protocol, list(apdu))
        _check(result, "transmit")
        return bytes(answer)

    def connected(self) -> bool:
        """Whether the card this channel connected to is still in the reader, not reset
        since (PC/SC invalidates the connection when the card is pulled out: a card put back,
        or another one, needs a new channel)."""
        scard = _scard()
        return bool(scard.SCardStatus(self._card)[0] == scard.SCARD_S_SUCCESS)

    def close(self) -> None:
        """End the transaction and reset the card (its PIN session ends)."""
        scard = _scard()
        scard.SCardEndTransaction(self._card, scard.SCARD_LEAVE_CARD)
        scard.SCardDisconnect(self._card, scard.SCARD_RESET_CARD)
        scard.SCardReleaseContext(self._context)


def card_present(reader: str) -> bool:
    """Whether a card sits in ``reader`` (PC/SC's reader state)."""
    scard = _scard()
    result, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    _check(result, "connection to pcscd (is pcscd running?)")
    try:
        result, states = scard.SCardGetStatusChange(
            context, 0, [(reader, scard.SCARD_STATE_UNAWARE)]
        )
        _check(result, f"status of {reader!r}")
        return bool(states[0][1] & scard.SCARD_STATE_PRESENT)
    finally:
        scard.SCardReleaseContext(context)
