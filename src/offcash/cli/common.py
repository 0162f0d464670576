"""Options and helpers shared by the command modules."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from offcash.cli.config import Network, network_dir

PinFile = Annotated[
    Path | None,
    typer.Option("--pin-file", help="File whose first line is the wallet PIN (default: dev PIN)."),
]
Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
Server = Annotated[
    str | None,
    typer.Option("--server", help="Settlement service URL (default: in process, on DIR's ledger)."),
]


def open_network(ctx: typer.Context) -> Network:
    """The network named by ``--network`` / ``OFFCASH_NETWORK``."""
    return Network.open(network_dir(ctx.obj))
