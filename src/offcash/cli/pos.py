"""``offcash pos NAME``: a point of sale in the browser for wallet or terminal NAME.

Theory of operation: opens the till (``offcash.pos.till.Till``: the wallet's sealed secure
element, its PIN checked now, or the receive-only terminal's state), builds the web app
(``offcash.pos.app``) and runs it with uvicorn on 127.0.0.1 unless ``--host`` names another
address of this machine (a wildcard address is refused: the Host check needs a name). The page
talks only to this process; ``--server`` is where its Sync button settles (default: in
process, on the network's ledger).
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Annotated

import typer

from offcash.cli import output
from offcash.cli.common import PinFile, Server, open_network
from offcash.cli.config import CliRefusal, read_pin


def pos(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The wallet or terminal that receives.")],
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    pin_file: PinFile = None,
    server: Server = None,
    frame_budget: Annotated[
        int,
        typer.Option(help="Bytes of message per QR frame (smaller: more frames).", hidden=True),
    ] = 0,
) -> None:
    """Serve a point-of-sale page for wallet or terminal NAME (local browser only)."""
    import uvicorn

    from offcash.pos.app import create_app
    from offcash.pos.security import allowed_hosts
    from offcash.pos.till import Till

    try:
        if ipaddress.ip_address(host).is_unspecified:
            raise CliRefusal(f"--host {host}: give one address of this machine, not a wildcard")
    except ValueError:
        pass  # a name such as localhost
    net = open_network(ctx)
    till = Till.open(net, name, pin=read_pin(pin_file), server=server, budget=frame_budget)
    try:  # a clear refusal rather than uvicorn's exit code when the port is taken
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise CliRefusal(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    app = create_app(till, allowed_hosts(host, port))
    shown = f"[{host}]" if ":" in host else host
    output.say(
        f"offcash point of sale for {till.kind} {name}: open http://{shown}:{port}/ "
        "in a browser on this machine. Ctrl-C stops it.",
        stderr=True,
    )
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    except SystemExit as exc:
        if exc.code:
            raise CliRefusal("the point of sale stopped (see its log above)") from None
