"""Options and helpers shared by the command modules."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from offcash.cli.config import Network, network_dir

PinFile = Annotated[
    Path | None,
    typer.Option(
        "--pin-file",
        help="File whose first line is the wallet PIN. Else OFFCASH_PIN (the same PIN for "
        "every wallet), else a hidden prompt on a terminal, else the development PIN 0000.",
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
Server = Annotated[
    str | None,
    typer.Option(
        "--server",
        envvar="OFFCASH_SERVER",
        show_envvar=True,
        help="Settlement server URL, e.g. http://127.0.0.1:8080 (`offcash serve`; "
        "default: in process, on the network's ledger).",
    ),
]


def open_network(ctx: typer.Context) -> Network:
    """The network named by ``--network`` / ``OFFCASH_NETWORK`` (kept in the context so that
    error messages can name wallets instead of showing their ids)."""
    net = Network.open(network_dir(ctx.obj))
    if isinstance(ctx.obj, dict):
        ctx.obj["net"] = net
    return net
