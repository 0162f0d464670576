"""The ``offcash`` command: the typer app and the guard that keeps tracebacks from users.

Theory of operation: the root app holds the global options (``--network DIR`` /
``OFFCASH_NETWORK``, ``--version``; ``-h`` is ``--help`` everywhere) and one sub-app per command
group, each in its own module: ``network``, ``account``, ``wallet``, ``card`` (online commands in
``wallet``, offline ones in ``payments``), ``terminal``, ``ledger``, ``pos``, ``simulate``,
``serve`` and ``demo`` (the last two import their heavy parts only when run, so offline
commands start fast). ``GuardedGroup`` is the single place where failures become exit codes: an
``OffcashError`` (a refusal: limit, invalid payment, revoked, wrong PIN...) is one line on
stderr (``offcash.cli.errors.describe``: amounts in units, wallets by name, the next step) and
exit 1, or exit 2 when it is a usage error (``exit_code`` 2); an ``OSError`` likewise exit 1;
every click usage error exits 2; anything else is a bug, reported as one "internal-error" line,
exit 1. With ``--json`` anywhere on the command line, the error is a JSON object on stderr
instead, with the same exit code. No Python traceback reaches a user.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from offcash import __version__
from offcash.cli import (
    account,
    card,
    ledger,
    network,
    output,
    payments,
    pos,
    simulate,
    terminal,
    wallet,
)
from offcash.cli.config import Network
from offcash.cli.errors import describe
from offcash.errors import OffcashError

# click's exception classes, found through typer (which bundles its own copy of click).
_UsageError: type[Exception] = typer.BadParameter.__mro__[1]
_ClickException: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
)


def _wants_json(args: Sequence[str]) -> bool:
    """Whether ``--json`` is among the options (before a ``--`` end of options)."""
    for arg in args:
        if arg == "--":
            return False
        if arg == "--json":
            return True
    return False


class GuardedGroup(TyperGroup):
    """A click group that turns every exception into a one-line message and an exit code."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the command line; usage errors exit 2, as JSON with ``--json`` (module doc)."""
        argv = list(sys.argv[1:] if args is None else args)
        output.json_errors = _wants_json(argv)
        try:
            rv = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except _UsageError as exc:
            if output.json_errors:
                output.error("usage", exc.format_message())  # type: ignore[attr-defined]
            else:
                exc.show()  # type: ignore[attr-defined]
            sys.exit(2)
        except _ClickException as exc:
            output.error("refused", exc.format_message())  # type: ignore[attr-defined]
            sys.exit(int(exc.exit_code))  # type: ignore[attr-defined]
        except typer.Abort:
            output.error("aborted", "aborted")
            sys.exit(1)
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx: Any) -> Any:
        """Run the command; map errors to exit codes (see the module docstring)."""
        code = 1
        try:
            return super().invoke(ctx)
        except (typer.TyperException, typer.Exit, typer.Abort, _ClickException):
            raise
        except OffcashError as exc:
            net = ctx.obj.get("net") if isinstance(ctx.obj, dict) else None
            output.error(*describe(exc, net if isinstance(net, Network) else None))
            code = int(getattr(exc, "exit_code", 1))
        except OSError as exc:
            name = f"{exc.filename}: " if exc.filename else ""
            output.error("io-error", f"{name}{exc.strerror or exc}")
        except KeyboardInterrupt:
            output.error("interrupted", "interrupted")
            raise typer.Exit(130) from None
        except Exception as exc:
            output.error("internal-error", f"{type(exc).__name__}: {exc} -- please report this bug")
        raise typer.Exit(code)


app = typer.Typer(
    name="offcash",
    cls=GuardedGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Offline CBDC payments: a pilot network, wallets, QR payments, settlement.",
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"offcash {__version__}")
        raise typer.Exit()


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
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            callback=_print_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """offcash: open, auditable offline payments for central bank digital currency."""
    ctx.obj = {"network": network_dir}


@app.command("serve")
def serve_cmd(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option(
            "--db", help="Ledger database URL (default: the network's, SQLite in its folder)."
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8080,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="OFFCASH_TOKEN",
            show_envvar=True,
            help="Operator bearer token (default: the one `network init` stored).",
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(help="Server processes sharing the ledger database.", min=1, max=64),
    ] = 1,
) -> None:
    """Serve the settlement HTTP API (SQLite in the network folder by default; access log on
    stderr)."""
    from offcash.cli import serve

    serve.serve(ctx, db, host, port, token, workers)


@app.command("demo")
def demo_cmd(
    keep: Annotated[
        Path | None,
        typer.Option(
            "--keep", help="Build the network in this folder and keep it (default: a temp folder)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print every step as JSON.")] = False,
) -> None:
    """Run the whole story on a new pilot network: offline QR payments, a double spend caught."""
    from offcash.cli import demo

    demo.demo(keep, as_json)


app.add_typer(
    network.app, name="network", help="Create a pilot network; move it to ML-DSA signatures."
)
app.add_typer(account.app, name="account", help="Bank accounts in the ledger.")
wallet.app.registered_commands.extend(payments.app.registered_commands)
app.add_typer(wallet.app, name="wallet", help="Wallets: create, fund, pay offline, sync.")
app.add_typer(
    card.app, name="card", help="The cards of card wallets (PC/SC; virtual ones in vpcd)."
)
app.add_typer(terminal.app, name="terminal", help="Receive-only terminals (no secure element).")
app.add_typer(ledger.app, name="ledger", help="The settlement ledger.")
app.command("pos")(pos.pos)
app.command("simulate")(simulate.simulate)
