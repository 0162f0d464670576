"""Offline commands: request, pay (answering a request, and one-way), receive; every form."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from offcash.cli.config import Network
from offcash.encoding import sealed
from offcash.transports import files

from cli_harness import run


def _net(net: Network) -> list[str]:
    return ["--network", str(net.root)]


def test_request_pay_receive_by_png(offline_net: Network, tmp_path: Path) -> None:
    n = _net(offline_net)
    req, pay = tmp_path / "req.png", tmp_path / "pay.png"
    r = run(*n, "wallet", "request", "bob", "12.50", "--out", req)
    assert r.code == 0, r.stderr
    assert "12.50 EUR" in r.stdout
    # The PNG the CLI wrote is a real QR code a real decoder reads.
    codes = zxingcpp.read_barcodes(Image.open(req))
    assert codes and codes[0].format == zxingcpp.BarcodeFormat.QRCode
    r = run(*n, "wallet", "pay", "alice", "--request", req, "--out", pay, "--json")
    assert r.code == 0, r.stderr
    body = r.json()
    assert isinstance(body, dict)
    assert body["payee"] == "bob" and body["amount"] == 1250 and body["balance"] == 8750
    assert zxingcpp.read_barcodes(Image.open(pay))
    r = run(*n, "wallet", "receive", "bob", pay, "--json")
    assert r.code == 0, r.stderr
    got = r.json()
    assert isinstance(got, dict)
    assert got["payer"] == "alice" and got["balance"] == 1250 and not got["duplicate"]
    # A re-sent payment is reported, not credited twice.
    r = run(*n, "wallet", "receive", "bob", pay)
    assert r.code == 0 and "not credited again" in r.stdout


@pytest.mark.parametrize("suffix", [".txt", ".bin"])
def test_one_way_payment_text_and_raw(offline_net: Network, tmp_path: Path, suffix: str) -> None:
    n = _net(offline_net)
    out = tmp_path / f"pay{suffix}"
    carol = offline_net.wallets["carol"].wallet_id
    r = run(*n, "wallet", "pay", "alice", "--to", carol, "--amount", "5", "--out", out)
    assert r.code == 0, r.stderr
    data = out.read_bytes()
    # sealed for carol (her certificate in the folder's registry binds her key)
    assert data.startswith(b"OC1:") if suffix == ".txt" else sealed.is_sealed(data)
    r = run(*n, "wallet", "receive", "carol", out)
    assert r.code == 0, r.stderr
    assert "5.00 EUR" in r.stdout and "alice" in r.stdout


def test_one_way_by_name_and_consecutive_offline(offline_net: Network, tmp_path: Path) -> None:
    n = _net(offline_net)
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    assert run(*n, "wallet", "pay", "alice", "--to", "bob", "--amount", "20", "--out", a).code == 0
    assert run(*n, "wallet", "receive", "bob", a).code == 0
    # Bob spends the money he received offline, still offline.
    assert run(*n, "wallet", "pay", "bob", "--to", "carol", "--amount", "20", "--out", b).code == 0
    r = run(*n, "wallet", "receive", "carol", b, "--json")
    assert r.code == 0 and r.json()["payer"] == "bob"  # type: ignore[index]


def test_terminal_qr_and_stdin(offline_net: Network, tmp_path: Path) -> None:
    n = _net(offline_net)
    r = run(*n, "wallet", "pay", "alice", "--to", "bob", "--amount", "1", "--out", "-")
    assert r.code == 0, r.stderr
    assert "OC1:" in r.stdout and "alice pays" in r.stderr
    pasted = tmp_path / "pasted.txt"
    pasted.write_text(r.stdout)  # what a user copies from the terminal reads back
    assert run(*n, "wallet", "receive", "bob", pasted).code == 0
    r = run(*n, "wallet", "request", "bob", "2", "--out", "-", "--json")
    assert r.code == 0 and str(r.json()["text"]).startswith("OC1:")  # type: ignore[index]


def test_offline_commands_need_no_ledger(offline_net: Network, tmp_path: Path) -> None:
    for f in offline_net.root.glob("ledger*"):
        f.unlink()
    assert not list(offline_net.root.glob("ledger*"))
    test_request_pay_receive_by_png(offline_net, tmp_path)


def test_refusals_exit_1_with_one_line(offline_net: Network, tmp_path: Path) -> None:
    n = _net(offline_net)
    out = tmp_path / "p.png"
    cases = [
        ["wallet", "pay", "alice", "--to", "bob", "--amount", "100.01", "--out", out],  # limit
        ["wallet", "pay", "bob", "--to", "alice", "--amount", "1", "--out", out],  # no funds
        ["wallet", "pay", "alice", "--to", "nobody", "--amount", "1", "--out", out],
        ["wallet", "request", "zed", "1", "--out", out],  # unknown wallet
        ["wallet", "receive", "bob", tmp_path / "missing.png"],
    ]
    for args in cases:
        r = run(*n, *args)
        assert r.code == 1, (args, r.stdout, r.stderr)
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert not out.exists()


def test_wrong_pin(offline_net: Network, tmp_path: Path) -> None:
    pin = tmp_path / "pin"
    pin.write_text("9999\n")
    r = run(
        *_net(offline_net),
        "wallet",
        "request",
        "bob",
        "1",
        "--out",
        tmp_path / "r.png",
        "--pin-file",
        pin,
    )
    assert r.code == 1 and "wrong-pin" in r.stderr


def test_a_pin_file_that_cannot_be_read_is_said_plainly(
    offline_net: Network, tmp_path: Path
) -> None:
    binary = tmp_path / "pin.bin"
    binary.write_bytes(b"\xff\xfe")
    for pin, said in ((tmp_path / "absent", "no such file or directory"), (binary, "not UTF-8")):
        r = run(*_net(offline_net), "wallet", "show", "alice", "--pin-file", pin)
        assert r.code == 1 and f"cannot read PIN file {pin}: {said}" in r.stderr, r.stderr
        assert "Errno" not in r.stderr, r.stderr


GARBAGE = {
    "empty.png": b"",
    "bad.png": b"\x89PNG\r\n\x1a\nnot really a png",
    "noqr.png": None,  # a valid image with no QR code
    "junk.txt": b"OC1:%%%%not base45",
    "random.bin": bytes(range(256)) * 3,
    "cbor.bin": b"\x84\x40\xa0\x40\x40",
    "text.txt": "héllo wörld\n".encode(),
}


@pytest.mark.parametrize("name", sorted(GARBAGE))
def test_garbage_input_exit_1_no_traceback(offline_net: Network, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    content = GARBAGE[name]
    if content is None:
        Image.new("RGB", (64, 64), "white").save(path)
    else:
        path.write_bytes(content)
    for args in (
        ["wallet", "receive", "bob", path],
        ["wallet", "pay", "alice", "--request", path, "--out", tmp_path / "o.png"],
    ):
        r = run(*_net(offline_net), *args)
        assert r.code == 1, (name, r.stdout, r.stderr)
        assert r.stderr.count("\n") == 1, r.stderr
        assert "Traceback" not in r.stderr and "internal-error" not in r.stderr, r.stderr


def test_a_mangled_text_message_is_said_to_be_text(offline_net: Network, tmp_path: Path) -> None:
    """Text without its OC1: prefix, or lower-cased by a chat app, is read as raw CBOR by the
    transports; the refusal says what it is rather than CBOR's 'trailing bytes'."""
    n = _net(offline_net)
    pay, req = tmp_path / "pay.txt", tmp_path / "req.txt"
    assert run(*n, "wallet", "pay", "alice", "--to", "bob", "--amount", "1", "--out", pay).code == 0
    assert run(*n, "wallet", "request", "bob", "2", "--out", req).code == 0
    for source, args in (
        (pay, ["wallet", "receive", "bob"]),
        (req, ["wallet", "pay", "alice", "--out", tmp_path / "o.txt", "--request"]),
    ):
        text = source.read_text()
        for mangled in (text.lower(), text.removeprefix("OC1:")):
            bad = tmp_path / "bad.txt"
            bad.write_text(mangled)
            r = run(*n, *args, bad)
            assert r.code == 1 and "this is text but not an offcash message" in r.stderr, r.stderr
    assert run(*n, "wallet", "show", "bob", "--json").json()["balance"] == 0  # type: ignore[index]
    assert run(*n, "wallet", "show", "alice", "--json").json()["balance"] == 9900  # type: ignore[index]


def test_payment_for_someone_else_is_refused(offline_net: Network, tmp_path: Path) -> None:
    n = _net(offline_net)
    out = tmp_path / "p.txt"
    pay = ["wallet", "pay", "alice", "--to", "bob", "--amount", "1", "--out", out]
    assert run(*n, *pay, "--no-encrypt").code == 0  # sealed, carol could not even open it
    r = run(*n, "wallet", "receive", "carol", out)
    assert r.code == 1 and "another payee" in r.stderr


def test_usage_errors_exit_2(offline_net: Network) -> None:
    n = _net(offline_net)
    assert run(*n, "wallet", "pay", "alice", "--out", "x.png").code == 2
    assert run(*n, "wallet", "pay", "alice", "--to", "bob", "--out", "x.png").code == 2
    assert run(*n, "wallet", "request", "bob").code == 2
    assert run(*n, "wallet", "frobnicate").code == 2
    assert run("--bogus").code == 2
    # Invalid values the parser cannot see (amount, name) are usage errors too.
    pay = ["wallet", "pay", "alice", "--to", "bob", "--out", "x.png", "--amount"]
    for amount in ("1.001", "abc", "-1", "0", "0.00", "99999999999999999999"):
        r = run(*n, *pay, amount)
        assert r.code == 2 and r.stderr.startswith("offcash: usage: invalid amount"), r.stderr
    # Said in the amount's own terms, not in minor units nor as a verification failure.
    assert (
        "must be more than 0" in run(*n, "wallet", "request", "bob", "0", "--out", "r.txt").stderr
    )
    r = run(*n, *pay, "100000000000000000")
    assert "is more than the largest amount, 92233720368547758.07 EUR" in r.stderr, r.stderr
    assert run(*n, "wallet", "show", "alice", "--json").json()["balance"] == 10000  # type: ignore[index]


def test_an_unwritable_destination_is_refused_before_signing(
    offline_net: Network, tmp_path: Path
) -> None:
    n = _net(offline_net)
    pay = ["wallet", "pay", "alice", "--to", "bob", "--amount", "1"]
    for out, said in (
        (tmp_path / "no-such-folder" / "p.txt", "there is no folder"),
        (tmp_path, "it is a folder"),
    ):
        r = run(*n, *pay, "--out", out)
        assert r.code == 1 and said in r.stderr and "nothing was signed" in r.stderr, r.stderr
    assert run(*n, "wallet", "show", "alice", "--json").json()["balance"] == 10000  # type: ignore[index]


def test_a_write_failing_after_signing_says_where_the_money_is(
    offline_net: Network, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(data: bytes, dest: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files, "write_message", disk_full)
    out = tmp_path / "p.txt"
    r = run(
        *_net(offline_net),
        "wallet",
        "pay",
        "alice",
        "--to",
        "bob",
        "--amount",
        "2.50",
        "--out",
        out,
    )
    assert r.code == 1 and r.stderr.count("\n") == 1, r.stderr
    assert "payment #1 of 2.50 EUR to bob was signed (balance now 97.50 EUR)" in r.stderr
    assert "No space left on device" in r.stderr and "release-torn" in r.stderr


def test_a_request_given_to_receive_is_named_for_what_it_is(
    offline_net: Network, tmp_path: Path
) -> None:
    n = _net(offline_net)
    req = tmp_path / "req.txt"
    assert run(*n, "wallet", "request", "bob", "3", "--out", req).code == 0
    r = run(*n, "wallet", "receive", "bob", req)
    assert r.code == 1
    assert "this is a payment request, not a payment" in r.stderr
    assert "wallet pay PAYER --request FILE" in r.stderr
    assert run(*n, "wallet", "show", "bob", "--json").json()["balance"] == 0  # type: ignore[index]


def test_an_unknown_payee_name_is_said_so(offline_net: Network, tmp_path: Path) -> None:
    n = _net(offline_net)
    out = tmp_path / "pay.txt"
    r = run(*n, "wallet", "pay", "alice", "--to", "nobody", "--amount", "1", "--out", out)
    assert r.code == 1
    assert "no wallet named 'nobody' in this network, nor a wallet id" in r.stderr
    assert not out.exists()
    assert run(*n, "wallet", "show", "alice", "--json").json()["balance"] == 10000  # type: ignore[index]
