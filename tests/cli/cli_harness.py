"""Harness for the CLI tests: run the app in process, and a network folder made without a ledger.

``offline_network`` builds the files the offline commands need (config, registry, enrolled and
funded sealed secure elements) directly with ``offcash.issuance``, so the offline commands are
tested with no ledger database at all.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from offcash.cli.config import Network, NetworkConfig, WalletEntry, now
from offcash.cli.main import app
from offcash.crypto import pki
from offcash.crypto.algorithms import SignatureAlgorithm
from offcash.domain.ids import WalletId
from offcash.domain.limits import DEFAULT_LIMITS
from offcash.issuance import CentralBank


@dataclass
class Run:
    """The outcome of one CLI run."""

    code: int
    stdout: str
    stderr: str

    def json(self) -> object:
        return json.loads(self.stdout)


def run(*args: str | Path, env: dict[str, str] | None = None) -> Run:
    """Run ``offcash ARGS`` in process (stdout and stderr kept apart), ``env`` added to the
    environment for the run."""
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=True, env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return Run(result.exit_code, result.stdout, result.stderr)


def offline_network(
    root: Path, balances: dict[str, int], alg: SignatureAlgorithm = SignatureAlgorithm.P256
) -> Network:
    """A network folder of algorithm ``alg`` with enrolled wallets funded with ``balances``
    (minor units), each registry entry with its certificate and KEM key, no ledger."""
    t = now() - 60
    cb = CentralBank.create("Test Central Bank", alg, t - 3600)
    bank = cb.certify_bank("Bank A", t - 3600)
    config = NetworkConfig(
        currency="EUR",
        algorithm=alg.short,
        banks=["Bank A"],
        central_bank="Test Central Bank",
        root_certificate=base64.b64encode(cb.certificate_der).decode(),
    )
    net = Network.create(root, config)
    for name, balance in balances.items():
        se = net.new_se(name, "0000")
        wid = WalletId.random()
        csr = se.csr()
        cert = bank.certify_wallet(csr, wid, DEFAULT_LIMITS, 0, t)
        se.enroll(cert, [bank.certificate_der], [], t)
        if balance:
            se.load(bank.voucher(wid, balance, "EUR", t), t)
        net.wallets[name] = WalletEntry(name, str(wid), "Bank A", name)
        net.wallets[name].certificate = base64.b64encode(cert).decode()
        key = pki.csr_encryption_key(csr)
        assert key is not None
        net.wallets[name].encryption_key = base64.b64encode(key).decode()
    net.save_registry()
    return net
