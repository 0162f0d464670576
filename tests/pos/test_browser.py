"""`offcash pos` end to end in Debian's Chromium: a sale paid by pasted text, by an uploaded
QR image and by the camera; bad inputs refused with the CLI's reasons; a terminal's till with
an animated multi-code request and its Sync button; no serious accessibility violation.

Oracles are independent of the page: QR images are decoded with zxing-cpp in the test, payers
pay with the CLI, balances are read back with the CLI, receipts are verified with the core's
``verify_receipt``, and a refusal's message must equal what ``offcash wallet receive`` prints
for the same input.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from offcash.cli.config import DEV_PIN, Network
from offcash.cli.service import open_ledger
from offcash.crypto.trust import TrustStore
from offcash.encoding import sealed
from offcash.protocol import messages as m
from offcash.transports import decode_frames, decode_text, encode_text, render_frame_images
from offcash.verification import verify_receipt

from poskit import (
    CHROMIUM,
    CHROMIUM_ARGS,
    VENDOR,
    PosServer,
    data_url_bytes,
    pos_server,
    qr_contents,
    run,
    write_y4m,
)

pytestmark = pytest.mark.usefixtures("playwright_api")


def shot(page: Any, artefacts: Path, name: str) -> None:
    page.screenshot(path=str(artefacts / f"{name}.png"), full_page=True)


def balance(net: list[str], wallet: str) -> int:
    """The wallet's balance in minor units (``--json`` writes money as integer minor units)."""
    r = run(*net, "wallet", "show", wallet, "--json")
    assert r.code == 0, r.stderr
    got = r.json()["balance"]  # type: ignore[index]
    assert type(got) is int
    return got


def open_till(page: Any, server: PosServer) -> None:
    page.goto(server.url + "/")
    expect(page.locator("#till-info")).not_to_have_text("Loading…")


def ask(page: Any, amount: str, reference: str = "") -> str:
    """Type a sale with the keyboard alone; return the request text the page shows."""
    page.get_by_test_id("amount").fill("")
    page.get_by_test_id("amount").focus()
    page.keyboard.type(amount)
    page.keyboard.press("Tab")
    page.keyboard.type(reference)
    page.keyboard.press("Enter")
    page.get_by_test_id("request").wait_for(state="visible")
    expect(page.locator("#request-text")).to_have_value(re.compile("^OC1:"))
    return str(page.locator("#request-text").input_value())


def pay(net: list[str], payer: str, request_text: str, out: Path, *, sealed: bool = True) -> None:
    req = out.with_name(out.stem + "-request.txt")
    req.write_text(request_text)
    clear = () if sealed else ("--no-encrypt",)
    r = run(*net, "wallet", "pay", payer, "--request", req, "--out", out, *clear)
    assert r.code == 0, r.stderr


def result(page: Any) -> tuple[str, str]:
    """The result's code and text, once the page shows one."""
    box = page.get_by_test_id("result")
    expect(box).to_have_attribute("data-code", re.compile(".+"), timeout=60_000)
    return str(box.get_attribute("data-code")), str(box.inner_text())


def reset_result(page: Any) -> None:
    page.evaluate("() => { document.getElementById('result').dataset.code = ''; }")


def paste(page: Any, text: str) -> tuple[str, str]:
    reset_result(page)
    page.get_by_test_id("payment-text").fill(text)
    page.get_by_test_id("receive").click()
    return result(page)


def test_sale_paid_by_pasted_text(
    page: Any, shop_phone: PosServer, pilot: list[str], artefacts: Path, tmp_path: Path
) -> None:
    before = balance(pilot, "shop-phone")
    open_till(page, shop_phone)
    shot(page, artefacts, "01-empty")
    text = ask(page, "12.50", "table 4")
    # The QR code on the page holds exactly the request the text shows.
    src = page.get_by_test_id("request-qr").get_attribute("src")
    assert decode_frames(qr_contents(data_url_bytes(src))) == decode_text(text)
    request = m.parse_request(decode_text(text))
    assert request.amount == 1250 and request.reference == "table 4"
    assert "€12.50" in page.get_by_test_id("request").inner_text()
    shot(page, artefacts, "02-request")

    pay(pilot, "alice-phone", text, tmp_path / "payment.txt")
    code, shown = paste(page, (tmp_path / "payment.txt").read_text())
    assert code == "accepted", shown
    assert "Accepted: €12.50" in shown and "alice-phone" in shown and "table 4" in shown
    assert balance(pilot, "shop-phone") == before + 1250
    # The receipt QR is a receipt the payee signed for this very payment.
    page.locator("#receipt").wait_for(state="visible")
    receipt = decode_frames(
        qr_contents(data_url_bytes(page.locator("#receipt-qr").get_attribute("src")))
    )
    sent = decode_text((tmp_path / "payment.txt").read_text())
    assert sealed.is_sealed(sent)  # the till's request carried its wallet's key: sealed for it
    net = Network.open(Path(pilot[1]))
    payment = m.parse_payment(net.open_se("shop-phone", DEV_PIN).open_sealed(sent))
    material = open_ledger(net.db_url).trust_material(None, payment.time)
    trust = TrustStore.create(material.root, material.bank_certificates, material.crls)
    verify_receipt(receipt, trust=trust, params=net.config.params, payment=payment)
    history = page.get_by_test_id("history")
    history.get_by_text("table 4").wait_for()
    assert "€12.50" in history.inner_text()
    shot(page, artefacts, "03-accepted")


def test_sale_paid_by_uploaded_png(
    page: Any, shop_phone: PosServer, pilot: list[str], artefacts: Path, tmp_path: Path
) -> None:
    open_till(page, shop_phone)
    text = ask(page, "3.20")
    pay(pilot, "bob-phone", text, tmp_path / "payment.png")
    reset_result(page)
    page.locator("#upload").set_input_files(str(tmp_path / "payment.png"))
    code, shown = result(page)
    assert code == "accepted", shown
    assert "Accepted: €3.20" in shown and "bob-phone" in shown
    expect(page.get_by_test_id("history")).to_contain_text("€3.20")
    shot(page, artefacts, "04-uploaded")


def test_sale_paid_by_camera(
    playwright_api: Any, shop_phone: PosServer, pilot: list[str], artefacts: Path, tmp_path: Path
) -> None:
    """The payer's phone shows its payment as three QR codes in turn; the till films them."""
    video = tmp_path / "payer.y4m"
    browser = playwright_api.chromium.launch(
        executable_path=CHROMIUM,
        args=[
            *CHROMIUM_ARGS,
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={video}",
        ],
    )
    try:
        context = browser.new_context(viewport={"width": 412, "height": 915}, locale="en-US")
        page = context.new_page()
        open_till(page, shop_phone)
        text = ask(page, "7.05", "camera sale")
        pay(pilot, "alice-phone", text, tmp_path / "payment.cbor")
        data = (tmp_path / "payment.cbor").read_bytes()
        frames = render_frame_images(data, scale=3, budget=len(data) // 3 + 1)
        assert len(frames) == 3
        write_y4m(frames, video)
        reset_result(page)
        page.get_by_role("button", name="Scan with camera").click()
        code, shown = result(page)
        assert code == "accepted", shown
        assert "Accepted: €7.05" in shown and "camera sale" in shown
        page.get_by_test_id("history").get_by_text("camera sale").wait_for()
        shot(page, artefacts, "05-camera")
        assert page.locator("#camera").is_hidden()  # the camera is released after the result
        context.close()
    finally:
        browser.close()


def cli_refusal(net: list[str], wallet: str, source: Path) -> str:
    """What ``offcash wallet receive`` says about ``source`` (it must refuse it)."""
    r = run(*net, "wallet", "receive", wallet, source)
    assert r.code == 1, r.stdout
    return r.stderr.strip().removeprefix("offcash: ")


def test_bad_inputs_get_the_cli_reasons(
    page: Any, shop_phone: PosServer, pilot: list[str], artefacts: Path, tmp_path: Path
) -> None:
    open_till(page, shop_phone)
    text = ask(page, "1.00")
    pay(pilot, "alice-phone", text, tmp_path / "good.txt")
    good = decode_text((tmp_path / "good.txt").read_text())  # sealed for the till's wallet
    pay(pilot, "alice-phone", ask(page, "1.10"), tmp_path / "clear.txt", sealed=False)
    clear = decode_text((tmp_path / "clear.txt").read_text())
    cases: dict[str, tuple[bytes | str, str]] = {
        "garbage": ("hello, this is not a payment", "decode-error"),
        "bad-text": ("OC1:::not base45!!", "transport-text"),
        "tampered": (  # a signed payment altered: its signature no longer verifies
            encode_text(clear[:-5] + bytes([clear[-5] ^ 1]) + clear[-4:]),
            "verification-failed",
        ),
        "tampered-sealed": (  # a sealed payment altered: it no longer opens
            encode_text(good[:-5] + bytes([good[-5] ^ 1]) + good[-4:]),
            "cannot-decrypt",
        ),
    }
    r = run(
        *pilot,
        "wallet",
        "pay",
        "alice-phone",
        "--to",
        "bob-phone",
        "--amount",
        "2",
        "--no-encrypt",  # in the clear: the till reads it and sees it is for another payee
        "--out",
        tmp_path / "bob.txt",
    )
    assert r.code == 0, r.stderr
    cases["other-payee"] = ((tmp_path / "bob.txt").read_text(), "verification-failed")
    for name, (given, expected) in cases.items():
        source = tmp_path / f"{name}.txt"
        source.write_text(given if isinstance(given, str) else given.decode())
        code, shown = paste(page, source.read_text())
        assert code == expected, (name, shown)
        assert "Refused" in shown
        assert cli_refusal(pilot, "shop-phone", source) in " ".join(shown.split()), name
        shot(page, artefacts, f"06-refused-{name}")
    assert "payment is addressed to another payee" in shown
    # The good payment is accepted once; sent again it is a replay: not credited twice.
    assert paste(page, (tmp_path / "good.txt").read_text())[0] == "accepted"
    before = balance(pilot, "shop-phone")
    code, shown = paste(page, (tmp_path / "good.txt").read_text())
    assert code == "duplicate" and "not credited again" in shown
    assert balance(pilot, "shop-phone") == before
    shot(page, artefacts, "07-replay")
    # A payment answering a request that was already paid (same nonce, another payment).
    pay(pilot, "bob-phone", text, tmp_path / "again.txt")
    code, shown = paste(page, (tmp_path / "again.txt").read_text())
    assert code == "verification-failed" and "request was already paid" in shown
    assert cli_refusal(pilot, "shop-phone", tmp_path / "again.txt") in " ".join(shown.split())


def test_bad_amount_is_refused_in_the_form(page: Any, shop_phone: PosServer) -> None:
    open_till(page, shop_phone)
    page.get_by_test_id("amount").fill("12.345")
    page.get_by_role("button", name="Request payment").click()
    page.locator("#sale-error").get_by_text("invalid-money").wait_for()
    assert page.get_by_test_id("amount").get_attribute("aria-invalid") == "true"
    assert page.get_by_test_id("request").is_hidden()


def test_terminal_till_animates_a_multi_code_request_and_syncs(
    page: Any, shop_till: PosServer, pilot: list[str], artefacts: Path, tmp_path: Path
) -> None:
    open_till(page, shop_till)
    assert "Receive-only terminal" in page.locator("#till-info").inner_text()
    text = ask(page, "4.00", "terminal sale")
    # The request needs several codes: the page shows them in turn; collect what it shows.
    assert collect_frames(page, "[data-testid=request-qr]") == decode_text(text)
    assert re.search(r"code \d of \d", page.locator("#request-frame").inner_text())
    shot(page, artefacts, "08-terminal-request")
    pay(pilot, "bob-phone", text, tmp_path / "payment.txt")
    code, shown = paste(page, (tmp_path / "payment.txt").read_text())
    assert code == "accepted" and "€4.00" in shown
    assert page.locator("#receipt").is_hidden()  # a terminal signs no receipt
    shop_before = run(*pilot, "account", "show", "shop", "--json").json()["balance"]
    page.get_by_role("button", name="Sync (online)").click()
    page.locator("#sync-status").get_by_text("redeemed").wait_for(timeout=60_000)
    shop_after = run(*pilot, "account", "show", "shop", "--json").json()["balance"]
    assert shop_after - shop_before >= 400  # type: ignore[operator]
    shot(page, artefacts, "09-terminal-synced")


def decode_ok(frames: set[bytes]) -> bool:
    try:
        decode_frames(frames)
    except Exception:
        return False
    return True


def axe_serious(page: Any) -> list[tuple[str, str, list[object]]]:
    """axe-core's serious and critical violations on the page as it is now."""
    if not page.evaluate("() => typeof axe === 'object'"):
        # Injected through the DevTools protocol: the page's CSP rightly forbids inline scripts.
        page.evaluate((VENDOR / "axe-core" / "axe.min.js").read_text() + "\n;0")
    report = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    assert report["passes"], "axe-core checked nothing"
    return [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]])
        for v in report["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_no_serious_accessibility_violation(
    page: Any, shop_phone: PosServer, pilot: list[str], tmp_path: Path
) -> None:
    """Checked in each state: empty, request shown, refused, accepted with receipt and list."""
    open_till(page, shop_phone)
    assert axe_serious(page) == []
    text = ask(page, "2.00")
    assert axe_serious(page) == []
    assert paste(page, "not a payment")[0] == "decode-error"
    assert axe_serious(page) == []
    pay(pilot, "alice-phone", text, tmp_path / "payment.txt")
    assert paste(page, (tmp_path / "payment.txt").read_text())[0] == "accepted"
    page.get_by_test_id("history").locator("table").wait_for()
    assert axe_serious(page) == []


def test_keyboard_alone(page: Any, shop_phone: PosServer, pilot: list[str], tmp_path: Path) -> None:
    """From the top of the page, Tab and Enter make a sale and receive it, no mouse."""
    open_till(page, shop_phone)

    def tab_to(test_id: str, limit: int = 12) -> None:
        for _ in range(limit):
            page.keyboard.press("Tab")
            if page.evaluate("() => document.activeElement.dataset.testid") == test_id:
                return
        raise AssertionError(f"Tab never reached {test_id}")

    tab_to("amount")
    page.keyboard.type("0.99")
    page.keyboard.press("Enter")
    expect(page.locator("#request-text")).to_have_value(re.compile("^OC1:"))
    # focus moved to the request's heading, so a screen reader reads it next
    assert page.evaluate("() => document.activeElement.id") == "request-title"
    pay(pilot, "bob-phone", page.locator("#request-text").input_value(), tmp_path / "p.txt")
    tab_to("payment-text")
    page.keyboard.insert_text((tmp_path / "p.txt").read_text())
    reset_result(page)
    tab_to("receive", limit=2)
    page.keyboard.press("Enter")
    code, shown = result(page)
    assert code == "accepted" and "€0.99" in shown


def collect_frames(page: Any, selector: str, least: int = 2) -> bytes:
    """Watch the QR codes an animated image shows until they make one message of at least
    ``least`` codes; return it."""
    seen: set[bytes] = set()
    sources: set[str] = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        src = page.locator(selector).get_attribute("src")
        if src not in sources:
            sources.add(src)
            seen |= set(qr_contents(data_url_bytes(src)))
            if len(seen) >= least and decode_ok(seen):
                return decode_frames(seen)
        page.wait_for_timeout(40)  # well under the 600 ms a code is shown
    raise AssertionError(f"{selector} never showed a whole message ({len(seen)} codes)")


def test_a_receipt_in_several_codes_is_animated_too(
    page: Any, pilot: list[str], tmp_path: Path
) -> None:
    with pos_server(pilot, "kiosk-phone", tmp_path / "kiosk.log", "--frame-budget", "60") as s:
        open_till(page, s)
        text = ask(page, "1.50")
        assert collect_frames(page, "[data-testid=request-qr]") == decode_text(text)
        pay(pilot, "alice-phone", text, tmp_path / "p.txt")
        assert paste(page, (tmp_path / "p.txt").read_text())[0] == "accepted"
        receipt = m.parse_receipt(collect_frames(page, "#receipt-qr"))
        sent = decode_text((tmp_path / "p.txt").read_text())
        plain = Network.open(Path(pilot[1])).open_se("kiosk-phone", DEV_PIN).open_sealed(sent)
        assert receipt.payment == m.parse_payment(plain).digest
        expect(page.locator("#receipt-frame")).to_contain_text(re.compile(r"code \d+ of \d+"))
        # a wallet's Sync settles its log with the ledger (in process: the network's SQLite)
        page.get_by_role("button", name="Sync (online)").click()
        expect(page.locator("#sync-status")).to_contain_text("synced: ", timeout=60_000)
        shown = run(*pilot, "wallet", "show", "kiosk-phone", "--json").json()
        assert shown["log_entries"] == 0 and shown["last_sync"] is not None
