"""Who may talk to the till: Host, Origin and CSRF checks, and the shape of every refusal.

The app runs in process (Starlette's TestClient, a real ASGI stack) on the ``kiosk-phone``
wallet; one test drives a real Chromium page of another origin against a real ``offcash pos``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from offcash.cli.config import Network
from offcash.pos.app import create_app
from offcash.pos.security import allowed_hosts
from offcash.pos.till import MAX_UPLOAD, Till

from poskit import PosServer, run

PORT = 8000
ORIGIN = f"http://127.0.0.1:{PORT}"


@pytest.fixture(scope="module")
def kiosk(pilot: list[str]) -> Iterator[tuple[TestClient, str]]:
    """A client of the kiosk-phone till, and the CSRF token its page carries."""
    till = Till.open(Network.open(Path(pilot[1])), "kiosk-phone", pin="0000")
    app = create_app(till, allowed_hosts("127.0.0.1", PORT))
    with TestClient(app, base_url=ORIGIN) as client:
        page = client.get("/")
        found = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
        assert found
        yield client, found.group(1)


def good(token: str) -> dict[str, str]:
    return {"Origin": ORIGIN, "X-CSRF-Token": token, "Sec-Fetch-Site": "same-origin"}


def test_the_page_is_locked_down(kiosk: tuple[TestClient, str]) -> None:
    client, token = kiosk
    r = client.get("/")
    assert r.status_code == 200 and token in r.text
    csp = r.headers["content-security-policy"]
    assert "script-src 'self' 'wasm-unsafe-eval'" in csp and "frame-ancestors 'none'" in csp
    assert r.headers["x-frame-options"] == "DENY" and r.headers["cache-control"] == "no-store"
    assert "access-control-allow-origin" not in r.headers
    wasm = client.get("/static/vendor/zxing-wasm/zxing_reader.wasm")
    assert wasm.status_code == 200 and wasm.headers["content-type"] == "application/wasm"
    assert wasm.content.startswith(b"\0asm")


@pytest.mark.parametrize("host", ["evil.example:8000", "127.0.0.1:8001", "localhost.evil:8000"])
def test_a_foreign_host_is_refused(kiosk: tuple[TestClient, str], host: str) -> None:
    """DNS rebinding: a name that resolves to 127.0.0.1 is still not this till's name."""
    client, token = kiosk
    for r in (
        client.get("/", headers={"Host": host}),
        client.post("/api/request", json={"amount": "1"}, headers={**good(token), "Host": host}),
    ):
        assert r.status_code == 421 and r.json()["code"] == "pos-bad-host"


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"X-CSRF-Token": "{token}"}, "pos-bad-origin"),  # no Origin
        ({"Origin": "http://evil.example", "X-CSRF-Token": "{token}"}, "pos-bad-origin"),
        ({"Origin": "https://127.0.0.1:8000", "X-CSRF-Token": "{token}"}, "pos-bad-origin"),
        (
            {"Origin": ORIGIN, "X-CSRF-Token": "{token}", "Sec-Fetch-Site": "cross-site"},
            "pos-bad-origin",
        ),
        ({"Origin": ORIGIN}, "pos-csrf"),  # no token
        ({"Origin": ORIGIN, "X-CSRF-Token": "not-the-token"}, "pos-csrf"),
    ],
)
def test_state_changing_calls_need_the_origin_and_the_token(
    kiosk: tuple[TestClient, str], headers: dict[str, str], code: str
) -> None:
    client, token = kiosk
    sent = {k: v.replace("{token}", token) for k, v in headers.items()}
    for path, kw in (
        ("/api/request", {"json": {"amount": "1.00"}}),
        ("/api/receive", {"content": b"OC1:garbage"}),
        ("/api/scan", {"json": {"codes": []}}),
        ("/api/sync", {}),
    ):
        r = client.post(path, headers=sent, **kw)
        assert r.status_code == 403, (path, r.text)
        assert r.json()["code"] == code
        assert "access-control-allow-origin" not in r.headers


def test_reads_refuse_a_foreign_origin(kiosk: tuple[TestClient, str]) -> None:
    client, _ = kiosk
    r = client.get("/api/history", headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and r.json()["code"] == "pos-bad-origin"
    assert client.get("/api/history").status_code == 200


def test_refusals_are_typed_never_a_trace(kiosk: tuple[TestClient, str]) -> None:
    client, token = kiosk
    h = good(token)
    cases = [
        (client.post("/api/request", json={"amount": "ten"}, headers=h), 422, "invalid-money"),
        (client.post("/api/request", json={"amount": "0"}, headers=h), 422, "invalid-money"),
        (client.post("/api/request", json={}, headers=h), 400, "decode-error"),
        (client.post("/api/request", content=b"{", headers=h), 400, "decode-error"),
        (client.post("/api/receive", content=b"", headers=h), 422, "transport-empty-source"),
        (client.post("/api/receive", content=b"\xff\x00junk", headers=h), 422, "decode-error"),
        (client.post("/api/receive", content=b"OC1:%%%", headers=h), 422, "transport-text"),
        (
            client.post("/api/receive", content=b"\x89PNG\r\n\x1a\nbroken", headers=h),
            422,
            "transport-image",
        ),
        (
            client.post("/api/receive", content=b"x" * (MAX_UPLOAD + 1), headers=h),
            422,
            "decode-error",
        ),
        (client.post("/api/scan", json={"codes": ["@@@"]}, headers=h), 422, "decode-error"),
        (client.get("/api/nothing-here"), 404, "http-error"),
    ]
    for r, status, code in cases:
        body = r.json()
        assert (r.status_code, body["code"]) == (status, code), body
        assert body["accepted"] is False and body["message"]
        assert "Traceback" not in r.text


def test_a_scan_reports_progress_then_the_result(kiosk: tuple[TestClient, str]) -> None:
    client, token = kiosk
    r = client.post("/api/scan", json={"codes": []}, headers=good(token))
    assert r.json() == {"scanning": True, "seen": 0, "total": 0}


def test_another_origin_in_chromium_cannot_make_the_till_receive(
    page: Any, shop_phone: PosServer, pilot: list[str], tmp_path: Path
) -> None:
    """A web page the cashier visits posts a valid payment to the till (a 'simple' no-cors
    request: no preflight). The till must not credit it; the real page then still can."""
    r = run(
        *pilot,
        "wallet",
        "pay",
        "alice-phone",
        "--to",
        "shop-phone",
        "--amount",
        "0.42",
        "--out",
        tmp_path / "p.txt",
    )
    assert r.code == 0, r.stderr
    text = (tmp_path / "p.txt").read_text()
    before = run(*pilot, "wallet", "show", "shop-phone", "--json").json()["balance"]
    failures: list[str] = []
    page.on("requestfailed", lambda request: failures.append(str(request.failure)))
    with evil_site() as evil:
        page.goto(evil)
        statuses = post_from_page(page, shop_phone.url, text)
    # The no-cors post reached the till and was answered (the browser then withheld the
    # answer: Cross-Origin-Resource-Policy); the one with a header was stopped by the browser
    # at its preflight (the till sends no CORS header).
    assert statuses == ["blocked:TypeError", "blocked:TypeError"], statuses
    assert failures[0] == "net::ERR_BLOCKED_BY_RESPONSE.NotSameOrigin", failures
    assert run(*pilot, "wallet", "show", "shop-phone", "--json").json()["balance"] == before
    page.goto(shop_phone.url + "/")
    page.get_by_test_id("payment-text").fill(text)
    page.get_by_test_id("receive").click()
    page.get_by_test_id("result").get_by_text("Accepted").wait_for()


@contextmanager
def evil_site() -> Iterator[str]:
    """Another web site on this machine (another port: another origin)."""

    class Evil(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<!doctype html><title>evil</title><p>win a prize"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Evil)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def post_from_page(page: Any, till: str, text: str) -> list[str]:
    """Post ``text`` to the till's receive route from the page, as a simple no-cors request
    and as a request with a guessed CSRF header; how each ended."""
    return list(
        page.evaluate(
            """async ([url, text]) => {
                const out = [];
                for (const headers of [{}, {"X-CSRF-Token": "guess"}]) {
                  try {
                    const r = await fetch(url + "/api/receive", {method: "POST", body: text,
                      mode: headers["X-CSRF-Token"] ? "cors" : "no-cors", headers});
                    out.push(r.type + ":" + r.status);
                  } catch (e) { out.push("blocked:" + e.name); }
                }
                return out;
            }""",
            [till, text],
        )
    )


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_a_wildcard_address_is_refused(pilot: list[str], host: str) -> None:
    r = run(*pilot, "pos", "kiosk-phone", "--host", host)
    assert r.code == 1 and "not a wildcard" in r.stderr


def test_an_unknown_till_or_a_wrong_pin_is_refused_at_start(
    pilot: list[str], tmp_path: Path
) -> None:
    r = run(*pilot, "pos", "nobody")
    assert r.code == 1 and "no wallet or terminal named 'nobody'" in r.stderr
    pin = tmp_path / "pin"
    pin.write_text("9999\n")
    r = run(*pilot, "pos", "kiosk-phone", "--pin-file", pin)
    assert r.code == 1 and "wrong-pin" in r.stderr


def test_sync_with_no_settlement_service_is_a_typed_refusal(pilot: list[str]) -> None:
    """Offline (the server cannot be reached), the Sync button says why; nothing else breaks."""
    till = Till.open(
        Network.open(Path(pilot[1])), "kiosk-phone", pin="0000", server="http://127.0.0.1:9"
    )
    app = create_app(till, allowed_hosts("127.0.0.1", PORT), token="t")
    with TestClient(app, base_url=ORIGIN) as client:
        r = client.post("/api/sync", headers=good("t"))
        assert r.status_code == 422
        body = r.json()
        assert (
            body["code"] == "service-unavailable"
            and "settlement server http://127.0.0.1:9" in body["message"]
        )
        assert client.get("/api/info").status_code == 200
