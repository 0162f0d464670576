"""``offcash terminal create|show|request|receive|redeem``: receive-only terminals.

Theory of operation: a terminal (``offcash.wallet.terminal``) is a payee without a secure
element: a shop PC or a till. ``create`` registers it with the owner's bank (the ledger gives
it a wallet id paying into the owner's account) and fetches the trust material it verifies
payments with (root, bank CAs, CRLs). Its state lives in the network folder as
``terminals/NAME.json`` (name, wallet id, owner, bank) and ``terminals/NAME.state`` (the
terminal's CBOR: trust store, payee book, payments held), each written atomically. ``request``
and ``receive`` are offline, like the wallet commands; ``redeem`` is online: settlement credits
the owner's account with the payments held, which the terminal then forgets (a refused one
stays held and is reported), and the terminal's CRLs are refreshed. A terminal cannot spend:
it has no key and no balance. Each read-modify-write of a terminal's state (request,
receive, redeem with its settlement call) holds the state file's OS lock
(``offcash.se.filelock``), so processes sharing a terminal lose no payment held.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from offcash.cli import output, service
from offcash.cli.common import Json, Server, open_network
from offcash.cli.config import CliRefusal, Network, check_name, now
from offcash.crypto.trust import TrustStore
from offcash.domain.ids import WalletId
from offcash.protocol import messages as m
from offcash.se.filelock import exclusive, lock_path
from offcash.se.interface import Received
from offcash.se.storage import atomic_write
from offcash.transports import files
from offcash.wallet.terminal import ReceiveOnlyTerminal

app = typer.Typer(no_args_is_help=True)

TERMINALS_DIR = "terminals"


@dataclass
class TerminalEntry:
    """What the network folder records about terminal ``name``."""

    name: str
    wallet_id: str
    owner: str
    bank: str


def _paths(net: Network, name: str) -> tuple[Path, Path]:
    folder = net.root / TERMINALS_DIR
    check_name(name, "terminal")
    return folder / f"{name}.json", folder / f"{name}.state"


def locked(net: Network, name: str) -> AbstractContextManager[None]:
    """Terminal ``name``'s state locked against other processes for a ``with`` block."""
    return exclusive(lock_path(_paths(net, name)[1]))


def exists(net: Network, name: str) -> bool:
    """Whether the network folder holds a terminal named ``name``."""
    return _paths(net, name)[0].exists()


def entry(net: Network, name: str) -> TerminalEntry:
    """The registry entry of terminal ``name`` (``CliRefusal`` if there is none)."""
    meta, _ = _paths(net, name)
    try:
        raw: Any = json.loads(meta.read_text(encoding="utf-8"))
        return TerminalEntry(**raw)
    except FileNotFoundError:
        raise CliRefusal(f"no terminal named {name!r}") from None
    except (OSError, ValueError, TypeError) as exc:
        raise CliRefusal(f"{meta}: unreadable terminal entry: {exc}") from None


def load(net: Network, name: str) -> ReceiveOnlyTerminal:
    """Terminal ``name``'s state (``DecodeError`` if the file is damaged)."""
    entry(net, name)
    return ReceiveOnlyTerminal.decode(_paths(net, name)[1].read_bytes())


def save(net: Network, name: str, terminal: ReceiveOnlyTerminal) -> None:
    """Persist terminal ``name``'s state atomically."""
    atomic_write(_paths(net, name)[1], terminal.encode())


def create(net: Network, name: str, owner: str, server: str | None = None) -> dict[str, Any]:
    """Register terminal ``name`` paying into account ``owner`` and fetch its trust material."""
    meta, state = _paths(net, name)
    svc = service.connect(net, server)
    with exclusive(net.lock_file):  # the name check and the new files as one step
        net.reload_registry()
        if meta.exists() or name in net.wallets:
            raise CliRefusal(f"a wallet or terminal named {name!r} already exists")
        account = net.account(owner)
        wallet_id = WalletId.parse(str(svc.ledger.register_terminal(account.account_id)))
        material = svc.ledger.trust_material(wallet_id, now())
        trust = TrustStore.create(material.root, material.bank_certificates, material.crls)
        terminal = ReceiveOnlyTerminal(wallet_id, net.config.params, trust)
        meta.parent.mkdir(exist_ok=True)
        atomic_write(state, terminal.encode())
        e = TerminalEntry(name, str(wallet_id), owner, account.bank)
        atomic_write(meta, (json.dumps(asdict(e), indent=2) + "\n").encode())
    return show(net, name)


def show(net: Network, name: str) -> dict[str, Any]:
    """Terminal ``name``: its id, owner and the payments it holds for redemption (offline)."""
    e, terminal = entry(net, name), load(net, name)
    held = [m.parse_payment(p).amount for p in terminal.payments_to_redeem()]
    return {
        "terminal": name,
        "wallet_id": e.wallet_id,
        "owner": e.owner,
        "bank": e.bank,
        "currency": net.config.currency,
        "held_payments": len(held),
        "held_value": net.money_of(sum(held)),
    }


def request(
    net: Network, name: str, amount: str, *, reference: str | None = None
) -> tuple[bytes, dict[str, Any]]:
    """Terminal ``name``'s payment request for ``amount`` (remembered as outstanding)."""
    money = net.money(amount)
    with locked(net, name):
        terminal = load(net, name)
        data = terminal.request(money.minor, now(), reference=reference, payee_name=name)
        save(net, name, terminal)
    return data, {
        "payee": name,
        "payee_id": str(terminal.wallet_id),
        "amount": net.money_of(money.minor),
        "currency": money.currency.code,
        "reference": reference,
    }


def accept(net: Network, name: str, data: bytes) -> tuple[Received, int]:
    """Verify ``data`` offline and hold it for redemption (a re-sent one is held once);
    returns what was received and how many payments the terminal now holds."""
    with locked(net, name):
        terminal = load(net, name)
        got = terminal.receive(data, now())
        if not got.duplicate:
            save(net, name, terminal)
    return got, len(terminal.payments_to_redeem())


def receive(net: Network, name: str, data: bytes) -> dict[str, Any]:
    """``accept``, as the command shows it."""
    got, held = accept(net, name, data)
    return {
        "payee": name,
        "payer": net.name_of(got.payer),
        "payer_id": str(got.payer),
        "amount": net.money_of(got.amount),
        "currency": net.config.currency,
        "counter": got.counter,
        "duplicate": got.duplicate,
        "held_payments": held,
    }


def redeem(net: Network, name: str, server: str | None = None) -> dict[str, Any]:
    """ONLINE: settle the payments held into the owner's account; refresh the CRLs."""
    svc = service.connect(net, server)
    with locked(net, name):  # a payment received meanwhile would be forgotten otherwise
        e, terminal = entry(net, name), load(net, name)
        held = terminal.payments_to_redeem()
        with output.progress(f"Redeeming {name}'s {len(held)} payments..."):
            result = svc.ledger.redeem(terminal.wallet_id, held, now())
            material = svc.ledger.trust_material(terminal.wallet_id, now())
        refused = {r.digest for r in result.refused}
        terminal.redeemed({m.digest(p) for p in held} - refused)
        terminal.trust = TrustStore.create(material.root, material.bank_certificates, material.crls)
        save(net, name, terminal)
    return {
        **show(net, name),
        "settled": result.settled,
        "amount": net.money_of(result.amount),
        "duplicates": result.duplicates,
        "refused": [r.reason for r in result.refused],
        "owner_balance": net.money_of(svc.balance(e.owner)),
    }


Name = Annotated[str, typer.Argument(help="Terminal name, e.g. shop-till.")]


@app.command("create")
def create_cmd(
    ctx: typer.Context,
    name: Name,
    owner: Annotated[str, typer.Option(help="The account the terminal's payments go to.")],
    server: Server = None,
    as_json: Json = False,
) -> None:
    """ONLINE: register a receive-only terminal (no secure element) paying into OWNER."""
    r = create(open_network(ctx), name, owner, server)
    output.emit(
        r,
        as_json,
        lambda r: output.say(
            f"terminal {r['terminal']} ({r['wallet_id']}) created: payments go to {r['owner']} "
            f"at {r['bank']}"
        ),
    )


@app.command("show")
def show_cmd(ctx: typer.Context, name: Name, as_json: Json = False) -> None:
    """Show a terminal and the payments it holds for redemption (offline)."""
    output.emit(
        show(open_network(ctx), name),
        as_json,
        lambda r: output.say(
            f"terminal {r['terminal']} of {r['owner']} ({r['bank']}): {r['held_payments']} "
            f"payments held, {r['held_value']} {r['currency']}"
        ),
    )


@app.command("request")
def request_cmd(
    ctx: typer.Context,
    name: Name,
    amount: Annotated[str, typer.Argument(help="Amount, e.g. 12.50.")],
    out: Annotated[str, typer.Option("--out", "-o", help="FILE.png, FILE.txt, FILE or - .")],
    reference: Annotated[str | None, typer.Option(help="Free text shown to the payer.")] = None,
    as_json: Json = False,
) -> None:
    """OFFLINE: write the terminal's payment request for AMOUNT."""
    data, r = request(open_network(ctx), name, amount, reference=reference)
    files.write_message(data, out)
    output.emit(
        {**r, "out": out},
        as_json,
        lambda r: output.say(
            f"{r['payee']} requests {r['amount']} {r['currency']}: request written to {out}",
            stderr=out == "-",
        ),
    )


@app.command("receive")
def receive_cmd(
    ctx: typer.Context,
    name: Name,
    source: Annotated[str, typer.Argument(help="Payment: .png QR, text, raw CBOR, or - (stdin).")],
    as_json: Json = False,
) -> None:
    """OFFLINE: verify a payment and hold it for redemption (a re-sent one is held once)."""
    net = open_network(ctx)
    r = receive(net, name, files.read_message(source))

    def render(r: dict[str, Any]) -> None:
        c = r["currency"]
        done = "already held, not counted again" if r["duplicate"] else "verified offline"
        output.say(f"{r['payee']} received {r['amount']} {c} from {r['payer']} ({done})")

    output.emit(r, as_json, render)


@app.command("redeem")
def redeem_cmd(
    ctx: typer.Context, name: Name, server: Server = None, as_json: Json = False
) -> None:
    """ONLINE: credit the payments the terminal holds to its owner's account."""
    r = redeem(open_network(ctx), name, server)

    def render(r: dict[str, Any]) -> None:
        c = r["currency"]
        refused = f", {len(r['refused'])} refused ({', '.join(r['refused'])})"
        output.say(
            f"{r['terminal']} redeemed {r['settled']} payments, {r['amount']} {c} to "
            f"{r['owner']} (account now {r['owner_balance']} {c}){refused if r['refused'] else ''}"
        )

    output.emit(r, as_json, render)
