"""``offcash ledger audit|release-torn``: prove the books balance, show what settlement caught;
settle torn payments.

Theory of operation: the settlement service recomputes every holding from the journal:
issued = customer accounts + reserves + offline float (+ suspense), each bank's position and
losses, double spends with their evidence (both signed payments), revoked wallets, and wallets
whose logs do not reconcile. The CLI shows wallet names instead of ids where it knows them.
The command exits 1 when the books do not balance. ``release-torn`` pays each payment only its
payer reported (a torn transfer, held in suspense) to the payee's owner account once it is older
than the payment age limit plus clock skew, so no payee device can still accept it offline.
"""

from __future__ import annotations

from typing import Any

import typer

from offcash.cli import output, service
from offcash.cli.common import Json, Server, open_network
from offcash.cli.config import CliRefusal, Network, now

app = typer.Typer(no_args_is_help=True)


def audit(net: Network, server: str | None = None) -> dict[str, Any]:
    """The ledger's audit, amounts as decimal strings, wallets named."""
    with output.progress("Auditing the ledger..."):
        return service.connect(net, server).audit()


def render_audit(r: dict[str, Any]) -> None:
    """Print an audit result as tables."""
    c = r["currency"]
    output.print_table(
        "Conservation",
        ["Issued", "Customers", "Reserves", "Float", "Suspense", "Balanced"],
        [
            [
                f"{r['issued']} {c}",
                f"{r['customers']} {c}",
                f"{r['reserves']} {c}",
                f"{r['float']} {c}",
                f"{r['suspense']} {c}",
                "yes" if r["balanced"] else "NO",
            ]
        ],
    )
    output.print_table(
        "Bank positions",
        ["Bank", "Reserve", "Customer balance", "Float value", "Losses"],
        [
            [
                b,
                f"{p['reserve']} {c}",
                f"{p['customers']} {c}",
                f"{p['float']} {c}",
                f"{p['losses']} {c}",
            ]
            for b, p in r["banks"].items()
        ],
    )
    if r["double_spends"]:
        output.print_table(
            "Double spends (evidence: two signed payments, same counter)",
            ["Payer", "Counter", "Payees", "Amount", "Loss booked to"],
            [
                [d["payer"], d["counter"], ", ".join(d["payees"]), f"{d['amount']} {c}", d["bank"]]
                for d in r["double_spends"]
            ],
        )
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


def release_torn(net: Network, server: str | None = None) -> dict[str, Any]:
    """Pay torn payments (reported by the payer only, now too old for any payee to accept
    offline) to their payees' owner accounts; how many and what suspense still holds."""
    svc = service.connect(net, server)
    released = svc.release_torn(now())
    return {
        "released": released,
        "currency": net.config.currency,
        "suspense": svc.audit()["suspense"],
    }


@app.command("release-torn")
def release_torn_cmd(ctx: typer.Context, server: Server = None, as_json: Json = False) -> None:
    """Pay torn payments older than the payment age limit to their payees' owners."""
    r = release_torn(open_network(ctx), server)
    output.emit(
        r,
        as_json,
        lambda r: output.say(
            f"Released {r['released']} torn payment(s) to their payees' accounts; suspense now "
            f"holds {r['suspense']} {r['currency']}"
        ),
    )
