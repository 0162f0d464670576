"""``offcash serve``: the settlement service's HTTP API (uvicorn), on the network's ledger.

Theory of operation: the API app comes from ``offcash.api``; this command only picks the
database (``--db`` or the network's, SQLite in its folder by default) and the address, then
hands over to uvicorn until interrupted.
"""

from __future__ import annotations

from typing import Annotated

import typer

from offcash.cli import service
from offcash.cli.common import open_network


def serve(
    ctx: typer.Context,
    db: Annotated[str | None, typer.Option("--db", help="Ledger database URL.")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
) -> None:
    """Serve the settlement HTTP API (SQLite in the network folder by default)."""
    net = open_network(ctx)
    service.serve(db or net.db_url, host, port)
