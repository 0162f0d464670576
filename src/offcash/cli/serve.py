"""``offcash serve``: the settlement service's HTTP API (uvicorn), on the network's ledger.

Theory of operation: the API app comes from ``offcash.api.app``; this command only picks the
database (``--db`` or the network's: SQLite in its folder unless ``network init --db`` chose
PostgreSQL), the lost-device claim window (from the network config), the operator token
(``--token`` / ``OFFCASH_TOKEN``, else the one ``network init`` stored in the config) and the
address and the number of server processes (``--workers``, sharing the database), then
hands over to uvicorn until interrupted. Everything the server prints, its
access log included, goes to stderr (stdout stays free for a supervisor's own use); a database
URL is shown with its password masked. Clients reach it with ``--server URL``
on the online commands; the server's clock is authoritative (``OFFCASH_NOW`` does not reach it).
"""

from __future__ import annotations

import typer

from offcash.cli import output, service
from offcash.cli.common import open_network
from offcash.cli.config import CliRefusal, check_db_url, redact_url


def serve(
    ctx: typer.Context,
    db: str | None,
    host: str,
    port: int,
    token: str | None,
    workers: int = 1,
) -> None:
    """Serve the settlement HTTP API on ``db`` (default: the network's, SQLite in its folder),
    with ``token`` (default: the one ``network init`` stored), in ``workers`` processes; the
    options are ``offcash serve``'s (``cli.main``)."""
    net = open_network(ctx)
    secret = token or net.config.operator_token
    if not secret:
        raise CliRefusal("no operator token: pass --token or set OFFCASH_TOKEN")
    db_url = check_db_url(db) if db else net.db_url
    output.say(
        f"offcash settlement API on http://{host}:{port} (ledger {redact_url(db_url)}, "
        f"{workers} worker{'s' if workers > 1 else ''}); "
        f"OpenAPI at /openapi.json. Ctrl-C stops it.",
        stderr=True,
    )
    service.serve(net, db_url, host, port, secret, workers)
