"""The offcash card application: command APDU bytes in, response APDU bytes out.

Theory of operation: ``Applet`` is what runs on the card. It owns the card's memory (an
``Eeprom`` holding a ``CardImage``: PIN and PUK records, their retry counters and the secure
element's state) and, inside it, a ``SoftwareSecureElement``: the money rules are that class's,
the applet only puts an APDU wall around them. ``process`` takes one command APDU and returns
one response APDU; it never raises (a malformed APDU gets its ISO status word, a bug ``6F00``).

Session state (lost at power off, reset and every SELECT): whether the application is
selected, whether the PIN was verified, a command chain being joined and a long response being
dealt out (``offcash.se.card.apdu.Responder``), and the last refusal's details for GET ERROR.

PIN rules, as real cards do them: VERIFY decrements the retry counter and persists it *before*
comparing, so cutting the power during a wrong try costs the try; a right PIN restores the
counter (3). At 0 the PIN is blocked (``6983``) until RESET RETRY COUNTER presents the PUK
(8 digits, 10 tries, counted the same way) and a new PIN; a blocked PUK kills the card (the
bank refunds its balance through the lost-device procedure). Every offcash operation needs the
PIN verified in the session (``6982`` otherwise). INTERNAL AUTHENTICATE needs none: it comes
before the PIN, so the host knows the card is its wallet's before it shows it the PIN; it signs
only a 32-byte challenge in its own context (``offcash.crypto.challenge``). The command set is
in docs/APDU.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from offcash.crypto import challenge
from offcash.domain.ids import WalletId
from offcash.domain.network import NetworkParams
from offcash.encoding import cbor
from offcash.errors import DecodeError, OffcashError, SecureElementError
from offcash.se.card import refusal, wire
from offcash.se.card.apdu import SW, ApduError, Command, Responder, response
from offcash.se.card.eeprom import PIN_TRIES, PUK_TRIES, CardImage, Eeprom, check_pin, check_puk
from offcash.se.card.wire import Ins, LifeCycle
from offcash.se.software import SoftwareSecureElement

_Op = Callable[[SoftwareSecureElement, list[Any]], bytes]


def _wallet_id(value: Any) -> Any:
    """A payee's 12 bytes as a ``WalletId`` (anything else is passed on for the SE's type
    check to refuse)."""
    return WalletId(value) if type(value) is bytes else value


def _enrol(se: SoftwareSecureElement, a: list[Any]) -> bytes:
    se.enroll(a[0], a[1], a[2], a[3])
    return b""  # no response data


def _migrate(se: SoftwareSecureElement, a: list[Any]) -> bytes:
    se.migrate(NetworkParams.from_cbor(a[0], "params"), a[1], a[2], a[3])
    return b""


def _apply_sync(se: SoftwareSecureElement, a: list[Any]) -> bytes:
    se.apply_sync(a[0], a[1], a[2], a[3], a[4])
    return b""


def _bytes(value: bytes) -> bytes:
    return cbor.encode(value)


#: Each offcash operation: the number of CBOR arguments and what it does with them.
OPERATIONS: dict[Ins, tuple[int, _Op]] = {
    Ins.CSR: (0, lambda se, a: _bytes(se.csr())),
    Ins.ENROL: (4, _enrol),
    Ins.INSTALL_CRLS: (2, lambda se, a: cbor.encode(se.install_crls(a[0], a[1]))),
    Ins.MIGRATE: (4, _migrate),
    Ins.GET_STATUS: (1, lambda se, a: wire.encode_status(se.status(a[0]))),
    Ins.GET_TRUST: (
        0,
        lambda se, a: wire.encode_trust(
            se.params, se.trust.root_der, se.trust.bank_certificates(), se.trust.crl_ders()
        ),
    ),
    Ins.LOAD: (2, lambda se, a: cbor.encode(se.load(a[0], a[1]))),
    Ins.UNLOAD: (2, lambda se, a: _bytes(se.unload(a[0], a[1]))),
    Ins.REQUEST: (5, lambda se, a: _bytes(se.request(a[0], a[1], a[2], a[3], a[4]))),
    Ins.PAY: (2, lambda se, a: _bytes(se.pay(a[0], a[1]))),
    Ins.PAY_TO: (4, lambda se, a: _bytes(se.pay_to(_wallet_id(a[0]), a[1], a[2], a[3]))),
    Ins.SENT_PAYMENT: (1, lambda se, a: _bytes(se.sent_payment(a[0]))),
    Ins.OPEN_SEALED: (1, lambda se, a: _bytes(se.open_sealed(a[0]))),
    Ins.RECEIVE: (2, lambda se, a: wire.encode_received(se.receive(a[0], a[1]))),
    Ins.SYNC_UPLOAD: (1, lambda se, a: wire.encode_upload(se.sync_upload(a[0]))),
    Ins.SYNC_APPLY: (5, _apply_sync),
}


class _ImageStore:
    """The SE's ``StateStore``: a new state is written into the card image, atomically."""

    def __init__(self, applet: Applet) -> None:
        self._applet = applet

    def save(self, state: bytes) -> None:
        self._applet._save_state(state)


class Applet:
    """The card application over its memory ``eeprom`` (a blank card if it holds nothing)."""

    def __init__(self, eeprom: Eeprom) -> None:
        self._eeprom = eeprom
        data = eeprom.read()
        self._image: CardImage | None = None if data is None else CardImage.decode(data)
        self._se: SoftwareSecureElement | None = None
        self._responder = Responder(wire.MAX_COMMAND)
        self._selected = False
        self._verified = False
        self._last_error: tuple[int, list[Any]] | None = None

    # --- the reader's side: power and reset -----------------------------------------------

    @property
    def atr(self) -> bytes:
        """The card's answer to reset."""
        return wire.ATR

    def reset(self) -> None:
        """Power on, power off or reset: the session ends (nothing selected, PIN not
        verified, no chain or response pending)."""
        self._selected = self._verified = False
        self._responder.reset()
        self._last_error = None

    # --- persistence ------------------------------------------------------------------------

    def _write(self) -> None:
        assert self._image is not None
        self._eeprom.write(self._image.encode())

    def _save_state(self, state: bytes) -> None:
        assert self._image is not None
        old = self._image.state
        self._image.state = state
        try:
            self._write()
        except BaseException:
            self._image.state = old
            raise

    def _secure_element(self) -> SoftwareSecureElement:
        if self._image is None:
            raise SecureElementError("the card is blank: personalise it first")
        if self._se is None:
            self._se = SoftwareSecureElement(self._image.state, _ImageStore(self))
        return self._se

    @property
    def life_cycle(self) -> LifeCycle:
        """Blank, personalised, PIN blocked or dead."""
        image = self._image
        if image is None:
            return LifeCycle.BLANK
        if image.puk_tries == 0:
            return LifeCycle.DEAD
        return LifeCycle.PIN_BLOCKED if image.pin_tries == 0 else LifeCycle.PERSONALISED

    # --- APDUs ------------------------------------------------------------------------------

    def process(self, apdu: bytes) -> bytes:
        """The response APDU to command APDU ``apdu`` (never raises)."""
        try:
            command = Command.parse(apdu)
            return self._dispatch(command)
        except ApduError as exc:
            return response(exc.sw)
        except Exception as exc:  # a bug: the card answers, it does not crash
            self._last_error = (SW.UNKNOWN, [f"internal error: {type(exc).__name__}: {exc}"])
            return response(SW.UNKNOWN)

    def _dispatch(self, c: Command) -> bytes:
        cla = c.cla & ~0x10 & 0xFF
        if cla & 0x03:
            raise ApduError(SW.LOGICAL_CHANNEL_NOT_SUPPORTED, "only the basic channel")
        if cla & 0x0C:
            raise ApduError(SW.SECURE_MESSAGING_NOT_SUPPORTED, "no secure messaging")
        if cla not in (wire.CLA_ISO, wire.CLA_PROPRIETARY):
            raise ApduError(SW.CLA_NOT_SUPPORTED, f"class {c.cla:02X}")
        if c.ins == Ins.GET_RESPONSE:
            if c.chained:
                raise ApduError(SW.WRONG_P1P2, "GET RESPONSE is not chained")
            return self._responder.get_response(c.le)
        whole = self._responder.join(c)
        if whole is None:
            return response(SW.OK)  # more of the chain to come
        if cla == wire.CLA_ISO:
            data, sw = self._iso(whole)
        else:
            data, sw = self._proprietary(whole)
        return self._responder.answer(data, whole.le, sw)

    def _iso(self, c: Command) -> tuple[bytes, int]:
        if c.ins == Ins.SELECT:
            return self._select(c)
        if c.ins == Ins.INTERNAL_AUTHENTICATE:
            return self._authenticate(c)
        if c.ins not in (Ins.VERIFY, Ins.CHANGE_REFERENCE_DATA, Ins.RESET_RETRY_COUNTER):
            raise ApduError(SW.INS_NOT_SUPPORTED, f"instruction {c.ins:02X}")
        if not self._selected:
            raise ApduError(SW.CONDITIONS, "select the application first")
        if c.p1 != 0 or c.p2 != wire.PIN_REFERENCE:
            raise ApduError(SW.WRONG_P1P2, "the PIN is reference 81")
        if self._image is None:
            raise ApduError(SW.CONDITIONS, "the card is blank")
        if c.ins == Ins.VERIFY:
            return b"", self._verify(c.data)
        if c.ins == Ins.CHANGE_REFERENCE_DATA:
            return b"", self._change_pin(c.data)
        return b"", self._unblock(c.data)

    def _select(self, c: Command) -> tuple[bytes, int]:
        if c.p1 != 0x04 or c.p2 not in (0x00, 0x0C):
            raise ApduError(SW.WRONG_P1P2, "only SELECT by DF name, first occurrence")
        self.reset()
        if not c.data or not wire.AID.startswith(c.data):
            raise ApduError(SW.NOT_FOUND, "no such application")
        self._selected = True
        image = self._image
        info = wire.SelectInfo(
            wire.AID,
            wire.AID[-1],
            self.life_cycle,
            0 if image is None else image.pin_tries,
            0 if image is None else image.puk_tries,
        )
        return (b"" if c.p2 == 0x0C else info.encode()), SW.OK

    def _authenticate(self, c: Command) -> tuple[bytes, int]:
        """INTERNAL AUTHENTICATE: the wallet key's answer to the host's challenge. No PIN
        needed (it comes before the PIN) and allowed in every life cycle but blank, so a host
        knows its card before it presents a PIN or PUK, or tells its owner the card is dead."""
        if not self._selected:
            raise ApduError(SW.CONDITIONS, "select the application first")
        if c.p1 != 0 or c.p2 != 0:
            raise ApduError(SW.WRONG_P1P2, "P1 and P2 are 00")
        if len(c.data) != challenge.CHALLENGE_SIZE:
            raise ApduError(SW.WRONG_LENGTH, f"a challenge is {challenge.CHALLENGE_SIZE} bytes")
        if self._image is None:
            raise ApduError(SW.CONDITIONS, "the card is blank")
        return self._refusing(lambda: self._secure_element().authenticate(c.data))

    def _verify(self, data: bytes) -> int:
        image = self._image
        assert image is not None
        if image.pin_tries == 0 or image.puk_tries == 0:
            return SW.BLOCKED
        if not data:  # how many tries are left
            return SW.OK if self._verified else SW.WRONG_PIN | image.pin_tries
        self._verified = False
        image.pin_tries -= 1
        self._write()  # the try is counted before the comparison
        if not image.pin_matches(wire.unpad_pin(data)):
            return SW.WRONG_PIN | image.pin_tries
        image.pin_tries = PIN_TRIES
        self._write()
        self._verified = True
        return SW.OK

    def _change_pin(self, data: bytes) -> int:
        if len(data) != 2 * wire.PIN_FIELD:
            raise ApduError(SW.WRONG_LENGTH, "old and new PIN, 16 bytes each")
        new = _valid_pin(wire.unpad_pin(data[wire.PIN_FIELD :]))
        sw = self._verify(data[: wire.PIN_FIELD])
        if sw == SW.OK:
            assert self._image is not None
            self._image.set_pin(new)
            self._write()
        return sw

    def _unblock(self, data: bytes) -> int:
        image = self._image
        assert image is not None
        if len(data) != 8 + wire.PIN_FIELD:
            raise ApduError(SW.WRONG_LENGTH, "PUK (8 bytes) and new PIN (16 bytes)")
        new = _valid_pin(wire.unpad_pin(data[8:]))
        if image.puk_tries == 0:
            return SW.BLOCKED
        self._verified = False
        image.puk_tries -= 1
        self._write()  # the try is counted before the comparison
        if not image.puk_matches(data[:8]):
            return SW.WRONG_PIN | image.puk_tries
        image.puk_tries = PUK_TRIES
        image.set_pin(new)
        self._write()
        return SW.OK

    def _proprietary(self, c: Command) -> tuple[bytes, int]:
        ins = c.ins
        if ins == Ins.GET_ERROR:
            if self._last_error is None:
                raise ApduError(SW.REFERENCE_NOT_FOUND, "no refusal to explain")
            return cbor.encode(list(self._last_error)), SW.OK
        self._last_error = None
        if not self._selected:
            raise ApduError(SW.CONDITIONS, "select the application first")
        if c.p1 != 0 or c.p2 != 0:
            raise ApduError(SW.WRONG_P1P2, "P1 and P2 are 00")
        if ins == Ins.PERSONALISE:
            return self._refusing(lambda: self._personalise(c.data))
        if ins not in OPERATIONS:
            raise ApduError(SW.INS_NOT_SUPPORTED, f"instruction {ins:02X}")
        if self.life_cycle is LifeCycle.BLANK:
            raise ApduError(SW.CONDITIONS, "the card is blank: personalise it first")
        if not self._verified:
            raise ApduError(SW.SECURITY_STATUS, "verify the PIN first")
        count, operation = OPERATIONS[Ins(ins)]
        return self._refusing(lambda: operation(self._secure_element(), _arguments(c.data, count)))

    def _refusing(self, run: Callable[[], bytes]) -> tuple[bytes, int]:
        """``run``'s answer, or its refusal as a status word (details kept for GET ERROR)."""
        try:
            return run(), SW.OK
        except (OffcashError, TypeError, ValueError) as exc:
            sw = refusal.status_word(exc)
            self._last_error = (sw, refusal.details(exc))
            return b"", sw

    def _personalise(self, data: bytes) -> bytes:
        if self._image is not None:
            raise SecureElementError("the card is already personalised")
        params, root, pin, puk = _arguments(data, 4)
        network = NetworkParams.from_cbor(params, "params")
        if type(root) is not bytes:
            raise TypeError("the root certificate must be bytes")
        image = CardImage.personalise(
            check_pin(pin), check_puk(puk), SoftwareSecureElement.new_state(network, root)
        )
        self._eeprom.write(image.encode())
        self._image, self._se, self._verified = image, None, False
        return b""


def _valid_pin(pin: bytes) -> bytes:
    try:
        return check_pin(pin)
    except (TypeError, ValueError) as exc:
        raise ApduError(SW.WRONG_DATA, str(exc)) from None


def _arguments(data: bytes, count: int) -> list[Any]:
    """The CBOR array of ``count`` arguments in a command's data (none: empty data)."""
    if count == 0:
        if data:
            raise DecodeError("command", "this command takes no data")
        return []
    value = cbor.decode(data, path="command", max_bytes=wire.MAX_COMMAND)
    if type(value) is not list or len(value) != count:
        raise DecodeError("command", f"expected an array of {count} arguments")
    return value
