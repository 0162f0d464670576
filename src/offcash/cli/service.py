"""The settlement service as the CLI sees it: a thin adapter over ``offcash.ledger``.

Theory of operation: online commands call ``connect(net, server)``, which opens the network's
ledger in process (``LedgerService.open(db_url)``) or, with ``--server URL``, the HTTP client
of ``offcash.api``: both implement ``offcash.wallet.Operations``, the one typed settlement
protocol, and ``Service`` knows its ledger only by that protocol. ``Service`` speaks the CLI's
terms: account *names* (the ledger knows accounts by id; the network folder's registry maps
names to ids), amounts in minor units, and plain dicts for what is shown. Offline commands
never come here, so they run with no ledger at all.
"""

from __future__ import annotations

import base64
import socket
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from offcash.cli.config import (
    DEFAULT_CLAIM_WINDOW,
    LEDGER_FILE,
    AccountEntry,
    CliRefusal,
    Network,
    redact_url,
)
from offcash.crypto.algorithms import SignatureAlgorithm
from offcash.crypto.signer import SigningKey
from offcash.domain.ids import WalletId
from offcash.errors import ServiceUnavailable
from offcash.protocol import messages as m
from offcash.se.log import Entry
from offcash.wallet.settlement import AnomalyAnswer, EnrollmentAnswer, NetworkInfo, Operations

if TYPE_CHECKING:  # the ledger (SQLAlchemy) and httpx load only for commands that use them
    from offcash.api.client import Client
    from offcash.ledger import LedgerService

#: Anomaly kinds whose settlement revokes the wallet.
REVOKING = frozenset({"double-spend", "reconcile"})
#: What the central bank issues into each bank's reserves when a pilot network is created.
INITIAL_RESERVE = 10_000_000  # 100,000.00 in a two-decimal currency


@dataclass(frozen=True)
class SyncOutcome:
    """What a sync returns for the SE to apply, and what settlement reported."""

    ack: bytes
    certificate: bytes
    bank_certificates: list[bytes]
    crls: list[bytes]
    summary: dict[str, Any]


class RevokedAtSync(CliRefusal):
    """Settlement revoked the wallet: no acknowledgement, but the CRLs that list it, for its
    secure element to install (it then refuses to pay)."""

    def __init__(self, message: str, crls: list[bytes]) -> None:
        super().__init__(message)
        self.crls = list(crls)


def init_network(
    db_url: str,
    *,
    currency: str,
    algorithm: str,
    banks: list[str],
    central_bank: str,
    now: int,
    root_key: SigningKey | None = None,
) -> bytes:
    """Create the ledger with fresh CAs (made where ``root_key`` lives, if given: an HSM) and
    fund each bank's reserves; returns the root DER."""
    ledger = open_ledger(db_url, warm=False)
    ledger.create_network(
        currency, SignatureAlgorithm.from_name(algorithm), central_bank, banks, now, root_key
    )
    for bank in banks:
        ledger.issue(bank, INITIAL_RESERVE, now)
    return ledger.authorities.central_bank.certificate_der


class Service:
    """The settlement operations the CLI needs, over a ledger facade or its HTTP client.

    ``status_of`` gives a wallet's status when the ledger can (in process); over HTTP it is
    derived (see ``_status``)."""

    def __init__(
        self,
        net: Network,
        ledger: Operations,
        status_of: Callable[[WalletId], str] | None = None,
    ) -> None:
        self.net = net
        self.ledger = ledger
        self.status_of = status_of

    def open_account(self, name: str, bank: str, deposit: int, now: int) -> AccountEntry:
        """Open account ``name`` at ``bank``, move ``deposit`` into it from the bank's reserve."""
        if bank not in self.net.config.banks:
            raise CliRefusal(f"unknown bank {bank!r} (banks: {', '.join(self.net.config.banks)})")
        with self.net.update():  # the name check and the new entry as one step
            if name in self.net.accounts:
                raise CliRefusal(f"an account named {name!r} already exists")
            account_id = str(self.ledger.open_account(bank, name))
            entry = AccountEntry(name, account_id, bank)
            self.net.accounts[name] = entry
        if deposit:
            self.ledger.distribute(account_id, deposit, now)
        return entry

    def balance(self, name: str) -> int:
        """What account ``name`` holds (minor units)."""
        return int(self.ledger.balance(self.net.account(name).account_id))

    def enroll(self, csr: bytes, owner: str, now: int) -> EnrollmentAnswer:
        """Enrol an SE for account ``owner`` (its bank certifies it)."""
        return self.ledger.enroll(csr, self.net.account(owner).account_id, now)

    def voucher(self, wallet: WalletId, amount: int, now: int) -> bytes:
        """Debit the owner's account for a single-use load voucher."""
        return bytes(self.ledger.fund(wallet, amount, now))

    def redeem_unload(self, request: bytes, now: int) -> int:
        """Credit an SE-signed unload request to the owner's account; the amount credited."""
        return int(self.ledger.unload(request, now))

    def network(self) -> NetworkInfo:
        """The network's parameters and trust anchors, as the ledger holds them."""
        return self.ledger.network()

    def sync(
        self, name: str, report: bytes, entries: list[Entry], csr: bytes, now: int
    ) -> SyncOutcome:
        """Settle wallet ``name``'s log; refuse (exit 1) if settlement revoked the wallet."""
        r = self.ledger.sync(report, entries, csr, now)
        summary: dict[str, Any] = {"settled": r.settled}
        if r.refused:
            summary["refused"] = [f"{x.reason}" for x in r.refused]
        if r.anomalies:
            summary["anomalies"] = list(r.anomalies)
        if r.ack is None or r.certificate is None:
            detail = "; ".join(r.anomalies) or "revoked"
            raise RevokedAtSync(f"wallet {name} was revoked by settlement: {detail}", r.crls)
        return SyncOutcome(r.ack, r.certificate, list(r.bank_certificates), list(r.crls), summary)

    def current_crls(self, now: int) -> list[bytes]:
        """The banks' current CRLs (nothing is recorded as delivered to any wallet)."""
        return list(self.ledger.trust_material(None, now).crls)

    def report_lost(self, wallet: WalletId, now: int) -> None:
        """Revoke a lost wallet (its refund waits for the claim window)."""
        self.ledger.report_lost(wallet, now)

    def refund_lost(self, wallet: WalletId, now: int) -> int:
        """After the claim window: refund a lost wallet's balance to its owner (once)."""
        return int(self.ledger.refund_lost(wallet, now))

    def release_torn(self, now: int) -> int:
        """Pay torn payments too old for any payee to accept to the payees' owners."""
        return int(self.ledger.release_torn(now))

    def audit(self) -> dict[str, Any]:
        """Conservation, bank positions, double spends with evidence, revoked, unreconciled."""
        net, a = self.net, self.ledger.audit()
        show = net.money_of
        result: dict[str, Any] = {
            "currency": net.config.currency,
            "balanced": bool(a.balanced),
            "issued": show(a.issued),
            "customers": show(a.customers),
            "reserves": show(a.reserves),
            "float": show(a.float),
            "suspense": show(a.suspense),
            "journal_entries": a.journal_entries,
            "unbalanced_entries": a.unbalanced_entries,
            "banks": {
                b: {
                    "reserve": show(p.reserve),
                    "customers": show(p.customers),
                    "float": show(p.float),
                    "losses": show(p.losses),
                }
                for b, p in sorted(a.banks.items())
            },
        }
        anomalies = list(self.ledger.anomalies())
        result["double_spends"] = self._double_spends(anomalies)
        result["unreconciled"] = sorted(
            {
                net.name_of(x.wallet)
                for x in anomalies
                if x.kind == "reconcile" and x.wallet is not None
            }
        )
        result["anomalies"] = [
            {
                "kind": x.kind,
                "wallet": net.name_of(x.wallet),
                "bank": x.bank,
                "amount": show(x.amount),
                "detail": x.detail,
            }
            for x in anomalies
        ]
        revoked = []
        for wid in sorted({w.wallet_id for w in net.wallets.values()}):
            status = self._status(wid, anomalies)
            if status != "active":
                revoked.append(f"{net.name_of(wid)} ({status})")
        result["revoked"] = sorted(revoked)
        return result

    def _status(self, wallet_id: str, anomalies: Sequence[AnomalyAnswer]) -> str:
        """``active``, ``revoked`` or ``refunded``. The HTTP API has no status route, so over
        HTTP it is derived: the registry's lost/refunded marks, and the anomalies that revoke
        (a double spend, a log that does not reconcile)."""
        if self.status_of is not None:  # in process
            return self.status_of(WalletId.parse(wallet_id))
        entries = [e for e in self.net.wallets.values() if e.wallet_id == wallet_id]
        if any(e.refunded for e in entries):
            return "refunded"
        if any(e.lost for e in entries) or any(
            x.kind in REVOKING and str(x.wallet) == wallet_id for x in anomalies
        ):
            return "revoked"
        return "active"

    def _double_spends(self, anomalies: Sequence[AnomalyAnswer]) -> list[dict[str, Any]]:
        net = self.net
        loss: dict[tuple[str, str], int] = defaultdict(int)
        for x in anomalies:
            if x.kind == "double-spend" and x.wallet is not None:
                loss[(str(x.wallet), x.bank or "?")] += x.amount
        out = []
        for (wid, bank), amount in sorted(loss.items()):
            for counter, messages in self.ledger.evidence(WalletId.parse(wid)):
                payments = [m.parse_payment(msg) for msg in messages]
                out.append(
                    {
                        "payer": net.name_of(wid),
                        "payer_id": wid,
                        "counter": counter,
                        "payees": [net.name_of(p.payee) for p in payments],
                        "amounts": [net.money_of(p.amount) for p in payments],
                        "amount": net.money_of(amount),
                        "bank": bank,
                        "evidence": [base64.urlsafe_b64encode(msg).decode() for msg in messages],
                    }
                )
        return out


def connect(net: Network, server: str | None = None) -> Service:
    """The settlement service of ``net``: in process on its database, or over HTTP."""
    if server is None:
        if net.config.db_url is None and not (net.root / LEDGER_FILE).exists():
            # Opening it would create an empty ledger and report on that instead.
            raise CliRefusal(
                f"the network's ledger {net.root / LEDGER_FILE} is missing (moved or deleted?): "
                "restore it from a backup, or pass --server URL"
            )
        ledger = open_ledger(net.db_url, net.config.claim_window)
        return Service(net, ledger, ledger.wallet_status)
    return Service(net, remote(server, net.operator_token or ""))


def open_ledger(
    db_url: str, claim_window: int | None = None, *, warm: bool = True
) -> LedgerService:
    """Open (and migrate) the ledger at ``db_url``; an unusable URL is a refusal."""
    from sqlalchemy import exc as sa_exc

    from offcash.ledger import LedgerService

    window = DEFAULT_CLAIM_WINDOW if claim_window is None else claim_window
    try:
        ledger = LedgerService.open(db_url, claim_window=window)
        # Warm the facade's caches now: its methods read them inside their own transaction,
        # and a first, uncached read there opens a second transaction that waits on the first
        # (a deadlock on SQLite). Reported to the settlement owner.
        if warm:
            _ = ledger.authorities, ledger.params
    except (
        sa_exc.ArgumentError,
        sa_exc.NoSuchModuleError,
        sa_exc.OperationalError,
        ServiceUnavailable,
    ) as exc:
        detail = str(exc).splitlines()[0].replace(db_url, redact_url(db_url))
        raise CliRefusal(
            f"cannot open the ledger database {redact_url(db_url)}: {detail}"
        ) from None
    return ledger


def remote(url: str, token: str) -> Client:
    """The HTTP client of the settlement server at ``url`` (its failures are typed offcash
    errors: ``ServiceUnavailable`` when it cannot be reached)."""
    import httpx  # the HTTP stack loads only for --server

    from offcash.api.client import Client

    if not url.startswith(("http://", "https://")):
        raise CliRefusal(f"--server {url!r}: give an http:// or https:// URL")
    try:
        return Client(url.rstrip("/"), token)
    except httpx.InvalidURL as exc:
        raise CliRefusal(f"--server {url!r}: {exc}") from None


def _log_config() -> dict[str, Any]:
    """uvicorn's logging configuration with the access log on stderr (uvicorn sends it to
    stdout by default)."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    return config


def serve(net: Network, db_url: str, host: str, port: int, token: str, workers: int = 1) -> None:
    """Run the HTTP API on ``db_url`` (with ``net``'s claim window) with ``workers`` processes
    until interrupted."""
    from offcash.api import server

    open_ledger(db_url, net.config.claim_window).close()  # an unusable URL is a refusal here
    try:  # a clear refusal rather than uvicorn's exit code 3 when the port is taken
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise CliRefusal(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    window = DEFAULT_CLAIM_WINDOW if net.config.claim_window is None else net.config.claim_window
    try:
        server.serve(
            db_url,
            host,
            port,
            token,
            workers=workers,
            claim_window=window,
            log_config=_log_config(),
        )
    except SystemExit as exc:
        if exc.code:
            raise CliRefusal("the server stopped (see its log above)") from None
