"""``offcash network init|migrate``: a pilot network in a folder.

Theory of operation: the settlement service creates the ledger (SQLite in the folder unless
``--db`` says otherwise) with the central bank's root CA and one CA per bank; the CLI then
writes the network config (currency, algorithm, database URL, banks, the root certificate, the
lost-device claim window, a random operator token for ``offcash serve``) that every later
command, online or offline, reads from the folder. ``migrate`` moves the network to ML-DSA
(docs/PROTOCOL.md, "Algorithm migration"): the ledger makes the new CAs, then the config names
the new algorithm and root and keeps the old algorithm until its certificates' end; each
wallet follows, and re-keys, at its next ``wallet sync``.
"""

from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from offcash.cli import output, service
from offcash.cli.common import open_network
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
from offcash.crypto.signer import SigningKey
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
    hsm: HsmOption | None = None,
) -> Network:
    """Create a network in ``root``: the ledger with its CAs (in ``hsm``'s token if given,
    else in the ledger database), then the config file (with a new random operator token for
    ``offcash serve``)."""
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
    root_key = hsm.root_key(SignatureAlgorithm.from_name(alg)) if hsm is not None else None
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
            root_key=root_key,
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


def migrate(net: Network, algorithm: str) -> Network:
    """Move ``net`` to ``algorithm`` (an ML-DSA one): new CAs in the ledger, then the config
    (``ALGORITHM_NOT_ALLOWED`` for a downgrade or a second migration)."""
    try:
        alg = SignatureAlgorithm.from_name(algorithm)
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None
    with output.progress(f"Moving the network to {alg.short}: new root and bank CAs..."):
        ledger = service.open_ledger(net.db_url, net.config.claim_window)
        try:
            params = ledger.migrate(alg, now())
            root = ledger.authorities.central_bank.certificate_der
        finally:
            ledger.close()
    with net.update():
        c = net.config
        c.algorithm = params.algorithm.short
        c.root_certificate = base64.b64encode(root).decode()
        c.legacy_algorithm = None if params.legacy is None else params.legacy.short
        c.legacy_until = params.legacy_until
        net.save_config()
    return net


@dataclass(frozen=True)
class HsmOption:
    """``network init --hsm``: the PKCS#11 module, token label and PIN file for the CA keys."""

    module: str
    token: str
    pin_file: Path | None = None

    def root_key(self, algorithm: SignatureAlgorithm) -> SigningKey:
        """A new root key in the token (the bank keys follow it there). The URI stored in the
        ledger names the PIN file (absolute), never the PIN."""
        from offcash.crypto import hsm

        pin_file = str(self.pin_file.resolve()) if self.pin_file is not None else None
        token = hsm.open_token(str(Path(self.module).absolute()), self.token, pin_file)
        return token.generate(algorithm, CENTRAL_BANK, pin_file)


PLAINTEXT_KEYS_WARNING = (
    "Warning: the CA private keys are stored unencrypted in the ledger database; "
    "for anything but a pilot keep them in an HSM (network init --hsm MODULE --hsm-token LABEL "
    "--hsm-pin-file FILE)."
)


def describe(net: Network) -> dict[str, Any]:
    """The network's config as a result."""
    c = net.config
    return {
        "network": str(net.root),
        "currency": c.currency,
        "algorithm": c.algorithm,
        "legacy_algorithm": c.legacy_algorithm,
        "legacy_until": None if c.legacy_until is None else output.utc_text(c.legacy_until),
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
        str,
        typer.Option("--alg", help="Signature algorithm: p256, ed25519, ml-dsa-44 or ml-dsa-65."),
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
    hsm_module: Annotated[
        str | None,
        typer.Option(
            "--hsm",
            help="PKCS#11 module (e.g. /usr/lib/softhsm/libsofthsm2.so): make and keep the CA "
            "keys in its token, the ledger stores only a reference.",
        ),
    ] = None,
    hsm_token: Annotated[
        str | None, typer.Option("--hsm-token", help="Label of the PKCS#11 token (with --hsm).")
    ] = None,
    hsm_pin_file: Annotated[
        Path | None,
        typer.Option(
            "--hsm-pin-file",
            help="File holding the token's user PIN (its path is recorded, never the PIN; "
            "or set OFFCASH_HSM_PIN / OFFCASH_HSM_PIN_FILE).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Create a pilot network: central bank root CA, bank CAs, ledger and config in ROOT."""
    names = [a.short for a in SignatureAlgorithm]
    if alg not in names:
        raise typer.BadParameter(f"--alg must be one of {', '.join(names)}")
    if (hsm_token is not None or hsm_pin_file is not None) and hsm_module is None:
        raise typer.BadParameter("--hsm-token and --hsm-pin-file need --hsm MODULE")
    hsm = None
    if hsm_module is not None:
        if hsm_token is None:
            raise typer.BadParameter("--hsm needs --hsm-token LABEL")
        hsm = HsmOption(hsm_module, hsm_token, hsm_pin_file)
    r = describe(init(root, currency, banks.split(","), alg, db, claim_window, hsm))
    r["ca_keys"] = "hsm" if hsm is not None else "ledger-database"
    if hsm is None:
        output.say(PLAINTEXT_KEYS_WARNING, stderr=True)

    def render(r: dict[str, Any]) -> None:
        output.say(
            f"Network created in {r['network']}: {r['currency']}, {r['algorithm']}, "
            f"{r['central_bank']} with {', '.join(r['banks'])}"
        )
        output.say(f"Next: export OFFCASH_NETWORK={r['network']}")

    output.emit(r, as_json, render)


@app.command("migrate")
def migrate_cmd(
    ctx: typer.Context,
    alg: Annotated[
        str, typer.Option("--alg", help="The post-quantum algorithm: ml-dsa-44 or ml-dsa-65.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Move the network to ML-DSA: new root and bank CAs; wallets certified under the old
    algorithm are accepted until their certificates expire and re-key at their next sync."""
    r = describe(migrate(open_network(ctx), alg))
    output.say(
        "Warning: the new CA keys are stored unencrypted in the ledger database (no PKCS#11 "
        "mechanism holds ML-DSA keys yet).",
        stderr=True,
    )

    def render(r: dict[str, Any]) -> None:
        output.say(
            f"Network {r['network']} moved from {r['legacy_algorithm']} to {r['algorithm']}; "
            f"{r['legacy_algorithm']} certificates are accepted until "
            f"{r['legacy_until']}. Each wallet re-keys at its next `wallet sync`; "
            "a wallet that has not synced since cannot receive from one that has re-keyed."
        )

    output.emit(r, as_json, render)
