"""``offcash demo``: a pilot network in a temporary folder, told as a story.

Theory of operation: the demo calls the very functions behind the other commands
(``network.init``, ``account.open_account``, ``wallet.create/fund/sync``, ``payments.request/
pay/receive``, ``ledger.audit``) on a fresh network folder, and prints what they return; no line
of the story is scripted. Alice pays Bob offline by QR code (a PNG written and read back by
the transports), Bob pays Carol offline with that same money, and Mallory copies her secure
element's state file (a real file copy) and spends the same money twice, to Dave and to Erin.
Everyone syncs; settlement pays every payee, catches Mallory with the evidence, revokes her
wallet and books the loss to her bank; the audit proves the books still balance. The story
opens with one line for each term it uses (``TERMS``), and a refusal the story expects (Mallory's
sync) is told in words, never as a raw error.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from offcash.cli import account, ledger, network, output, payments, wallet
from offcash.cli.config import DEV_PIN, Network, WalletEntry
from offcash.cli.errors import describe
from offcash.errors import OffcashError

#: The terms the story uses, one line each, for someone who knows nothing of CBDC.
TERMS = [
    (
        "secure element",
        "the tamper-resistant chip in each wallet (here a PIN-sealed file) that holds its "
        "balance and its key, and signs each payment",
    ),
    (
        "counter",
        "the number a secure element gives each payment it signs, never twice: two payments "
        "with the same counter prove a copied secure element",
    ),
    ("offline", "paying phone to phone (here by QR code) with no bank and no network in between"),
    ("sync", "a wallet going online: its log of payments is settled and its limits reset"),
    (
        "float",
        "the money loaded into wallets: out of the bank accounts, not yet settled back",
    ),
    (
        "suspense",
        "money the ledger holds for a payment only its payer has reported so far, until the "
        "payee can be paid",
    ),
    (
        "reserves",
        "what the central bank issued to each bank, from which the banks fund accounts",
    ),
]

PEOPLE = [
    ("alice", "Bank A"),
    ("bob", "Bank A"),
    ("carol", "Bank B"),
    ("mallory", "Bank B"),
    ("dave", "Bank A"),
    ("erin", "Bank B"),
]


class Story:
    """Collects each step's result (for ``--json``) and narrates it (for people)."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.net: Network | None = None
        self.steps: list[dict[str, Any]] = []

    def chapter(self, title: str) -> None:
        """Start a chapter."""
        if not self.as_json:
            output.console.rule(f"[bold]{title}")

    def step(
        self,
        what: str,
        fn: Callable[[], dict[str, Any]],
        tell: Callable[[dict[str, Any]], str] | None = None,
        refused: str | None = None,
    ) -> dict[str, Any]:
        """Run one real operation and narrate its result; a refusal is part of the story,
        told by ``refused`` when the story expects it."""
        try:
            with output.progress(f"{what}..."):
                result = fn()
        except OffcashError as exc:
            code, reason = describe(exc, self.net)
            result = {"refused": True, "code": code, "reason": reason}
            if not self.as_json:
                output.say(f"  {refused}" if refused else f"  {what}: refused ({reason})")
        else:
            if not self.as_json and tell is not None:
                output.say(f"  {tell(result)}")
        self.steps.append({"step": what, **result})
        return result

    def say(self, text: str) -> None:
        """Narrate (people only)."""
        if not self.as_json:
            output.say(text)


def _m(r: dict[str, Any], key: str = "amount") -> str:
    return f"{r[key]} {r['currency']}"


def run_demo(root: Path, as_json: bool = False, kept: bool = True) -> dict[str, Any]:
    """Tell the whole story on a new network in ``root``; returns every step's result."""
    story = Story(as_json)
    pin = DEV_PIN
    started = time.monotonic()

    story.chapter("Terms used below")
    for term, meaning in TERMS:
        story.say(f"  [bold]{term}[/bold]: {meaning}.")
    story.chapter("1. A pilot network: a central bank, two banks, six customers")
    net = network.init(root, "EUR", ["Bank A", "Bank B"], "p256")
    story.net = net
    story.say(f"  Network in {root}: EUR, P-256 signatures, ledger {net.db_url}")
    for name, bank in PEOPLE:
        story.step(f"open account {name}", partial(account.open_account, net, name, bank, "500.00"))
    for name, bank in PEOPLE:
        story.step(f"create wallet {name}", partial(wallet.create, net, name, bank, name, pin=pin))
    for name, amount in (("alice", "100.00"), ("mallory", "60.00")):
        story.step(
            f"fund {name}",
            partial(wallet.fund, net, name, amount, pin=pin),
            lambda r: f"{r['wallet']} moves {_m(r, 'loaded')} from her account into her wallet",
        )
    _balances(net, story, "Accounts and wallets, funded")

    story.chapter("2. Alice pays Bob offline, by QR code")
    qr = root / "qr"
    qr.mkdir()
    story.step(
        "bob requests",
        lambda: payments.request(
            net, "bob", "30.00", str(qr / "bob-request.png"), pin=pin, reference="bicycle"
        ),
        lambda r: f"Bob shows a QR code asking {_m(r)} ({r['out']})",
    )
    story.step(
        "alice pays bob",
        lambda: payments.pay(
            net,
            "alice",
            str(qr / "alice-pays-bob.png"),
            pin=pin,
            request_file=str(qr / "bob-request.png"),
        ),
        lambda r: (
            f"Alice scans it, her secure element signs {_m(r)} to {r['payee']} "
            f"(QR {r['out']}); her balance: {_m(r, 'balance')}"
        ),
    )
    story.step(
        "bob receives",
        lambda: payments.receive(net, "bob", str(qr / "alice-pays-bob.png"), pin=pin),
        lambda r: (
            f"Bob scans the payment QR and verifies it offline: +{_m(r)} from "
            f"{r['payer']}, balance {_m(r, 'balance')}"
        ),
    )

    story.chapter("3. Bob pays Carol offline, with that same money")
    story.step(
        "carol requests",
        lambda: payments.request(net, "carol", "30.00", str(qr / "carol-request.png"), pin=pin),
        lambda r: f"Carol asks {_m(r)}",
    )
    story.step(
        "bob pays carol",
        lambda: payments.pay(
            net,
            "bob",
            str(qr / "bob-pays-carol.png"),
            pin=pin,
            request_file=str(qr / "carol-request.png"),
        ),
        lambda r: f"Bob spends what he received, still offline: {_m(r)} to {r['payee']}",
    )
    story.step(
        "carol receives",
        lambda: payments.receive(net, "carol", str(qr / "bob-pays-carol.png"), pin=pin),
        lambda r: f"Carol verifies it offline: +{_m(r)} from {r['payer']}",
    )

    story.chapter("4. Mallory copies her secure element and spends the same money twice")
    clone = _copy_wallet(net, "mallory", "mallory-copy")
    story.say(
        f"  Mallory copies {net.se_path('mallory').name} to {clone.name} (a real file "
        f"copy: a software SE cannot stop its owner)"
    )
    for who, payee in (("mallory", "dave"), ("mallory-copy", "erin")):
        story.step(
            f"{who} pays {payee}",
            partial(
                payments.pay,
                net,
                who,
                str(qr / f"{who}-pays-{payee}.png"),
                pin=pin,
                to=payee,
                amount="50.00",
            ),
            lambda r: f"{r['payer']} signs {_m(r)} to {r['payee']} with counter #{r['counter']}",
        )
        story.step(
            f"{payee} receives",
            partial(payments.receive, net, payee, str(qr / f"{who}-pays-{payee}.png"), pin=pin),
            lambda r: (
                f"{r['payee']} verifies it offline: valid, +{_m(r)} (no device can tell offline)"
            ),
        )

    story.chapter("5. Everyone syncs; settlement catches Mallory")
    for name in ("alice", "bob", "carol", "dave", "erin"):
        story.step(f"sync {name}", partial(wallet.sync, net, name, pin=pin), _told_sync)
    story.step(
        "sync mallory",
        partial(wallet.sync, net, "mallory", pin=pin),
        _told_sync,
        refused=(
            "mallory tries to sync: refused. Her wallet was revoked the moment dave's and "
            "erin's syncs brought in two payments with her counter #1; it cannot pay again"
        ),
    )
    audit = story.step("audit", lambda: ledger.audit(net))
    if not as_json and "refused" not in audit:
        ledger.render_audit(audit)
        for d in audit["double_spends"]:
            story.say(
                f"  Caught: {d['payer']} signed counter #{d['counter']} twice (to "
                f"{' and '.join(d['payees'])}). Evidence: {len(d['evidence'])} signed "
                f"payments. Every payee was paid; the loss of {d['amount']} "
                f"{audit['currency']} is booked to {d['bank']}; the wallet is revoked."
            )
        story.say(f"  Books balanced: {'yes' if audit['balanced'] else 'NO'}")

    story.chapter("6. Final balances")
    _balances(net, story, "Final balances")
    seconds = round(time.monotonic() - started, 2)
    where = f"The network is in {root}." if kept else "Use --keep DIR to keep the network."
    story.say(f"  Done in {seconds} s. {where}")
    return {"network": str(root), "seconds": seconds, "steps": story.steps}


def _told_sync(r: dict[str, Any]) -> str:
    found = ", ".join(f"{k}: {v}" for k, v in r.get("settlement", {}).items())
    return (
        f"{r['wallet']} synced {output.log_entries(r['uploaded_entries'])}; wallet balance "
        f"{_m(r, 'balance')}" + (f" ({found})" if found else "")
    )


def _copy_wallet(net: Network, name: str, copy: str) -> Path:
    """Copy wallet ``name``'s SE file and register the copy (same wallet id) as ``copy``."""
    target = net.se_path(copy)
    shutil.copyfile(net.se_path(name), target)
    with net.update():
        entry = net.wallet(name)
        net.wallets[copy] = WalletEntry(copy, entry.wallet_id, entry.bank, entry.owner)
    return target


def _balances(net: Network, story: Story, title: str) -> None:
    rows = []
    for name, _ in PEOPLE:
        acct = story.step(f"account {name}", partial(account.show, net, name))
        held = story.step(f"wallet {name}", partial(wallet.show, net, name, pin=DEV_PIN))
        rows.append(
            [
                name,
                acct.get("bank", "?"),
                f"{acct.get('balance', '?')} EUR",
                f"{held.get('balance', '?')} EUR",
            ]
        )
    if not story.as_json:
        output.print_table(title, ["Customer", "Bank", "Account balance", "Wallet balance"], rows)


def demo(keep: Path | None, as_json: bool) -> None:
    """Run the whole story on a new pilot network (in ``keep`` if given, kept; else a temporary
    folder): offline QR payments, a double spend caught. The options are ``offcash demo``'s
    (``cli.main``)."""
    if keep is not None:
        result = run_demo(keep, as_json)
    else:
        with tempfile.TemporaryDirectory(prefix="offcash-demo-") as tmp:
            result = run_demo(Path(tmp) / "pilot", as_json, kept=False)
    output.emit(result, as_json, lambda r: None)
