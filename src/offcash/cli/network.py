"""``offcash network init``: a pilot network in a folder.

Theory of operation: the settlement service creates the ledger (SQLite in the folder unless
``--db`` says otherwise) with the central bank's root CA and one CA per bank; the CLI then
writes the network config (currency, algorithm, database URL, banks, the root certificate, the
lost-device claim window, a random operator token for ``offcash serve``) that every later
command, online or offline, reads from the folder.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path
from typing import Annotated, Any

import typer

from offcash.cli import output, service
from offcash.cli.config import (
    CONFIG_FILE,
    LEDGER_FILE,
    CliRefusal,
    Network,
    NetworkConfig,
    UsageProblem,
    check_db_url,
    now,
    redact_url,
)
from offcash.crypto.algorithms import SignatureAlgorithm
from offcash.domain.money import Currency
from offcash.errors import OffcashError

app = typer.Typer(no_args_is_help=True)

CENTRAL_BANK = "Central Bank"


def init(
    root: Path,
    currency: str,
    banks: list[str],
    algorithm: str = "p256",
    db_url: str | None = None,
    claim_window: int | None = None,
) -> Network:
    """Create a network in ``root``: the ledger with its CAs, then the config file (with a new
    random operator token for ``offcash serve``)."""
    if claim_window is not None and claim_window < 0:
        raise UsageProblem("--claim-window must be 0 or more seconds")
    try:
        code = Currency.of(currency).code
        alg = SignatureAlgorithm.from_name(algorithm).short
    except (OffcashError, ValueError) as exc:
        raise UsageProblem(str(exc)) from None
    names = [b.strip() for b in banks if b.strip()]
    if not names or len(set(names)) != len(names):
        raise UsageProblem("--banks needs one or more distinct bank names, comma separated")
    if db_url is not None:
        check_db_url(db_url)
    if (root / CONFIG_FILE).exists():
        raise CliRefusal(f"{root} already holds an offcash network")
    if not root.exists():
        root.mkdir(parents=True, mode=0o700)
    draft = Network(root, NetworkConfig(code, alg, names, CENTRAL_BANK, "", db_url))
    if db_url is None:
        # The SQLite ledger holds the CAs' private keys: owner-only from its first byte
        # (SQLite gives its journal and WAL files the database file's permissions).
        os.close(os.open(root / LEDGER_FILE, os.O_CREAT | os.O_WRONLY, 0o600))
        os.chmod(root / LEDGER_FILE, 0o600)
    with output.progress("Creating the ledger, the central bank's and the banks' CAs..."):
        root_der = service.init_network(
            draft.db_url,
            currency=code,
            algorithm=alg,
            banks=names,
            central_bank=CENTRAL_BANK,
            now=now(),
        )
    config = NetworkConfig(
        code,
        alg,
        names,
        CENTRAL_BANK,
        base64.b64encode(root_der).decode(),
        db_url,
        claim_window=claim_window,
        operator_token=secrets.token_urlsafe(24),
    )
    return Network.create(root, config)


def describe(net: Network) -> dict[str, Any]:
    """The network's config as a result."""
    c = net.config
    return {
        "network": str(net.root),
        "currency": c.currency,
        "algorithm": c.algorithm,
        "central_bank": c.central_bank,
        "banks": c.banks,
        "db_url": redact_url(net.db_url),
        "claim_window": net.claim_window,
    }


@app.command("init")
def init_cmd(
    root: Annotated[Path, typer.Argument(help="Folder for the new network.")],
    currency: Annotated[str, typer.Option(help="ISO 4217 currency code.")] = "EUR",
    banks: Annotated[str, typer.Option(help="Comma-separated bank names.")] = "Bank A,Bank B",
    alg: Annotated[
        str, typer.Option("--alg", help="Signature algorithm: p256 or ed25519.")
    ] = "p256",
    db: Annotated[str | None, typer.Option("--db", help="Ledger database URL.")] = None,
    claim_window: Annotated[
        int | None,
        typer.Option(
            "--claim-window",
            min=0,
            help="Seconds after a loss report before the refund (default 30 days).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Create a pilot network: central bank root CA, bank CAs, ledger and config in ROOT."""
    if alg not in ("p256", "ed25519"):
        raise typer.BadParameter("--alg must be p256 or ed25519")
    r = describe(init(root, currency, banks.split(","), alg, db, claim_window))

    def render(r: dict[str, Any]) -> None:
        output.say(
            f"Network created in {r['network']}: {r['currency']}, {r['algorithm']}, "
            f"{r['central_bank']} with {', '.join(r['banks'])}"
        )
        output.say(f"Next: export OFFCASH_NETWORK={r['network']}")

    output.emit(r, as_json, render)
