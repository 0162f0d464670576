"""``offcash card start|list|stop|unblock``: the cards of card wallets.

Theory of operation: a card wallet (``wallet create --se card``) keeps its key, balance and
log in a smart card reached through PC/SC. Unless the wallet names a physical reader, its card
is a virtual one: a card process (``python -m offcash.card``) running the offcash card
application over ``wallets/NAME.card`` and inserted in a free slot of vsmartcard's vpcd reader
(pcscd lists it as ``Virtual PCD 00 0N``). Wallet commands insert the card themselves when it
is not running; ``start`` does it ahead (e.g. for ``opensc-tool``), ``stop`` takes the card out
(ends the process; its memory stays), ``list`` shows which card sits in which reader.
``unblock`` presents the PUK shown at ``wallet create`` and sets a new PIN after three wrong
PINs blocked the card.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from offcash.card import process
from offcash.cli import output
from offcash.cli.common import Json, open_network
from offcash.cli.config import CliRefusal, Network, UsageProblem, read_new_pin, read_pin
from offcash.errors import PinBlocked, WrongPin, WrongPuk
from offcash.se.card.eeprom import check_pin, check_puk
from offcash.se.card.wire import AID

app = typer.Typer(no_args_is_help=True)


def _card_wallet(net: Network, name: str) -> None:
    if net.wallet(name).se != "card":
        raise CliRefusal(f"wallet {name} has a software secure element, not a card")


def check_card_secrets(*, pin: str | None = None, puk: str | None = None) -> None:
    """Refuse, as a usage error, a PIN or PUK the card would refuse as malformed (before any
    card is touched): a PIN is 4 to 16 printable ASCII characters, a PUK 8 digits."""
    try:
        if pin is not None:
            check_pin(pin.encode("utf-8"))
        if puk is not None:
            check_puk(puk.encode("ascii", "replace"))
    except ValueError as exc:
        raise UsageProblem(f"{exc}, for a card wallet") from None


def start(net: Network, name: str) -> dict[str, Any]:
    """Insert wallet ``name``'s card (if not already in) and say where it is."""
    _card_wallet(net, name)
    return {"wallet": name, "reader": net.card_reader(name), "aid": AID.hex().upper()}


def stop(net: Network, name: str) -> dict[str, Any]:
    """Take wallet ``name``'s virtual card out of its reader (end its card process)."""
    _card_wallet(net, name)
    if net.wallet(name).reader is not None:
        raise CliRefusal(f"wallet {name}'s card is a physical one: take it out of the reader")
    return {"wallet": name, "stopped": process.stop(net.root, name)}


def list_cards(net: Network) -> dict[str, Any]:
    """Every card wallet: its reader and whether its card is in."""
    running = process.running(net.root)
    rows = []
    for name, entry in sorted(net.wallets.items()):
        if entry.se != "card":
            continue
        card = running.get(name)
        rows.append(
            {
                "wallet": name,
                "reader": entry.reader or (card.reader if card else None),
                "inserted": entry.reader is not None or card is not None,
                "pid": card.pid if card else None,
            }
        )
    return {"aid": AID.hex().upper(), "cards": rows}


def unblock(net: Network, name: str, *, puk: str, new_pin: str) -> dict[str, Any]:
    """RESET RETRY COUNTER: wallet ``name``'s PUK and a new PIN unblock its card."""
    _card_wallet(net, name)
    check_card_secrets(pin=new_pin, puk=puk)
    card = net.card(name)
    try:
        card.unblock(puk, new_pin)
    except PinBlocked:
        raise PinBlocked(
            f"wallet {name}: the PUK is blocked after too many wrong tries, so is the card: "
            f"refund its balance with `offcash wallet report-lost {name}` then "
            f"`offcash wallet refund-lost {name}`"
        ) from None
    except WrongPin:
        tries = card.select().puk_tries
        raise WrongPuk(
            f"wallet {name}: wrong PUK: {tries} {'try' if tries == 1 else 'tries'} left "
            "before the card is blocked for good"
        ) from None
    return {"wallet": name, "unblocked": True}


@app.command("start")
def start_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Card wallet name.")],
    as_json: Json = False,
) -> None:
    """Insert a card wallet's virtual card into a free vpcd reader (a card process)."""
    r = start(open_network(ctx), name)
    output.emit(r, as_json, lambda r: output.say(f"{r['wallet']}: card in {r['reader']}"))


@app.command("stop")
def stop_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Card wallet name.")],
    as_json: Json = False,
) -> None:
    """Take a card wallet's virtual card out (end its card process; its memory stays)."""
    r = stop(open_network(ctx), name)
    output.emit(
        r,
        as_json,
        lambda r: output.say(f"{r['wallet']}: " + ("card out" if r["stopped"] else "was not in")),
    )


@app.command("list")
def list_cmd(ctx: typer.Context, as_json: Json = False) -> None:
    """List the card wallets, their readers and whether their cards are in."""
    r = list_cards(open_network(ctx))
    output.emit(
        r,
        as_json,
        lambda r: output.print_table(
            f"Cards (AID {r['aid']})",
            ["Wallet", "Reader", "Inserted", "Process"],
            [
                [c["wallet"], c["reader"] or "-", "yes" if c["inserted"] else "no", c["pid"] or "-"]
                for c in r["cards"]
            ],
        ),
    )


@app.command("unblock")
def unblock_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Card wallet name.")],
    puk_file: Annotated[
        Path,
        typer.Option("--puk-file", help="File whose first line is the PUK (8 digits)."),
    ],
    new_pin_file: Annotated[
        Path | None,
        typer.Option("--new-pin-file", help="File whose first line is the new PIN."),
    ] = None,
    as_json: Json = False,
) -> None:
    """Unblock a card's PIN with its PUK (shown at `wallet create`) and set a new PIN.

    Ten wrong PUKs kill the card: its balance then goes back to its owner
    through `wallet report-lost` and `wallet refund-lost`."""
    net = open_network(ctx)
    puk = read_pin(puk_file, what="PUK")
    new = read_new_pin(new_pin_file, name)
    r = unblock(net, name, puk=puk, new_pin=new)
    output.emit(r, as_json, lambda r: output.say(f"{r['wallet']}: PIN unblocked and replaced"))
