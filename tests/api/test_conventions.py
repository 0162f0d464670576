"""HTTP conventions of the settlement service, in process on both backends: health and
readiness, bearer-only operator auth, problem documents, bounded bodies and counts, text that
no database can store, local API docs."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from offcash import errors
from offcash.api import limits
from offcash.api.app import create_app
from offcash.ledger import LedgerService
from offcash.ledger import errors as lerrors

from harness import T0, PilotNetwork

TOKEN = "conventions-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: Every class name an error could leak as a title.
CLASS_NAMES = {
    c.__name__
    for mod in (errors, lerrors)
    for c in vars(mod).values()
    if isinstance(c, type) and issubclass(c, Exception)
} | {"HTTPException", "InternalError", "RequestValidationError", "Exception"}


@pytest.fixture
def http(db_target: tuple[str, str | None], p256: PilotNetwork) -> Iterator[TestClient]:
    url, schema = db_target
    ledger = LedgerService.open(url, schema=schema)
    ledger.install(p256.params, p256.central_bank, p256.banks)
    ledger.issue("Bank A", 1_000_000, T0)
    app = create_app(ledger, TOKEN, clock=lambda: T0, accept_client_time=True)
    with TestClient(app, base_url="http://offcash", raise_server_exceptions=False) as client:
        yield client
    ledger.close()


def assert_problem(r: object, status: int, code: str | None = None) -> dict[str, object]:
    """``r`` is an RFC 9457 problem document of ``status`` with a human title."""
    assert r.status_code == status, r.text  # type: ignore[attr-defined]
    assert r.headers["content-type"].startswith("application/problem+json")  # type: ignore[attr-defined]
    doc: dict[str, object] = r.json()  # type: ignore[attr-defined]
    assert doc["status"] == status and isinstance(doc["detail"], str)
    assert doc["type"] == f"https://offcash.dev/problems/{doc['code']}"
    title = doc["title"]
    assert isinstance(title, str) and title not in CLASS_NAMES, title
    assert re.fullmatch(r"[A-Z][a-z'-]*( [A-Za-z'-]+)*", title), title
    if code is not None:
        assert doc["code"] == code, doc
    return doc


def test_health_and_readiness_need_no_credential(http: TestClient) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}
    assert http.get("/readyz").json() == {"status": "ready"}


def test_not_ready_when_the_database_is_unreachable(p256: PilotNetwork) -> None:
    engine = sa.create_engine("postgresql+psycopg://postgres@127.0.0.1:1/none")  # nothing there
    app = create_app(LedgerService(engine), TOKEN, clock=lambda: T0)
    with TestClient(app, raise_server_exceptions=False) as http:
        assert http.get("/healthz").status_code == 200
        doc = assert_problem(http.get("/readyz"), 503, "not-ready")
        assert doc["title"] == "Service not ready"
        metrics = http.get("/metrics")
        assert metrics.status_code == 200 and "offcash_ledger_up 0.0" in metrics.text


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": TOKEN},  # the token without its scheme
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "Bearer "},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Bearer {TOKEN[:-1]}"},
        {"X-Offcash-Token": TOKEN},
        {"X-Api-Key": TOKEN},
    ],
    ids=["none", "raw", "basic", "empty", "longer", "shorter", "custom-header", "api-key"],
)
def test_operator_calls_take_only_a_bearer_token(http: TestClient, headers: dict[str, str]) -> None:
    r = http.get("/v1/audit", headers=headers, params={"token": TOKEN, "access_token": TOKEN})
    assert_problem(r, 401, "unauthorized")
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert http.get("/v1/audit", headers=AUTH).status_code == 200
    assert http.get("/v1/audit", headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200


def test_openapi_declares_the_bearer_scheme_on_operator_routes(http: TestClient) -> None:
    doc = http.get("/openapi.json").json()
    schemes = doc["components"]["securitySchemes"]
    assert [s for s in schemes.values() if s == {**s, "type": "http", "scheme": "bearer"}]
    name = next(iter(schemes))
    wallet_routes = {("get", "/v1/trust"), ("post", "/v1/sync"), ("post", "/v1/unload")}
    wallet_routes |= {("get", "/v1/network")}
    wallet_routes |= {("post", "/v1/terminals/{terminal}/redeem"), ("get", "/healthz")}
    wallet_routes |= {("get", "/readyz"), ("get", "/metrics")}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if (method, path) in wallet_routes:
                assert "security" not in op, (method, path)
            else:
                assert op.get("security") == [{name: []}], (method, path)
                assert "401" in op["responses"], (method, path)


def test_every_error_is_a_problem_with_a_human_title(http: TestClient) -> None:
    assert_problem(http.get("/nowhere"), 404, "not-found")
    assert_problem(http.delete("/v1/sync"), 405, "method-not-allowed")
    assert_problem(
        http.post("/v1/accounts", json={"bank": "No Bank", "holder": "x"}, headers=AUTH), 404
    )
    assert_problem(http.post("/v1/unload", json={"request": "!!"}), 400, "decode-error")
    assert_problem(http.post("/v1/unload", json={"request": "AAAA"}), 400, "decode-error")
    r = http.post("/v1/sync", content=b"{not json", headers={"Content-Type": "application/json"})
    assert_problem(r, 400, "decode-error")
    r = http.post("/v1/banks/Bank%20A/issue", json={"amount": "ten"}, headers=AUTH)
    doc = assert_problem(r, 422, "decode-error")
    assert [e["pointer"] for e in doc["errors"]] == ["/body/amount"]  # type: ignore[attr-defined]
    assert "valid integer" in doc["errors"][0]["message"]  # type: ignore[index]
    r = http.post("/v1/wallets", json={"csr": 5}, headers=AUTH)
    doc = assert_problem(r, 422, "decode-error")
    pointers = {e["pointer"] for e in doc["errors"]}  # type: ignore[attr-defined]
    assert pointers == {"/body/csr", "/body/account"}
    assert all(isinstance(e["message"], str) for e in doc["errors"])  # type: ignore[attr-defined]
    assert "{" not in str(doc["detail"])  # no repr of Python structures


@pytest.mark.parametrize(
    "bad", ["\ud800", "Bank\x00A", "a\udfffb", "\x00", "tab\there", "bell\x07"], ids=repr
)
def test_unstorable_text_is_bad_input_not_a_crash(http: TestClient, bad: str) -> None:
    """Lone surrogates and NUL (and other control characters) in names: 422, nothing stored."""
    body = json.dumps({"bank": bad, "holder": "alice"})  # ensure_ascii: "\ud800" escaped
    r = http.post(
        "/v1/accounts", content=body, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert_problem(r, 422, "decode-error")
    body = json.dumps({"bank": "Bank A", "holder": bad})
    r = http.post(
        "/v1/accounts", content=body, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert_problem(r, 422, "decode-error")
    account = http.post("/v1/accounts", json={"bank": "Bank A", "holder": "ok"}, headers=AUTH)
    acct = account.json()["account"]
    for body in ({"account": bad}, {"account": acct + bad}):
        headers = {**AUTH, "Content-Type": "application/json"}
        r = http.post("/v1/terminals", content=json.dumps(body), headers=headers)
        assert_problem(r, 422, "decode-error")
    if "\x00" in bad:  # a URL cannot carry a lone surrogate; it can carry NUL
        quoted = bad.replace("\x00", "%00").replace("\t", "%09")
        assert_problem(
            http.post(f"/v1/banks/{quoted}/issue", json={"amount": 1}, headers=AUTH), 422
        )
        assert_problem(http.get(f"/v1/accounts/{quoted}", headers=AUTH), 422)
        assert_problem(http.get("/v1/anomalies", params={"wallet": bad}, headers=AUTH), 422)
    assert http.get("/v1/audit", headers=AUTH).json()["customers"] == 0


def test_bodies_are_bounded_per_route(http: TestClient) -> None:
    big = b'{"request": "' + b"A" * limits.DEFAULT_BODY_BYTES + b'"}'
    r = http.post("/v1/unload", content=big, headers={"Content-Type": "application/json"})
    doc = assert_problem(r, 413, "body-too-large")
    assert str(limits.DEFAULT_BODY_BYTES) in str(doc["detail"])

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it streams
        yield b'{"request": "'
        for _ in range(100):
            yield b"A" * 4096

    r = http.post("/v1/unload", content=chunks(), headers={"Content-Type": "application/json"})
    assert_problem(r, 413, "body-too-large")
    # a sync may be larger than any other body, up to its own limit
    body = {"report": "AAAA", "entries": ["A" * 30_000] * 4, "csr": "AAAA"}
    r = http.post("/v1/sync", json=body)
    assert r.status_code == 400 and r.json()["code"] == "decode-error"  # read, then refused
    assert limits.SYNC_BODY_BYTES < 50_000_000 < limits.SYNC_BODY_BYTES * 2
    r = http.post(
        "/v1/sync", content=b"x", headers={"Content-Length": str(limits.SYNC_BODY_BYTES + 1)}
    )
    assert_problem(r, 413, "body-too-large")


def test_counts_inside_a_body_are_bounded(http: TestClient) -> None:
    n = limits.MAX_LOG_ENTRIES + 1
    r = http.post("/v1/sync", json={"report": "AAAA", "entries": ["AAAA"] * n, "csr": "AAAA"})
    doc = assert_problem(r, 422, "decode-error")
    assert doc["errors"][0]["pointer"] == "/body/entries"  # type: ignore[index]
    r = http.post(
        "/v1/terminals/x/redeem", json={"payments": ["AAAA"] * (limits.MAX_REDEEM_PAYMENTS + 1)}
    )
    assert_problem(r, 422, "decode-error")
    report = "A" * (limits.MAX_SIGNED_B64 + 1)
    r = http.post("/v1/sync", json={"report": report, "entries": [], "csr": "AAAA"})
    assert_problem(r, 422, "decode-error")


def test_the_limits_hold_the_largest_message_the_decoders_accept() -> None:
    """The derivation in offcash.api.limits matches the COSE decoder's own bounds."""
    from offcash.encoding import cose

    assert cose._MAX_SIGNATURE == limits.MAX_SIGNATURE_BYTES
    x5chain = cose._PROTECTED[cose.HEADER_X5CHAIN].check
    assert x5chain(b"x" * limits.MAX_CERTIFICATE_BYTES, "x5chain")
    with pytest.raises(errors.DecodeError):
        x5chain(b"x" * (limits.MAX_CERTIFICATE_BYTES + 1), "x5chain")
    assert (
        limits.MAX_LOG_ENTRIES * limits.b64_chars(limits.MAX_ENTRY_BYTES) <= limits.SYNC_BODY_BYTES
    )


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_need_no_internet(http: TestClient, page: str) -> None:
    r = http.get(page)
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    parser = _Assets()
    parser.feed(r.text)
    urls = parser.urls + re.findall(r"url: '([^']+)'", r.text)
    assert urls and not re.search(r"https?://", r.text.replace("http://offcash", ""))
    for url in urls:
        assert url.startswith("/"), url
        got = http.get(url)
        assert got.status_code == 200 and len(got.content) > 100, url


def test_docs_state_the_limits_the_code_enforces() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "API.md").read_text()
    assert f"{limits.SYNC_BODY_BYTES:,} bytes" in text
    assert f"{limits.REDEEM_BODY_BYTES:,} bytes" in text
    assert f"at most {limits.MAX_REDEEM_PAYMENTS} payments" in text
    assert f"at most {limits.MAX_LOG_ENTRIES} log entries" in text


def test_not_ready_when_the_database_hangs(p256: PilotNetwork) -> None:
    """A database that accepts the connection and never answers: /readyz is a 503 after its
    deadline, and a probe while that check still hangs is a 503 at once (no pile-up)."""
    with socket.create_server(("127.0.0.1", 0), backlog=8) as mute:  # listens, never speaks
        port = mute.getsockname()[1]
        engine = sa.create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{port}/none")
        app = create_app(LedgerService(engine), TOKEN, clock=lambda: T0)
        with TestClient(app, raise_server_exceptions=False) as http:
            start = time.monotonic()
            doc = assert_problem(http.get("/readyz"), 503, "not-ready")
            assert "no answer within" in str(doc["detail"])
            assert 2 < time.monotonic() - start < 20
            start = time.monotonic()
            doc = assert_problem(http.get("/readyz"), 503, "not-ready")
            assert "still waiting" in str(doc["detail"]) and time.monotonic() - start < 2
            assert http.get("/healthz").status_code == 200
            assert "offcash_ledger_up 0.0" in http.get("/metrics").text
