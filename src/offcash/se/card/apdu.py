"""ISO/IEC 7816-4 command and response APDUs: parsing, encoding, chaining, GET RESPONSE.

Theory of operation: a command APDU is a 4-byte header (CLA INS P1 P2) and an optional body
in one of the standard cases: 1 (no body), 2 (Le), 3 (Lc, data), 4 (Lc, data, Le), each in a
short form (one-byte Lc and Le, data up to 255 bytes, Le 00 meaning 256) or an extended form
(a 00 byte, then two-byte Lc and Le, data up to 65535 bytes, Le 0000 meaning 65536).
``Command.parse`` reads exactly these forms and raises ``ApduError`` with the status word a
card answers (``6700`` wrong length, ``6E00`` unsupported class...) for anything else, never
another exception. A response APDU is data followed by the two status bytes SW1 SW2.

A message longer than one APDU travels two ways, both from ISO 7816-4 section 5: on the way in,
command chaining (bit 0x10 of CLA set on every command of the chain but the last; the card
joins their data fields); on the way out, the card answers with as much as Le allows and the
status ``61xx`` (xx more bytes, 00 meaning 256 or more), and the host asks for the rest with
GET RESPONSE (``00 C0 00 00 Le``). ``chain`` and ``Responder`` implement the two sides; the
host-side loop is ``exchange``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

#: CLA bit announcing that more commands of the same chain follow (ISO 7816-4 5.4.1).
CHAINING = 0x10
#: INS of GET RESPONSE.
GET_RESPONSE = 0xC0
SHORT_MAX_DATA = 255
SHORT_MAX_LE = 256
EXTENDED_MAX_DATA = 65535
EXTENDED_MAX_LE = 65536


class SW:
    """The status words this codec and the applet use (ISO 7816-4 section 5.6)."""

    OK = 0x9000
    MORE_DATA = 0x6100  # 61xx: xx more bytes with GET RESPONSE
    WRONG_PIN = 0x63C0  # 63Cx: wrong PIN, x tries left
    WRONG_LENGTH = 0x6700
    LOGICAL_CHANNEL_NOT_SUPPORTED = 0x6881
    SECURE_MESSAGING_NOT_SUPPORTED = 0x6882
    LAST_COMMAND_EXPECTED = 0x6883
    SECURITY_STATUS = 0x6982  # the PIN was not verified
    BLOCKED = 0x6983  # PIN or PUK blocked
    CONDITIONS = 0x6985
    WRONG_DATA = 0x6A80
    NOT_FOUND = 0x6A82
    WRONG_P1P2 = 0x6A86
    REFERENCE_NOT_FOUND = 0x6A88
    INS_NOT_SUPPORTED = 0x6D00
    CLA_NOT_SUPPORTED = 0x6E00
    UNKNOWN = 0x6F00


class ApduError(Exception):
    """A command the card refuses at the APDU level; ``sw`` is the status word to answer."""

    def __init__(self, sw: int, reason: str) -> None:
        super().__init__(f"{sw:04X}: {reason}")
        self.sw = sw
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Command:
    """A command APDU. ``le`` is None when absent (no response data asked for), else the
    number of bytes asked for (1..65536)."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None
    extended: bool = False

    @property
    def chained(self) -> bool:
        """Whether more commands of this chain follow (CLA bit 0x10)."""
        return bool(self.cla & CHAINING)

    @classmethod
    def parse(cls, apdu: bytes) -> Command:
        """The command in ``apdu``; ``ApduError`` (``6700``) if it is no valid case."""
        n = len(apdu)
        if n < 4:
            raise ApduError(SW.WRONG_LENGTH, f"a command APDU has at least 4 bytes, not {n}")
        cla, ins, p1, p2 = apdu[:4]
        body = apdu[4:]
        if not body:  # case 1
            return cls(cla, ins, p1, p2)
        if len(body) == 1:  # case 2 short
            return cls(cla, ins, p1, p2, le=body[0] or SHORT_MAX_LE)
        if body[0] != 0:  # short case 3 or 4
            lc = body[0]
            if len(body) == 1 + lc:
                return cls(cla, ins, p1, p2, data=bytes(body[1:]))
            if len(body) == 2 + lc:
                return cls(
                    cla, ins, p1, p2, data=bytes(body[1 : 1 + lc]), le=body[-1] or SHORT_MAX_LE
                )
            raise ApduError(SW.WRONG_LENGTH, f"Lc {lc} does not match {len(body) - 1} bytes")
        # extended: 00 then a two-byte length
        if len(body) == 3:  # case 2 extended
            return cls(cla, ins, p1, p2, le=_extended_le(body[1:]), extended=True)
        if len(body) < 3:
            raise ApduError(SW.WRONG_LENGTH, "truncated extended length")
        lc = int.from_bytes(body[1:3], "big")
        if lc == 0:
            raise ApduError(SW.WRONG_LENGTH, "extended Lc of 0")
        rest = body[3:]
        if len(rest) == lc:
            return cls(cla, ins, p1, p2, data=bytes(rest), extended=True)
        if len(rest) == lc + 2:
            return cls(
                cla, ins, p1, p2, data=bytes(rest[:lc]), le=_extended_le(rest[lc:]), extended=True
            )
        raise ApduError(SW.WRONG_LENGTH, f"extended Lc {lc} does not match {len(rest)} bytes")

    def encode(self) -> bytes:
        """The APDU bytes: the short form when data and Le fit it, unless ``extended``."""
        header = bytes((self.cla, self.ins, self.p1, self.p2))
        data, le = self.data, self.le
        if not 0 <= len(data) <= EXTENDED_MAX_DATA:
            raise ValueError(f"{len(data)} bytes of data do not fit one APDU")
        if le is not None and not 1 <= le <= EXTENDED_MAX_LE:
            raise ValueError(f"Le {le} out of range 1..{EXTENDED_MAX_LE}")
        if not data and le is None:  # case 1 has one form
            return header
        extended = (
            self.extended or len(data) > SHORT_MAX_DATA or (le is not None and le > SHORT_MAX_LE)
        )
        if not extended:
            lc = bytes((len(data),)) + data if data else b""
            return header + lc + (b"" if le is None else bytes((le % 256,)))
        out = header + b"\x00"
        if data:
            out += len(data).to_bytes(2, "big") + data
        if le is not None:
            out += (le % 65536).to_bytes(2, "big")
        return out


def _extended_le(two: bytes) -> int:
    return int.from_bytes(two, "big") or EXTENDED_MAX_LE


def response(sw: int, data: bytes = b"") -> bytes:
    """A response APDU: ``data`` then SW1 SW2."""
    return data + sw.to_bytes(2, "big")


def split_response(apdu: bytes) -> tuple[bytes, int]:
    """The data and status word of a response APDU (``ValueError`` if shorter than 2 bytes)."""
    if len(apdu) < 2:
        raise ValueError(f"a response APDU has at least 2 bytes, not {len(apdu)}")
    return bytes(apdu[:-2]), int.from_bytes(apdu[-2:], "big")


def chain(
    cla: int, ins: int, p1: int, p2: int, data: bytes, *, extended: bool = False
) -> list[Command]:
    """``data`` as one command (extended length when ``extended`` and it fits one APDU) or as
    a chain of short commands, each asking for a response (Le 00, or 0000 when extended)."""
    le = EXTENDED_MAX_LE if extended else SHORT_MAX_LE
    size = EXTENDED_MAX_DATA if extended else SHORT_MAX_DATA
    pieces = [data[i : i + size] for i in range(0, len(data), size)] or [b""]
    last = len(pieces) - 1
    return [
        Command(cla | (CHAINING if i < last else 0), ins, p1, p2, piece, le, extended)
        for i, piece in enumerate(pieces)
    ]


def exchange(
    transmit: Callable[[bytes], bytes],
    cla: int,
    ins: int,
    p1: int,
    p2: int,
    data: bytes = b"",
    *,
    extended: bool = False,
    max_response: int = 1024 * 1024,
) -> tuple[bytes, int]:
    """Send one logical command (chained if it needs more than one APDU) and collect its whole
    response (GET RESPONSE while the card answers ``61xx``; ``6Cxx``: the same command again
    with Le xx, as T=0 cards ask). Returns the response data and the final status word; a
    refusal of an intermediate chained command ends the exchange with that status word. A card
    that answers more than ``max_response`` bytes (``61xx`` for ever: a hostile or fake card)
    gets a ``ValueError``, not a host that loops and fills its memory."""
    out = b""
    sw = SW.OK
    for command in chain(cla, ins, p1, p2, data, extended=extended):
        out, sw = split_response(transmit(command.encode()))
        if sw >> 8 == 0x6C:
            retry = Command(command.cla, ins, p1, p2, command.data, sw & 0xFF or SHORT_MAX_LE)
            out, sw = split_response(transmit(retry.encode()))
        if command.chained and sw != SW.OK:
            return b"", sw
    whole = bytearray(out)
    while sw >> 8 == 0x61:
        if len(whole) > max_response:
            raise ValueError(f"the card's answer exceeds {max_response} bytes")
        asked = EXTENDED_MAX_LE if extended else (sw & 0xFF or SHORT_MAX_LE)
        more, sw = split_response(
            transmit(Command(0x00, GET_RESPONSE, 0, 0, le=asked, extended=extended).encode())
        )
        whole += more
    if len(whole) > max_response:
        raise ValueError(f"the card's answer exceeds {max_response} bytes")
    return bytes(whole), sw


class Responder:
    """The card side of long messages: joins chained commands and deals a long response out
    in pieces of Le bytes with ``61xx`` and GET RESPONSE."""

    def __init__(self, max_command: int) -> None:
        self.max_command = max_command
        self._chain: tuple[tuple[int, int, int], bytearray] | None = None
        self._pending = b""

    def reset(self) -> None:
        """Forget a pending chain and response (power off, reset, SELECT)."""
        self._chain = None
        self._pending = b""

    def join(self, command: Command) -> Command | None:
        """The whole command once its chain is complete (None while it continues); raises
        ``ApduError`` for a chain broken by another command or longer than ``max_command``."""
        key = (command.ins, command.p1, command.p2)
        if self._chain is not None and self._chain[0] != key:
            self._chain = None
            raise ApduError(SW.LAST_COMMAND_EXPECTED, "a chain was interrupted by another command")
        data = (self._chain[1] if self._chain else bytearray()) + command.data
        if len(data) > self.max_command:
            self._chain = None
            raise ApduError(SW.WRONG_LENGTH, f"command data over {self.max_command} bytes")
        if command.chained:
            self._chain = (key, data)
            return None
        self._chain = None
        return Command(command.cla, command.ins, command.p1, command.p2, bytes(data), command.le)

    def answer(self, data: bytes, le: int | None, sw: int = SW.OK) -> bytes:
        """The response APDU for ``data``: at most ``le`` bytes of it (none if Le is absent),
        and ``61xx`` while more remain for GET RESPONSE."""
        room = le or 0
        if len(data) <= room or (not data):
            self._pending = b""
            return response(sw, data)
        self._pending = data[room:]
        return response(SW.MORE_DATA | (min(len(self._pending), 256) % 256), data[:room])

    def get_response(self, le: int | None) -> bytes:
        """The next piece of the pending response (``6985`` if none is pending)."""
        if not self._pending:
            raise ApduError(SW.CONDITIONS, "no response data is pending")
        return self.answer(self._pending, le)
