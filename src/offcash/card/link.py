"""A card on a socket: the vpcd protocol of vsmartcard, from both ends.

Theory of operation: vsmartcard's virtual reader driver for pcscd (``vpcd``) listens on a TCP
port per reader slot (35963 for the first); a virtual card connects to it and is then "in the
reader". Every message either way is a 2-byte big-endian length and that many bytes. From the
reader: a 1-byte control code (00 power off, 01 power on, 02 reset, 04 get ATR, answered with
the ATR) or a command APDU (answered with the response APDU). ``serve`` runs that loop for an
``Applet`` over any connected socket; ``insert`` connects a card to vpcd (the card process
does this); ``CardServer`` listens on a local port and serves each connection the same way, so
tests reach a card through a real socket without pcscd; ``SocketChannel`` is the host end of
such a connection (an ``ApduChannel``).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Any

from offcash.errors import SecureElementError

#: vpcd's first reader slot listens here (``/etc/reader.conf.d/vpcd``: CHANNELID 0x8C7B); the
#: next slots on the following ports.
VPCD_PORT = 0x8C7B
POWER_OFF, POWER_ON, RESET, GET_ATR = 0, 1, 2, 4


def _read_exactly(sock: socket.socket, n: int) -> bytes | None:
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            return None
        out += chunk
    return bytes(out)


#: Linux's TCP_QUICKACK: acknowledge at once. vpcd writes a message's length and its bytes in
#: two writes; with Nagle's algorithm on its side and delayed acknowledgements on ours, the
#: second write waits ~40 ms for our ACK of the first: every APDU would cost 40 ms.
_QUICKACK = getattr(socket, "TCP_QUICKACK", None)


def receive(sock: socket.socket) -> bytes | None:
    """One length-prefixed message, None when the peer closed the connection."""
    if _QUICKACK is not None:  # re-armed before each read: the kernel clears it
        sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
    head = _read_exactly(sock, 2)
    if head is None:
        return None
    n = int.from_bytes(head, "big")
    return _read_exactly(sock, n) if n else b""


def send(sock: socket.socket, message: bytes) -> None:
    """One length-prefixed message."""
    if len(message) > 0xFFFF:
        raise ValueError("a vpcd message holds at most 65535 bytes")
    sock.sendall(len(message).to_bytes(2, "big") + message)


def serve(sock: socket.socket, applet: Any, lock: threading.Lock | None = None) -> None:
    """Answer the reader on ``sock`` with ``applet`` until the connection closes."""
    guard = lock or threading.Lock()
    while True:
        try:
            message = receive(sock)
        except OSError:
            return
        if message is None:
            return
        with guard:
            if len(message) == 1:
                code = message[0]
                if code in (POWER_OFF, POWER_ON, RESET):
                    applet.reset()
                elif code == GET_ATR:
                    _reply(sock, applet.atr)
                continue
            answer = applet.process(message)
        if not _reply(sock, answer):
            return


def _reply(sock: socket.socket, data: bytes) -> bool:
    try:
        send(sock, data)
    except OSError:
        return False
    return True


def insert(applet: Any, host: str = "127.0.0.1", port: int = VPCD_PORT) -> None:
    """Put the card in vpcd's reader at ``host:port`` and serve it until vpcd hangs up."""
    with socket.create_connection((host, port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        serve(sock, applet)


class CardServer:
    """A card (``applet``) answering on a local TCP port, to one connection at a time, like a
    card in one reader: a connection made while another is open is closed at once (any local
    user can connect; a second connection must not ride the first one's PIN session), and
    every connection starts and ends with the card reset (its session ends)."""

    def __init__(self, applet: Any) -> None:
        self.applet = applet
        self._lock = threading.Lock()
        self._busy = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            if not self._busy.acquire(blocking=False):  # the reader already has a host
                conn.close()
                continue
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._connections.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            with self._lock:
                self.applet.reset()
            serve(conn, self.applet, self._lock)
        finally:
            with self._lock:
                self.applet.reset()
            with contextlib.suppress(OSError):
                conn.close()
            self._busy.release()

    def close(self) -> None:
        """Stop listening and close every connection."""
        with contextlib.suppress(OSError):  # wakes the thread blocked in accept
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for conn in self._connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        self._thread.join(timeout=5)


class SocketChannel:
    """The host end of a vpcd-protocol connection to a card: powers it on, then carries
    APDUs (an ``ApduChannel``)."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        try:
            self._sock = socket.create_connection((host, port), timeout=60)
        except OSError as exc:
            raise SecureElementError(f"no card answers on {host}:{port}: {exc}") from None
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        send(self._sock, bytes([POWER_ON]))
        send(self._sock, bytes([GET_ATR]))
        self.atr = self._receive()

    def _receive(self) -> bytes:
        try:
            message = receive(self._sock)
        except OSError as exc:
            raise SecureElementError(f"the card connection failed: {exc}") from None
        if message is None:
            raise SecureElementError("the card closed the connection")
        return message

    def transmit(self, apdu: bytes) -> bytes:
        """The card's response APDU to ``apdu``."""
        try:
            send(self._sock, apdu)
        except OSError as exc:
            raise SecureElementError(f"the card connection failed: {exc}") from None
        return self._receive()

    def close(self) -> None:
        """Power the card off and close the connection."""
        with contextlib.suppress(OSError):
            send(self._sock, bytes([POWER_OFF]))
        self._sock.close()
