"""The ``offcash`` command: the typer app and the guard that keeps tracebacks from users.

Theory of operation: the root app holds the global ``--network DIR`` option (also
``OFFCASH_NETWORK``) and one sub-app per command group, each in its own module: ``network``,
``account``, ``wallet`` (online commands in ``wallet``, offline ones in ``payments``),
``ledger``, ``serve`` and ``demo``. Its click group's ``invoke`` is the single place where
failures become exit codes: an ``OffcashError`` (a refusal: limit, invalid payment, revoked,
wrong PIN...) is one line on stderr (wallet ids replaced by the names the network knows) and
exit 1; an ``OSError`` likewise; click usage errors
keep click's exit 2; anything else is a bug, reported as one "internal error" line, exit 1.
No Python traceback reaches a user, whatever the input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from offcash.cli import (
    account,
    demo,
    ledger,
    network,
    payments,
    pos,
    serve,
    simulate,
    terminal,
    wallet,
)
from offcash.cli.config import Network
from offcash.cli.output import error_line
from offcash.errors import OffcashError


class GuardedGroup(TyperGroup):
    """A click group that turns every exception into a one-line message and an exit code."""

    def invoke(self, ctx: Any) -> Any:
        """Run the command; map errors to exit codes (see the module docstring)."""
        try:
            return super().invoke(ctx)
        except (typer.TyperException, typer.Exit, typer.Abort):
            raise
        except OffcashError as exc:
            net = ctx.obj.get("net") if isinstance(ctx.obj, dict) else None
            text = f"{exc.code}: {exc}"
            error_line(net.named(text) if isinstance(net, Network) else text)
        except OSError as exc:
            name = f" {exc.filename}" if exc.filename else ""
            error_line(f"io-error:{name} {exc.strerror or exc}")
        except KeyboardInterrupt:
            error_line("interrupted")
            raise typer.Exit(130) from None
        except Exception as exc:
            error_line(f"internal error ({type(exc).__name__}): {exc} -- please report this bug")
        raise typer.Exit(1)


app = typer.Typer(
    name="offcash",
    cls=GuardedGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    help="Offline CBDC payments: a pilot network, wallets, QR payments, settlement.",
)


@app.callback()
def root(
    ctx: typer.Context,
    network_dir: Annotated[
        Path | None,
        typer.Option(
            "--network",
            "-n",
            envvar="OFFCASH_NETWORK",
            help="The network folder (made by `offcash network init`).",
        ),
    ] = None,
) -> None:
    """offcash: open, auditable offline payments for central bank digital currency."""
    ctx.obj = {"network": network_dir}


app.add_typer(network.app, name="network", help="Create a pilot network.")
app.add_typer(account.app, name="account", help="Bank accounts in the ledger.")
wallet.app.registered_commands.extend(payments.app.registered_commands)
app.add_typer(wallet.app, name="wallet", help="Wallets: create, fund, pay offline, sync.")
app.add_typer(terminal.app, name="terminal", help="Receive-only terminals (no secure element).")
app.add_typer(ledger.app, name="ledger", help="The settlement ledger.")
app.command("serve")(serve.serve)
app.command("pos")(pos.pos)
app.command("demo")(demo.demo)
app.command("simulate")(simulate.simulate)
