"""The till: one payee (a wallet or a receive-only terminal) seen as a point of sale.

Theory of operation: the web page of ``offcash pos`` holds no key and decides nothing; every
decision is made here, by the same offcash code the CLI runs. A till makes payment requests
(``SoftwareSecureElement.request`` or ``ReceiveOnlyTerminal.request``), receives payments in any
form the transports read (QR image, text, raw bytes; ``files.decode_content`` detects it),
verifies them offline (``receive``: ``PayeeBook.verify`` and ``verify_payment``), and syncs
when online (``wallet.sync`` for a wallet; ``terminal.redeem`` for a terminal). Amounts stay
integers of minor units; the page gets each one as ``{minor, decimal, currency, digits}`` and
formats it for people.

The day's history is a display journal, ``pos/NAME.jsonl`` in the network folder, one JSON
line per payment credited (appended after the payee has persisted it). It decides nothing:
the wallet's or terminal's own state is what counts, and a line lost to a crash only hides a
payment from the list. Calls are serialised by a lock: one payee state file, one writer.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from offcash.cli import payments, terminal, wallet
from offcash.cli.config import CliRefusal, Network, now
from offcash.domain.money import Currency, Money
from offcash.encoding import sealed
from offcash.errors import DecodeError, OffcashError, VerificationError
from offcash.protocol import messages as m
from offcash.transports import FRAME_BUDGET, decode_content, encode_text, render_frame_images

Kind = Literal["wallet", "terminal"]
POS_DIR = "pos"
#: Largest upload (image, text or raw message) the till reads.
MAX_UPLOAD = 8 * 1024 * 1024
#: References of the till's latest requests kept in memory, to show with their payments.
MAX_REFERENCES = 256
#: Pixels per QR module in the images the page shows.
QR_SCALE = 6


def png_data_urls(data: bytes, budget: int = FRAME_BUDGET) -> list[str]:
    """The QR frames of ``data`` as PNG ``data:`` URLs, in frame order (several when large)."""
    urls = []
    for image in render_frame_images(data, scale=QR_SCALE, budget=budget):
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", optimize=True)
        urls.append("data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode())
    return urls


def refusal(net: Network, exc: OffcashError) -> dict[str, Any]:
    """A refusal as the page shows it: the CLI's code and one-line message, wallet ids named."""
    rejection = exc.rejection.name if isinstance(exc, VerificationError) else None
    return {
        "accepted": False,
        "code": exc.code,
        "rejection": rejection,
        "message": net.named(" ".join(f"{exc.code}: {exc}".split())),
    }


@dataclass
class Till:
    """A wallet or terminal ``name`` of network ``net``, serving a point of sale."""

    net: Network
    name: str
    kind: Kind
    pin: str = ""
    server: str | None = None
    budget: int = FRAME_BUDGET
    clock: Callable[[], int] = now
    _references: dict[bytes, str] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def open(
        cls, net: Network, name: str, *, pin: str, server: str | None = None, budget: int = 0
    ) -> Till:
        """The till of wallet or terminal ``name`` (its PIN checked now, for a wallet)."""
        if name in net.wallets:
            net.open_se(name, pin)  # a wrong PIN fails here, not at the first sale
            kind: Kind = "wallet"
        elif terminal.exists(net, name):
            terminal.load(net, name)
            kind = "terminal"
        else:
            raise CliRefusal(f"no wallet or terminal named {name!r}")
        return cls(net, name, kind, pin, server, budget or FRAME_BUDGET)

    # --- amounts ------------------------------------------------------------------------------

    @property
    def currency(self) -> Currency:
        """The network's currency."""
        return Currency.of(self.net.config.currency)

    def money(self, minor: int) -> dict[str, Any]:
        """An amount for the page: exact minor units and decimal text, never a float."""
        c = self.currency
        return {"minor": minor, "decimal": Money(minor, c).format(), "currency": c.code}

    # --- what the page asks -------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """Who this till is, and what it holds."""
        with self._lock:
            if self.kind == "wallet":
                w = wallet.show(self.net, self.name, pin=self.pin)
                held = {"balance": self.money(int(w["balance"]))}
                payee_id = w["wallet_id"]
            else:
                t = terminal.show(self.net, self.name)
                held = {"held": self.money(int(t["held_value"]))}
                payee_id = t["wallet_id"]
        return {
            "name": self.name,
            "kind": self.kind,
            "payee_id": payee_id,
            "currency": self.currency.code,
            "digits": self.currency.digits,
            **held,
        }

    def request(self, amount: str, reference: str | None) -> dict[str, Any]:
        """A payment request for ``amount`` (decimal text), as QR frames and as text."""
        reference = (reference or "").strip() or None
        with self._lock:
            if self.kind == "wallet":
                minor = Money.parse(amount, self.net.config.currency).minor  # MoneyError: 422
                with self.net.se(self.name, self.pin) as se:  # locked: see Network.se
                    data = se.request(
                        minor, self.clock(), reference=reference, payee_name=self.name
                    )
            else:
                data, _ = terminal.request(self.net, self.name, amount, reference=reference)
            req = m.parse_request(data)
            if reference:
                self._references[req.nonce] = reference
                while len(self._references) > MAX_REFERENCES:  # the oldest request first
                    del self._references[next(iter(self._references))]
        return {
            "amount": self.money(req.amount),
            "reference": reference,
            "text": encode_text(data),
            "frames": png_data_urls(data, self.budget),
        }

    def receive(self, content: bytes) -> dict[str, Any]:
        """Verify and credit a payment given in any form (image, text, raw message)."""
        if len(content) > MAX_UPLOAD:
            raise CliRefusal(f"input of {len(content)} bytes is larger than {MAX_UPLOAD}")
        data = decode_content(content, name="payment")
        return self.receive_message(data)

    def receive_message(self, data: bytes) -> dict[str, Any]:
        """Verify and credit one payment message (bytes); what is not one is refused as
        ``offcash wallet receive`` refuses it (a request, mangled text)."""
        try:
            return self._receive_message(data)
        except DecodeError:
            payments.refuse_if_request(data)
            payments.refuse_if_text(data, "payment")
            raise

    def _receive_message(self, data: bytes) -> dict[str, Any]:
        with self._lock:
            t = self.clock()
            if self.kind == "wallet":
                with self.net.se(self.name, self.pin) as se:  # locked: see Network.se
                    if sealed.is_sealed(data):  # sealed by the payer for this wallet's key
                        data = payments.opened(se, self.name, data)
                    got = se.receive(data, t)
            else:
                got, _ = terminal.accept(self.net, self.name, data)
            payer, minor, counter, duplicate = got.payer, got.amount, got.counter, got.duplicate
            p = m.parse_payment(data)
            reference = p.reference or (self._references.get(p.nonce) if p.nonce else None)
            entry = {
                "time": t,
                "payer": self.net.name_of(payer),
                "payer_id": str(payer),
                "amount": minor,
                "counter": counter,
                "reference": reference,
                "digest": p.digest.hex(),
            }
            if not duplicate:
                self._journal(entry)
        return {
            "accepted": True,
            "duplicate": duplicate,
            "code": "duplicate" if duplicate else "accepted",
            "message": (
                f"already received this payment from {entry['payer']}: not credited again"
                if duplicate
                else f"received from {entry['payer']}, verified offline"
            ),
            "amount": self.money(minor),
            "payer": entry["payer"],
            "payer_id": entry["payer_id"],
            "counter": counter,
            "reference": reference,
            "receipt": None
            if got.receipt is None
            else {
                "text": encode_text(got.receipt),
                "frames": png_data_urls(got.receipt, self.budget),
            },
        }

    def history(self) -> dict[str, Any]:
        """The payments credited today (the till's local day), newest first, and their total."""
        today = dt.datetime.fromtimestamp(self.clock()).date()
        rows = [e for e in self._read_journal() if dt.date.fromtimestamp(e["time"]) == today]
        rows.reverse()
        total = sum(int(e["amount"]) for e in rows)
        return {
            "date": today.isoformat(),
            "payments": [
                {
                    **e,
                    "time": dt.datetime.fromtimestamp(e["time"]).strftime("%H:%M:%S"),
                    "amount": self.money(int(e["amount"])),
                }
                for e in rows
            ],
            "count": len(rows),
            "total": self.money(total),
        }

    def sync(self) -> dict[str, Any]:
        """ONLINE: settle the wallet's log, or redeem the terminal's payments; refresh CRLs."""
        with self._lock:
            if self.kind == "wallet":
                r = wallet.sync(self.net, self.name, pin=self.pin, server=self.server)
                return {
                    "synced": True,
                    "message": f"synced: {r['uploaded_entries']} log entries settled",
                    "balance": self.money(int(r["balance"])),
                }
            r = terminal.redeem(self.net, self.name, self.server)
            refused = f", {len(r['refused'])} refused and still held" if r["refused"] else ""
            plural = "" if r["settled"] == 1 else "s"
            return {
                "synced": True,
                "message": f"redeemed {r['settled']} payment{plural}, {r['amount']} "
                f"{self.currency.code}, to {r['owner']}{refused}",
                "amount": self.money(int(r["amount"])),
            }

    # --- journal ------------------------------------------------------------------------------

    @property
    def journal_path(self) -> Path:
        """The display journal of this till."""
        return self.net.root / POS_DIR / f"{self.name}.jsonl"

    def _journal(self, entry: dict[str, Any]) -> None:
        self.journal_path.parent.mkdir(exist_ok=True)
        with self.journal_path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(entry, sort_keys=True) + "\n")

    def _read_journal(self) -> list[dict[str, Any]]:
        try:
            lines = self.journal_path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                e = json.loads(line)
            except ValueError:
                continue  # a line torn by a crash: the journal only displays
            if isinstance(e, dict) and type(e.get("time")) is int and type(e.get("amount")) is int:
                out.append(e)
        return out
