"""``offcash ledger audit``: prove the books balance and show what settlement caught.

Theory of operation: the settlement service recomputes every holding from the journal:
issued = customer accounts + reserves + offline float (+ suspense), each bank's position and
losses, double spends with their evidence (both signed payments), revoked wallets, and wallets
whose logs do not reconcile. The CLI shows wallet names instead of ids where it knows them.
The command exits 1 when the books do not balance.
"""

from __future__ import annotations

from typing import Any

import typer

from offcash.cli import output, service
from offcash.cli.common import Json, Server, open_network
from offcash.cli.config import CliRefusal, Network

app = typer.Typer(no_args_is_help=True)


def audit(net: Network, server: str | None = None) -> dict[str, Any]:
    """The ledger's audit, amounts as decimal strings, wallets named."""
    return service.connect(net, server).audit()


def render_audit(r: dict[str, Any]) -> None:
    """Print an audit result as tables."""
    c = r["currency"]
    output.print_table("Conservation", ["Issued", "Customers", "Reserves", "Float",
                                        "Suspense", "Balanced"],
                       [[f"{r['issued']} {c}", f"{r['customers']} {c}", f"{r['reserves']} {c}",
                         f"{r['float']} {c}", f"{r['suspense']} {c}",
                         "yes" if r["balanced"] else "NO"]])
    output.print_table("Bank positions", ["Bank", "Reserve", "Customer balance", "Float value",
                                          "Losses"],
                       [[b, f"{p['reserve']} {c}", f"{p['customers']} {c}", f"{p['float']} {c}",
                         f"{p['losses']} {c}"] for b, p in r["banks"].items()])
    if r["double_spends"]:
        output.print_table("Double spends (evidence: two signed payments, same counter)",
                           ["Payer", "Counter", "Payees", "Amount", "Loss booked to"],
                           [[d["payer"], d["counter"], ", ".join(d["payees"]),
                             f"{d['amount']} {c}", d["bank"]] for d in r["double_spends"]])
    revoked = ", ".join(r["revoked"]) or "none"
    unrec = ", ".join(r["unreconciled"]) or "none"
    output.say(f"Revoked wallets: {revoked}.  Unreconciled wallets: {unrec}.")


@app.command("audit")
def audit_cmd(ctx: typer.Context, server: Server = None, as_json: Json = False) -> None:
    """Conservation, bank positions, double spends with evidence, revoked and unreconciled."""
    r = audit(open_network(ctx), server)
    output.emit(r, as_json, render_audit)
    if not r["balanced"]:
        raise CliRefusal("the books do not balance")
