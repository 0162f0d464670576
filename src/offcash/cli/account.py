"""``offcash account open|show|list``: customer accounts in the ledger (online).

Theory of operation: an account is held at one bank in the settlement ledger; its name is the
key people type. Opening one moves the deposit from the bank's reserve to the account (a
journal entry the ledger writes); showing one reads its balance back.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from offcash.cli import output, service
from offcash.cli.common import Json, Server, open_network
from offcash.cli.config import Network, check_name, now

app = typer.Typer(no_args_is_help=True)


def open_account(
    net: Network, name: str, bank: str, deposit: str, server: str | None = None
) -> dict[str, Any]:
    """Open account ``name`` at ``bank`` with ``deposit``."""
    check_name(name, "account")
    amount = net.money(deposit, zero=True)
    service.connect(net, server).open_account(name, bank, amount.minor, now())
    return show(net, name, server)


def show(net: Network, name: str, server: str | None = None) -> dict[str, Any]:
    """Account ``name``: bank, balance and the wallets it owns."""
    entry = net.account(name)
    balance = service.connect(net, server).balance(name)
    wallets = sorted(w.name for w in net.wallets.values() if w.owner == name)
    return {
        "account": name,
        "account_id": entry.account_id,
        "bank": entry.bank,
        "balance": net.money_of(balance),
        "currency": net.config.currency,
        "wallets": wallets,
    }


def list_accounts(net: Network, server: str | None = None) -> dict[str, Any]:
    """Every account of the folder: name, ledger id, bank, balance and the wallets it owns."""
    svc = service.connect(net, server)
    rows = [
        {
            "account": name,
            "account_id": entry.account_id,
            "bank": entry.bank,
            "balance": net.money_of(svc.balance(name)),
            "wallets": sorted(w.name for w in net.wallets.values() if w.owner == name),
        }
        for name, entry in sorted(net.accounts.items())
    ]
    return {"currency": net.config.currency, "accounts": rows}


def _render(r: dict[str, Any]) -> None:
    output.print_table(
        f"Account {r['account']}",
        ["Account", "Bank", "Balance", "Wallets"],
        [
            [
                r["account"],
                r["bank"],
                f"{r['balance']} {r['currency']}",
                ", ".join(r["wallets"]) or "-",
            ]
        ],
    )


@app.command("open")
def open_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Account name, e.g. alice.")],
    bank: Annotated[str, typer.Option(help="The bank holding the account.")],
    deposit: Annotated[str, typer.Option(help="Initial deposit, e.g. 500.00.")] = "0",
    server: Server = None,
    as_json: Json = False,
) -> None:
    """Open a customer account at BANK with an initial deposit."""
    output.emit(open_account(open_network(ctx), name, bank, deposit, server), as_json, _render)


@app.command("show")
def show_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Account name.")],
    server: Server = None,
    as_json: Json = False,
) -> None:
    """Show an account's bank and balance."""
    output.emit(show(open_network(ctx), name, server), as_json, _render)


@app.command("list")
def list_cmd(ctx: typer.Context, server: Server = None, as_json: Json = False) -> None:
    """List the accounts: name, id, bank, balance and the wallets each owns (online)."""
    r = list_accounts(open_network(ctx), server)

    def render(r: dict[str, Any]) -> None:
        c = r["currency"]
        output.print_table(
            "Accounts",
            ["Account", "Account id", "Bank", "Balance", "Wallets"],
            [
                [
                    a["account"],
                    a["account_id"],
                    a["bank"],
                    f"{a['balance']} {c}",
                    ", ".join(a["wallets"]) or "-",
                ]
                for a in r["accounts"]
            ],
        )

    output.emit(r, as_json, render)
