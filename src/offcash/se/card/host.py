"""The host side of the card: ``CardSecureElement`` speaks APDUs to the offcash card application.

Theory of operation: ``CardSecureElement`` implements ``SecureElement`` by sending each
operation to a card through an ``ApduChannel`` (anything with ``transmit(bytes) -> bytes``: a
PC/SC reader through pyscard, a socket to a card process, the applet itself in memory), so the
same host code drives a physical card in a physical reader. An operation is one logical
command (``offcash.se.card.apdu.exchange``: command chaining in, GET RESPONSE out; extended
length when ``extended`` and the reader supports it). A refusal's status word becomes the same
typed offcash error the software SE raises (``offcash.se.card.refusal``; its fields come from
GET ERROR). Arguments are checked here first with the software SE's own checks
(``offcash.se.arguments``), so a wrong type is a ``TypeError`` before anything is sent; the card
checks them again. ``params`` and ``trust`` are read from the card (GET TRUST) when first asked
for and again after an operation that changes them.

A card is authenticated before it gets a PIN: ``authenticate`` sends INTERNAL AUTHENTICATE
with a fresh random challenge and checks the answer under the key of the wallet certificate
the host expects (``offcash.crypto.challenge``), so a fake or foreign card in the reader is
refused (``CardNotAuthenticated``) before VERIFY, CHANGE REFERENCE DATA or RESET RETRY COUNTER
would show it the PIN or PUK. A blank or unenrolled card has no certified key to prove: what
the host can check then is in docs/SECURITY.md.
"""

from __future__ import annotations

import secrets
from typing import Any, Protocol

from offcash.crypto import challenge
from offcash.crypto.trust import TrustStore
from offcash.domain.ids import WalletId
from offcash.domain.network import NetworkParams
from offcash.encoding import cbor
from offcash.errors import CardNotAuthenticated, SecureElementError
from offcash.se import arguments as arg
from offcash.se.card import refusal, wire
from offcash.se.card.apdu import SW, exchange
from offcash.se.card.eeprom import check_pin, check_puk
from offcash.se.card.wire import Ins, SelectInfo
from offcash.se.interface import Received, SecureElement, Status, SyncUpload


class ApduChannel(Protocol):
    """A link to a card: sends one command APDU, returns the card's response APDU."""

    def transmit(self, apdu: bytes) -> bytes:
        """The response APDU to ``apdu``."""


class AppletChannel:
    """A channel straight into an applet object in this process (tests, benchmarks)."""

    def __init__(self, applet: Any) -> None:
        self.applet = applet

    def transmit(self, apdu: bytes) -> bytes:
        """The applet's answer to ``apdu``."""
        return bytes(self.applet.process(apdu))


class CardSecureElement(SecureElement):
    """A ``SecureElement`` on an offcash card reached through ``channel``. The constructor
    selects the application; ``authenticate`` checks it is the expected wallet's card, then
    ``verify`` presents the PIN (every operation needs it)."""

    def __init__(self, channel: ApduChannel, *, extended: bool = False) -> None:
        self._channel = channel
        self._extended = extended
        self._trust: tuple[NetworkParams, TrustStore] | None = None
        self.info = self.select()

    # --- card management ------------------------------------------------------------------

    def _send(
        self, cla: int, ins: int, data: bytes = b"", p1: int = 0, p2: int = 0
    ) -> tuple[bytes, int]:
        try:
            return exchange(
                self._channel.transmit,
                cla,
                ins,
                p1,
                p2,
                data,
                extended=self._extended,
                max_response=wire.MAX_RESPONSE,
            )
        except ValueError as exc:  # shorter than a status word, or longer than MAX_RESPONSE
            raise SecureElementError(f"the card's answer is malformed: {exc}") from None

    def select(self) -> SelectInfo:
        """Select the offcash application; its FCI (life cycle, PIN and PUK tries left)."""
        data, sw = self._send(wire.CLA_ISO, Ins.SELECT, wire.AID, p1=0x04)
        if sw != SW.OK:
            raise SecureElementError(f"no offcash application on this card ({sw:04X})")
        return SelectInfo.decode(data)

    def authenticate(self, certificates: list[bytes]) -> None:
        """INTERNAL AUTHENTICATE with a fresh random challenge: the card must answer with
        the signature of the key of one of ``certificates`` (the wallet certificates the
        host expects for this card), else ``CardNotAuthenticated``. Call it before
        ``verify``, ``change_pin`` or ``unblock``, so no PIN or PUK goes to another card."""
        keys = [challenge.certificate_key(c) for c in arg.data_list(certificates, "certificates")]
        if not keys:
            raise CardNotAuthenticated("no wallet certificate to authenticate the card with")
        nonce = secrets.token_bytes(challenge.CHALLENGE_SIZE)
        signature, sw = self._send(wire.CLA_ISO, Ins.INTERNAL_AUTHENTICATE, nonce)
        if sw != SW.OK:
            raise CardNotAuthenticated(f"the card refused INTERNAL AUTHENTICATE ({sw:04X})")
        if not any(challenge.verify_challenge(k, nonce, signature) for k in keys):
            raise CardNotAuthenticated(
                "the card's answer to the challenge is not the wallet key's signature"
            )

    def _pin_command(self, ins: int, data: bytes) -> None:
        _, sw = self._send(wire.CLA_ISO, ins, data, p2=wire.PIN_REFERENCE)
        if sw == SW.OK:
            return
        error = refusal.pin_error(sw)
        if error is not None:
            raise error
        if sw == SW.WRONG_DATA:
            raise ValueError("the card refuses that new PIN")
        raise SecureElementError(f"the card refused the PIN command ({sw:04X})")

    def verify(self, pin: str) -> None:
        """Present the PIN: ``WrongPin`` (tries left in its message) or ``PinBlocked``."""
        self._pin_command(Ins.VERIFY, _pin_bytes(pin))

    def pin_tries(self) -> int:
        """PIN tries left (VERIFY without data; 3 once verified)."""
        _, sw = self._send(wire.CLA_ISO, Ins.VERIFY, p2=wire.PIN_REFERENCE)
        if sw == SW.OK:
            return 3
        if sw == SW.BLOCKED:
            return 0
        if sw >> 4 == SW.WRONG_PIN >> 4:
            return sw & 0xF
        raise SecureElementError(f"the card refused VERIFY ({sw:04X})")

    def change_pin(self, pin: str, new_pin: str) -> None:
        """Replace the PIN (the old one is a try like VERIFY's)."""
        self._pin_command(
            Ins.CHANGE_REFERENCE_DATA,
            wire.pad_pin(_pin_bytes(pin)) + wire.pad_pin(_pin_bytes(new_pin)),
        )

    def unblock(self, puk: str, new_pin: str) -> None:
        """RESET RETRY COUNTER: the PUK and a new PIN unblock the PIN."""
        self._pin_command(
            Ins.RESET_RETRY_COUNTER, _puk_bytes(puk) + wire.pad_pin(_pin_bytes(new_pin))
        )

    def personalise(
        self, params: NetworkParams, root_certificate: bytes, pin: str, puk: str
    ) -> None:
        """Make a blank card an offcash SE of ``params`` under ``root_certificate`` (its key
        is generated inside the card), with its PIN and PUK."""
        self._call(
            Ins.PERSONALISE,
            [
                params.to_cbor(),
                arg.data(root_certificate, "root"),
                _pin_bytes(pin),
                _puk_bytes(puk),
            ],
        )
        self.info = self.select()

    # --- operations -------------------------------------------------------------------------

    def _call(self, ins: Ins, args: list[Any] | None = None) -> bytes:
        data = b"" if args is None else cbor.encode(args)
        out, sw = self._send(wire.CLA_PROPRIETARY, ins, data)
        if sw == SW.OK:
            return out
        if sw == SW.SECURITY_STATUS:
            raise SecureElementError("the card's PIN is not verified in this session")
        if refusal.is_refusal(sw):
            detail, dsw = self._send(wire.CLA_PROPRIETARY, Ins.GET_ERROR)
            fields: Any = wire.decode_answer(detail, "error") if dsw == SW.OK else None
            if type(fields) is list and len(fields) == 2 and type(fields[1]) is list:
                raise refusal.rebuild(sw, fields[1])
            raise refusal.rebuild(sw, [f"status {sw:04X}"])
        raise SecureElementError(f"the card refused {ins.name} ({sw:04X})")

    def _bytes(self, ins: Ins, args: list[Any] | None = None) -> bytes:
        value = wire.decode_answer(self._call(ins, args), ins.name.lower())
        if type(value) is not bytes:
            raise SecureElementError(f"the card answered {ins.name} with no byte string")
        return value

    def _load_trust(self) -> tuple[NetworkParams, TrustStore]:
        if self._trust is None:
            params, root, banks, crls = wire.decode_trust(self._call(Ins.GET_TRUST))
            self._trust = (params, TrustStore.create(root, banks, crls))
        return self._trust

    @property
    def params(self) -> NetworkParams:
        """The network parameters the card was personalised for."""
        return self._load_trust()[0]

    @property
    def trust(self) -> TrustStore:
        """A copy of the card's trust store (root, bank CAs, CRLs), to check receipts."""
        return self._load_trust()[1]

    def csr(self) -> bytes:
        return self._bytes(Ins.CSR)

    def enroll(
        self, certificate: bytes, bank_certificates: list[bytes], crls: list[bytes], now: int
    ) -> None:
        args = [
            arg.data(certificate, "certificate"),
            arg.data_list(bank_certificates, "bank_certificates"),
            arg.data_list(crls, "crls"),
            arg.time(now),
        ]
        self._trust = None
        self._call(Ins.ENROL, args)

    def migrate(
        self,
        params: NetworkParams,
        root_certificate: bytes,
        new_with_old: bytes,
        bank_certificates: list[bytes],
    ) -> None:
        if not isinstance(params, NetworkParams):
            raise TypeError(f"params must be NetworkParams, not {type(params).__name__}")
        args = [
            params.to_cbor(),
            arg.data(root_certificate, "root_certificate"),
            arg.data(new_with_old, "new_with_old"),
            arg.data_list(bank_certificates, "bank_certificates"),
        ]
        self._trust = None
        self._call(Ins.MIGRATE, args)

    def install_crls(self, crls: list[bytes], now: int) -> bool:
        args = [arg.data_list(crls, "crls"), arg.time(now)]
        self._trust = None
        value = wire.decode_answer(self._call(Ins.INSTALL_CRLS, args), "install_crls")
        if type(value) is not bool:
            raise SecureElementError("the card answered INSTALL CRLS with no boolean")
        return value

    def status(self, now: int) -> Status:
        return wire.decode_status(self._call(Ins.GET_STATUS, [arg.time(now)]))

    def request(
        self,
        amount: int,
        now: int,
        reference: str | None = None,
        payee_name: str | None = None,
        nonce: bytes | None = None,
    ) -> bytes:
        args = [
            arg.amount(amount),
            arg.time(now),
            arg.text(reference, "reference", arg.MAX_REFERENCE),
            arg.text(payee_name, "payee_name", arg.MAX_PAYEE_NAME),
            arg.nonce(nonce),
        ]
        return self._bytes(Ins.REQUEST, args)

    def pay(self, request: bytes, now: int) -> bytes:
        return self._bytes(Ins.PAY, [arg.data(request, "request"), arg.time(now)])

    def pay_to(self, payee: WalletId, amount: int, now: int, reference: str | None = None) -> bytes:
        args = [
            arg.wallet_id(payee).raw,
            arg.amount(amount),
            arg.time(now),
            arg.text(reference, "reference", arg.MAX_REFERENCE),
        ]
        return self._bytes(Ins.PAY_TO, args)

    def sent_payment(self, counter: int) -> bytes:
        return self._bytes(Ins.SENT_PAYMENT, [arg.counter(counter)])

    def open_sealed(self, data: bytes) -> bytes:
        return self._bytes(Ins.OPEN_SEALED, [arg.data(data, "sealed message")])

    def receive(self, payment: bytes, now: int) -> Received:
        args = [arg.data(payment, "payment"), arg.time(now)]
        return wire.decode_received(self._call(Ins.RECEIVE, args))

    def load(self, voucher: bytes, now: int) -> int:
        args = [arg.data(voucher, "voucher"), arg.time(now)]
        value = wire.decode_answer(self._call(Ins.LOAD, args), "load")
        if type(value) is not int:
            raise SecureElementError("the card answered LOAD with no integer")
        return value

    def unload(self, amount: int, now: int) -> bytes:
        return self._bytes(Ins.UNLOAD, [arg.amount(amount), arg.time(now)])

    def sync_upload(self, now: int) -> SyncUpload:
        return wire.decode_upload(self._call(Ins.SYNC_UPLOAD, [arg.time(now)]))

    def apply_sync(
        self,
        ack: bytes,
        certificate: bytes,
        bank_certificates: list[bytes],
        crls: list[bytes],
        now: int,
    ) -> None:
        args = [
            arg.data(ack, "ack"),
            arg.data(certificate, "certificate"),
            arg.data_list(bank_certificates, "bank_certificates"),
            arg.data_list(crls, "crls"),
            arg.time(now),
        ]
        self._trust = None
        self._call(Ins.SYNC_APPLY, args)


def _pin_bytes(pin: str) -> bytes:
    if not isinstance(pin, str):
        raise TypeError(f"a PIN is a str, not {type(pin).__name__}")
    return check_pin(pin.encode("utf-8"))


def _puk_bytes(puk: str) -> bytes:
    if not isinstance(puk, str):
        raise TypeError(f"a PUK is a str, not {type(puk).__name__}")
    return check_puk(puk.encode("ascii", "replace"))
