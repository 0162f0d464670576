"""Card wallets end to end in the CLI, through PC/SC: pcscd, vpcd, pyscard and card processes.

Every command runs as its own ``offcash`` process, as a user would run it: each opens a PC/SC
session with the wallet's card, presents the PIN (VERIFY) and sends APDUs."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from offcash.card import process
from offcash.card import wallets as card_wallets
from offcash.cli import service, wallet
from offcash.cli.config import Network
from offcash.errors import CardNotAuthenticated, Rejection, VerificationError
from offcash.se.card.wire import AID

from pcsc_card import vpcd_readers


def offcash(*args: str | Path, pin: str = "0000") -> subprocess.CompletedProcess[str]:
    """``offcash ARGS`` in a new process, with ``OFFCASH_PIN`` set to ``pin``."""
    return subprocess.run(
        [sys.executable, "-m", "offcash.cli", *map(str, args)],
        env={**os.environ, "OFFCASH_PIN": pin},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def ok(*args: str | Path, pin: str = "0000") -> Any:
    done = offcash(*args, "--json", pin=pin)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def net(tmp_path: Path) -> Iterator[list[str]]:
    """alice-card (Bank A) and bob-card (Bank B) are card wallets, carol-phone a software one."""
    if len(vpcd_readers()) < 2:
        pytest.skip("two vpcd reader slots are needed")
    root = tmp_path / "pilot"
    assert offcash("network", "init", root, "--banks", "Bank A,Bank B").returncode == 0
    n = ["--network", str(root)]
    try:
        for owner, bank in (("alice", "Bank A"), ("bob", "Bank B"), ("carol", "Bank A")):
            ok(*n, "account", "open", owner, "--bank", bank, "--deposit", "500")
        yield n
    finally:
        for name in ("alice-card", "bob-card"):
            process.stop(root, name)


def test_card_wallets_fund_pay_receive_sync_unload(net: list[str], tmp_path: Path) -> None:
    alice = ok(*net, "wallet", "create", "alice-card", "--bank", "Bank A", "--owner", "alice",
               "--se", "card")  # fmt: skip
    assert alice["se"]["kind"] == "card" and alice["se"]["aid"] == AID.hex().upper()
    assert alice["se"]["reader"].startswith("Virtual PCD") and len(alice["puk"]) == 8
    ok(*net, "wallet", "create", "bob-card", "--bank", "Bank B", "--owner", "bob", "--se", "card")
    carol = ok(*net, "wallet", "create", "carol-phone", "--bank", "Bank A", "--owner", "carol")
    assert carol["se"] == {"kind": "software"} and "puk" not in carol

    assert ok(*net, "wallet", "fund", "alice-card", "100")["balance"] == 10000
    request, payment = tmp_path / "request.txt", tmp_path / "payment.txt"
    ok(*net, "wallet", "request", "bob-card", "30", "--out", request)
    paid = ok(*net, "wallet", "pay", "alice-card", "--request", request, "--out", payment, "--yes")
    assert paid["balance"] == 7000 and paid["encrypted"]
    got = ok(*net, "wallet", "receive", "bob-card", payment)
    assert got["amount"] == 3000 and got["payer"] == "alice-card"
    # card to software and back
    ok(*net, "wallet", "pay", "bob-card", "--to", "carol-phone", "--amount", "5", "--out", payment)
    ok(*net, "wallet", "receive", "carol-phone", payment)
    ok(
        *net,
        "wallet",
        "pay",
        "carol-phone",
        "--to",
        "alice-card",
        "--amount",
        "2",
        "--out",
        payment,
    )
    ok(*net, "wallet", "receive", "alice-card", payment)
    for name, balance in (("alice-card", 7200), ("bob-card", 2500), ("carol-phone", 300)):
        synced = ok(*net, "wallet", "sync", name)
        assert (synced["balance"], synced["log_entries"]) == (balance, 0)
    assert ok(*net, "wallet", "unload", "bob-card", "10")["balance"] == 1500
    assert ok(*net, "account", "show", "bob")["balance"] == 50000 + 1000  # deposit, unload
    audit = ok(*net, "ledger", "audit")
    assert audit["balanced"] and audit["double_spends"] == []
    shown = ok(*net, "wallet", "show", "alice-card")
    assert shown["se"]["kind"] == "card" and shown["balance"] == 7200
    listed = ok(*net, "wallet", "list")
    assert {w["wallet"]: w["balance"] for w in listed["wallets"]} == {
        "alice-card": 7200,
        "bob-card": 1500,
        "carol-phone": 300,
    }
    cards = ok(*net, "card", "list")
    assert {c["wallet"] for c in cards["cards"] if c["inserted"]} == {"alice-card", "bob-card"}


def test_three_wrong_pins_block_a_card_wallet_and_the_puk_unblocks_it(
    net: list[str], tmp_path: Path
) -> None:
    created = ok(*net, "wallet", "create", "alice-card", "--bank", "Bank A", "--owner", "alice",
                 "--se", "card", pin="2580")  # fmt: skip
    for left, tries in ((2, "tries"), (1, "try")):
        wrong = offcash(*net, "wallet", "show", "alice-card", "--json", pin="1111")
        assert wrong.returncode == 1
        error = json.loads(wrong.stderr)["error"]
        assert error["code"] == "wrong-pin" and f"{left} {tries} left" in error["message"]
        # listing presents no PIN to a card that refused one: it uses up no try
        row = ok(*net, "wallet", "list", pin="1111")["wallets"][0]
        assert row["balance"] is None and f"{left} PIN {tries} left" in row["status"]
    wrong = offcash(*net, "wallet", "show", "alice-card", "--json", pin="1111")
    assert json.loads(wrong.stderr)["error"]["code"] == "pin-blocked"
    right = offcash(*net, "wallet", "show", "alice-card", "--json", pin="2580")
    assert json.loads(right.stderr)["error"]["code"] == "pin-blocked"  # blocked: even the right PIN
    # the card keeps its counter across a restart of its process
    ok(*net, "card", "stop", "alice-card")
    ok(*net, "card", "start", "alice-card")
    assert json.loads(offcash(*net, "wallet", "show", "alice-card", "--json",
                              pin="2580").stderr)["error"]["code"] == "pin-blocked"  # fmt: skip
    (tmp_path / "puk").write_text(created["puk"] + "\n")
    (tmp_path / "new").write_text("9753\n")
    ok(*net, "card", "unblock", "alice-card", "--puk-file", tmp_path / "puk",
       "--new-pin-file", tmp_path / "new")  # fmt: skip
    assert ok(*net, "wallet", "show", "alice-card", pin="9753")["balance"] == 0
    (tmp_path / "newer").write_text("8642\n")
    ok(*net, "wallet", "change-pin", "alice-card", "--new-pin-file", tmp_path / "newer",
       pin="9753")  # fmt: skip
    assert ok(*net, "wallet", "show", "alice-card", pin="8642")["status"] == "active"


def test_a_wallet_refuses_a_card_that_is_not_its_own(net: list[str], tmp_path: Path) -> None:
    """The reader recorded for alice-card holds bob-card's card (cards moved between physical
    readers, or another card took the vpcd slot first): before the first fix, alice-card's
    commands ran on bob's card (same PIN) and paid from bob's money; before the second, the
    card was refused only after VERIFY had shown it alice's PIN."""
    ok(*net, "wallet", "create", "alice-card", "--bank", "Bank A", "--owner", "alice",
       "--se", "card")  # fmt: skip
    ok(*net, "wallet", "create", "bob-card", "--bank", "Bank B", "--owner", "bob", "--se", "card",
       pin="1357")  # fmt: skip
    ok(*net, "wallet", "create", "carol-phone", "--bank", "Bank A", "--owner", "carol")
    ok(*net, "wallet", "fund", "bob-card", "50", pin="1357")
    root = Path(net[1])
    record = root / process.CARDS_DIR / "alice-card.json"
    alice = json.loads(record.read_text(encoding="utf-8"))
    alice["reader"] = process.running(root)["bob-card"].reader  # bob's card is in that reader
    record.write_text(json.dumps(alice), encoding="utf-8")
    payment = tmp_path / "payment.txt"
    for command in (
        ["wallet", "pay", "alice-card", "--to", "carol-phone", "--amount", "5", "--out", payment],
        ["wallet", "show", "alice-card"],
        ["wallet", "change-pin", "alice-card", "--new-pin-file", tmp_path / "new-pin"],
    ):
        (tmp_path / "new-pin").write_text("2468\n")
        done = offcash(*net, *command, "--json")
        assert done.returncode == 1, done.stderr
        error = json.loads(done.stderr)["error"]
        assert error["code"] == "card-not-authenticated"
        assert "not wallet alice-card's card" in error["message"]
        assert "no PIN or PUK was sent" in error["message"]
    assert not payment.exists()
    # bob's card saw no VERIFY with alice's PIN 0000: it would have used up a try, and
    # `wallet list` would show it locked
    row = next(
        w for w in ok(*net, "wallet", "list", pin="1357")["wallets"] if w["wallet"] == "bob-card"
    )
    assert row["balance"] == 5000, row


def test_a_card_wallet_re_keyed_at_a_migration_is_authenticated_with_its_new_key(
    net: list[str],
) -> None:
    """P-256 to ML-DSA-44: the sync that re-keys the card puts the new certificate in the
    registry; the card answers the challenge with its new key (2,420 bytes, GET RESPONSE over
    PC/SC) and the old certificate no longer opens it. A sync stopped between the card and the
    registry (the registry's old certificate, the new one pending) does not lock it out."""
    ok(*net, "wallet", "create", "alice-card", "--bank", "Bank A", "--owner", "alice",
       "--se", "card")  # fmt: skip
    ok(*net, "wallet", "fund", "alice-card", "100")
    root = Path(net[1])
    old = Network.open(root).wallet("alice-card").certificate
    ok(*net, "network", "migrate", "--alg", "ml-dsa-44")
    ok(*net, "wallet", "sync", "alice-card")
    new = Network.open(root).wallet("alice-card").certificate
    assert new != old and Network.open(root).wallet("alice-card").next_certificate is None
    assert ok(*net, "wallet", "show", "alice-card")["balance"] == 10000

    def registry(certificate: str | None, pending: str | None) -> None:
        with Network.open(root).update() as n:
            n.wallet("alice-card").certificate = certificate
            n.wallet("alice-card").next_certificate = pending

    registry(old, new)  # the sync stopped after SYNC APPLY, before the registry
    assert ok(*net, "wallet", "show", "alice-card")["balance"] == 10000
    registry(old, None)  # the old key does not answer any more
    done = offcash(*net, "wallet", "show", "alice-card", "--json")
    assert json.loads(done.stderr)["error"]["code"] == "card-not-authenticated"
    registry(None, None)  # nothing to authenticate the card with: no PIN for it either
    error = json.loads(offcash(*net, "wallet", "show", "alice-card", "--json").stderr)["error"]
    assert error["code"] == "card-not-authenticated"
    assert "holds no readable certificate" in error["message"]


def test_a_malformed_pin_or_puk_is_a_usage_error_before_any_card_is_touched(
    net: list[str], tmp_path: Path
) -> None:
    """A 2-character PIN for a new card wallet, a PUK that is not 8 digits, or a short new PIN
    at unblock: before the fix each was an internal error (a ValueError from the card layer,
    "please report this bug", exit 1)."""
    short = offcash(*net, "wallet", "create", "alice-card", "--bank", "Bank A", "--owner", "alice",
                    "--se", "card", "--json", pin="12")  # fmt: skip
    assert short.returncode == 2, short.stderr
    error = json.loads(short.stderr)["error"]
    assert error["code"] == "usage" and "4 to 16 printable ASCII" in error["message"]
    assert ok(*net, "wallet", "list")["wallets"] == [] and ok(*net, "card", "list")["cards"] == []
    assert not list((Path(net[1]) / "wallets").glob("alice-card*"))
    created = ok(*net, "wallet", "create", "alice-card", "--bank", "Bank A", "--owner", "alice",
                 "--se", "card")  # fmt: skip
    (tmp_path / "puk").write_text(created["puk"] + "\n")
    (tmp_path / "bad-puk").write_text("12ab\n")
    (tmp_path / "pin").write_text("2468\n")
    (tmp_path / "short").write_text("12\n")
    for puk, pin, what in (("bad-puk", "pin", "8 digits"), ("puk", "short", "4 to 16")):
        done = offcash(*net, "card", "unblock", "alice-card", "--puk-file", tmp_path / puk,
                       "--new-pin-file", tmp_path / pin, "--json")  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert what in json.loads(done.stderr)["error"]["message"]
    assert ok(*net, "wallet", "show", "alice-card")["status"] == "active"  # the PIN is unchanged


def test_pin_and_puk_refusals_name_the_wallet_the_secret_and_the_next_step(
    net: list[str], tmp_path: Path
) -> None:
    """Before the fix a wrong PUK said "wrong PIN: 9 tries left before the card blocks it", a
    wrong card PIN gave no way to give the PIN, "1 tries left", and a blocked PIN said "unblock
    it with the PUK" without the command."""
    ok(*net, "wallet", "create", "alice-card", "--bank", "Bank A", "--owner", "alice",
       "--se", "card")  # fmt: skip

    def refusal(*args: str | Path, pin: str = "0000") -> dict[str, str]:
        done = offcash(*net, *args, "--json", pin=pin)
        assert done.returncode == 1, done.stderr
        error: dict[str, str] = json.loads(done.stderr)["error"]
        return error

    first = refusal("wallet", "show", "alice-card", pin="9999")
    assert (
        "2 tries left" in first["message"] and "--pin-file FILE or OFFCASH_PIN" in first["message"]
    )
    assert "1 try left" in refusal("wallet", "show", "alice-card", pin="9999")["message"]
    blocked = refusal("wallet", "show", "alice-card", pin="9999")
    assert blocked["code"] == "pin-blocked"
    assert "`offcash card unblock alice-card --puk-file FILE`" in blocked["message"]
    (tmp_path / "wrong-puk").write_text("12345678\n")
    (tmp_path / "pin").write_text("2468\n")
    wrong_puk = refusal("card", "unblock", "alice-card", "--puk-file", tmp_path / "wrong-puk",
                        "--new-pin-file", tmp_path / "pin")  # fmt: skip
    assert wrong_puk["code"] == "wrong-puk"
    assert wrong_puk["message"] == (
        "wallet alice-card: wrong PUK: 9 tries left before the card is blocked for good"
    )
    missing = refusal("card", "unblock", "alice-card", "--puk-file", tmp_path / "nosuch",
                      "--new-pin-file", tmp_path / "pin")  # fmt: skip
    assert missing["message"].startswith("cannot read PUK file")
    assert "Inserted" in offcash(*net, "card", "list").stdout
    assert "yes" in offcash(*net, "card", "list").stdout.split("alice-card")[1].splitlines()[0]


def test_a_sync_answer_certifying_another_key_plants_no_certificate_for_a_fake_card(
    net: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attack review: ``wallet sync`` wrote the server's certificate to the registry as the
    card's pending one (``next_certificate``) *before* the card checked it, and left it there
    when the card refused it. Whoever answers the sync (``--server`` URL, or what sits on the
    way) put a certificate of another key there, and a card holding that key (here bob-card's
    genuine card, moved into alice-card's reader) then passed INTERNAL AUTHENTICATE as
    alice-card's and was shown alice's PIN."""
    ok(*net, "wallet", "create", "alice-card", "--bank", "Bank A", "--owner", "alice",
       "--se", "card")  # fmt: skip
    ok(*net, "wallet", "create", "bob-card", "--bank", "Bank B", "--owner", "bob", "--se", "card",
       pin="1357")  # fmt: skip
    root = Path(net[1])
    bob = base64.b64decode(Network.open(root).wallet("bob-card").certificate or "")
    honest = service.Service.sync

    def answer_with_bobs_certificate(*args: Any, **kwargs: Any) -> service.SyncOutcome:
        return dataclasses.replace(honest(*args, **kwargs), certificate=bob)

    monkeypatch.setattr(service.Service, "sync", answer_with_bobs_certificate)
    try:
        with pytest.raises(VerificationError) as refused:
            wallet.sync(Network.open(root), "alice-card", pin="0000")
    finally:
        card_wallets.close_all()
    assert refused.value.rejection is Rejection.BAD_CERTIFICATE
    entry = Network.open(root).wallet("alice-card")
    assert entry.next_certificate is None and base64.b64decode(entry.certificate or "") != bob
    record = root / process.CARDS_DIR / "alice-card.json"
    alice = json.loads(record.read_text(encoding="utf-8"))
    alice["reader"] = process.running(root)["bob-card"].reader  # bob's card in alice's reader
    record.write_text(json.dumps(alice), encoding="utf-8")
    done = offcash(*net, "wallet", "show", "alice-card", "--json")
    assert json.loads(done.stderr)["error"]["code"] == "card-not-authenticated", done.stderr
    # bob's card saw no VERIFY with alice's PIN (it would have used up one of its tries)
    row = next(
        w for w in ok(*net, "wallet", "list", pin="1357")["wallets"] if w["wallet"] == "bob-card"
    )
    assert row["status"] == "active", row


def test_a_card_put_back_in_a_long_running_command_is_authenticated_again(
    net: list[str],
) -> None:
    """Attack review: a command that outlives a card pull (``offcash pos``, whose till keeps
    the card's session) kept the dead PC/SC session for ever, so every sale failed with "Card
    was removed" until the till restarted, whatever card went back in. Now the session is
    opened again: the card in the reader authenticates before it gets the PIN (another card
    is refused, with its PIN tries untouched), and the wallet's own card works again."""
    ok(*net, "wallet", "create", "alice-card", "--bank", "Bank A", "--owner", "alice",
       "--se", "card")  # fmt: skip
    ok(*net, "wallet", "create", "bob-card", "--bank", "Bank B", "--owner", "bob", "--se", "card",
       pin="1357")  # fmt: skip
    root = Path(net[1])
    for name in ("alice-card", "bob-card"):
        process.stop(root, name)
    n = Network.open(root)

    def insert(name: str) -> str:
        return process.start(root, name, n.card_path(name)).reader  # the first free slot

    with n.update():  # alice's card sits in this reader, as a physical card would
        n.wallet("alice-card").reader = insert("alice-card")
    try:
        assert n.open_se("alice-card", "0000").status(0).balance == 0
        process.stop(root, "alice-card")  # pulled out while the command runs
        assert insert("bob-card") == n.wallet("alice-card").reader  # another card goes in
        with pytest.raises(CardNotAuthenticated):
            n.open_se("alice-card", "0000")
        bobs = card_wallets.card(n.card_reader("bob-card"), n.card_certificates("bob-card"))
        assert bobs.pin_tries() == 3  # it was shown no PIN
        card_wallets.close_all()
        process.stop(root, "bob-card")
        insert("alice-card")  # alice's own card goes back in
        assert n.open_se("alice-card", "0000").status(0).balance == 0
    finally:
        card_wallets.close_all()


def test_a_damaged_registry_certificate_is_named_and_does_not_hide_the_pending_one(
    offline_net: Network,
) -> None:
    """Attack review: a registry certificate that was base64 but no certificate failed every
    command on the card with a bare "certificate: no wallet certificate: error parsing asn1"
    (no wallet named, nor that no PIN was sent), and one damaged entry of the two hid the other,
    readable one."""
    with offline_net.update() as n:
        n.wallet("alice").se = "card"
        good = n.wallet("alice").certificate
        n.wallet("alice").certificate = base64.b64encode(b"junk").decode()
    with pytest.raises(CardNotAuthenticated, match="wallet alice: the registry holds no readable"):
        offline_net.card_certificates("alice")
    with offline_net.update() as n:
        n.wallet("alice").next_certificate = good
    assert offline_net.card_certificates("alice") == [base64.b64decode(good or "")]
