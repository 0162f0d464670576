"""Fuzzing every HTTP endpoint: never a 5xx, and every error is an RFC 9457 problem document.

The app runs in-process (FastAPI's TestClient) on a SQLite ledger holding a pilot network, an
enrolled and funded wallet and a terminal, so a valid request exists for every route. Each
example starts from that valid request and changes it structurally: the method, a path
parameter (a real id, a near miss, any text), the query, the headers (the operator token, the
client clock, the content type) and the JSON body, field by field; a base64url field carrying a
signed message is decoded, one node of its CBOR tree is changed, and the message is signed
again by its real signer, so the mutation reaches the ledger's rules. ``test_routes_are_all
_fuzzed`` fails when a route is added to the OpenAPI document without a valid request here.
"""

from __future__ import annotations

import base64
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import cbor2
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from offcash.api.app import create_app
from offcash.api.wire import b64
from offcash.crypto.algorithms import PrivateKey
from offcash.ledger import LedgerService

from factories import make_signer
from fuzzkit import encode_any, fuzz_settings, mutate_value, resigned
from harness import T0, PilotNetwork

TOKEN = "fuzz-token"


@dataclass
class Api:
    http: TestClient
    paths: dict[str, Any]
    ids: dict[str, str]  # path parameter name -> a real value
    bodies: dict[tuple[str, str], Any]  # (method, route) -> a valid JSON body
    keys: dict[str, PrivateKey]  # base64url field -> the key that signed its message


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    with tempfile.TemporaryDirectory() as tmp:
        net = PilotNetwork.create()
        ledger = LedgerService.open(f"sqlite:///{tmp}/fuzz.db")
        ledger.install(net.params, net.central_bank, net.banks)
        ledger.issue("Bank A", 10_000_000, T0)
        account = ledger.open_account("Bank A", "alice")
        ledger.distribute(account, 100_000, T0)
        se = net.new_se()
        e = ledger.enroll(se.csr(), account, T0)
        se.enroll(e.certificate, e.bank_certificates, e.crls, T0)
        se.load(ledger.fund(e.wallet_id, 20_000, T0), T0)
        terminal = ledger.register_terminal(ledger.open_account("Bank A", "shop"))
        payments = [se.pay_to(terminal, 100 + i, T0 + 1) for i in range(3)]
        unload = se.unload(50, T0 + 2)
        upload = se.sync_upload(T0 + 3)
        other = make_signer(net)  # a key the fuzzer may sign with, certified by Bank A
        app = create_app(ledger, TOKEN, clock=lambda: T0 + 10, accept_client_time=True)
        csr = b64(net.new_se().csr())
        bodies = {
            ("post", "/v1/sync"): {
                "report": b64(upload.report),
                "entries": [b64(x.encode()) for x in upload.entries],
                "csr": b64(se.csr()),
            },
            ("post", "/v1/unload"): {"request": b64(unload)},
            ("post", "/v1/terminals/{terminal}/redeem"): {"payments": [b64(p) for p in payments]},
            ("post", "/v1/banks/{bank}/issue"): {"amount": 1_000},
            ("post", "/v1/accounts"): {"bank": "Bank B", "holder": "carol"},
            ("post", "/v1/accounts/{account}/distribute"): {"amount": 10},
            ("post", "/v1/wallets"): {"csr": csr, "account": account},
            ("post", "/v1/terminals"): {"account": account},
            ("post", "/v1/wallets/{wallet}/fund"): {"amount": 10},
        }
        with TestClient(app, base_url="http://offcash", raise_server_exceptions=False) as http:
            yield Api(
                http,
                http.get("/openapi.json").json()["paths"],
                {
                    "wallet": str(e.wallet_id),
                    "terminal": str(terminal),
                    "account": account,
                    "bank": "Bank A",
                },
                bodies,
                {"report": other.key, "request": other.key, "payments": other.key},
            )
        ledger.engine.dispose()


def operations(api: Api) -> list[tuple[str, str]]:
    return sorted((method, path) for path, ops in api.paths.items() for method in ops)


def test_routes_are_all_fuzzed(api: Api) -> None:
    """Every operation of the OpenAPI document has a path and, if it takes one, a valid body."""
    for method, path in operations(api):
        op = api.paths[path][method]
        for param in op.get("parameters", []):
            if param["in"] == "path":
                assert param["name"] in api.ids, (method, path, param["name"])
        if "requestBody" in op:
            assert (method, path) in api.bodies, (method, path)
    assert len(operations(api)) >= 17


def assert_problem_or_success(method: str, url: str, response: Any) -> None:
    where = f"{method.upper()} {url} -> {response.status_code}: {response.text[:300]}"
    assert response.status_code < 500, where
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json"), where
        doc = response.json()
        assert doc["status"] == response.status_code, where
        assert doc["type"] == "https://offcash.dev/problems/" + doc["code"], where
        assert isinstance(doc["title"], str) and isinstance(doc["detail"], str), where
    else:
        response.json()


JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([0, -1, 2**63 - 1, 2**63, -(2**63) - 1, 2**64, 10**30])
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
    | st.sampled_from(["", "!!", "AAAA", "Bank A", "=" * 8, "A" * 5000])
)
JSON = st.recursive(
    JSON_LEAVES,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4),
    max_leaves=10,
)


def mutate_message_text(data: st.DataObject, text: Any, key: PrivateKey | None) -> Any:
    """A base64url signed message with one node of its CBOR tree changed (and re-signed)."""
    if not isinstance(text, str) or not text.isascii():
        return data.draw(JSON)
    try:
        value = cbor2.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except Exception:
        return text
    mutated = encode_any(data, mutate_value(data, value))
    if key is not None and data.draw(st.booleans(), label="resign"):
        mutated = resigned(mutated, key)
    return b64(mutated)


def mutate_body(data: st.DataObject, body: Any, keys: dict[str, PrivateKey]) -> Any:
    """One change to a JSON body: a field dropped, added, retyped, or its message mutated."""
    if not isinstance(body, dict) or not body:
        return data.draw(JSON, label="body")
    body = dict(body)
    field = data.draw(st.sampled_from(sorted(body)), label="field")
    op = data.draw(st.sampled_from(["message", "message", "replace", "drop", "add", "list"]))
    value = body[field]
    if op == "message" and isinstance(value, str) and len(value) > 40:
        body[field] = mutate_message_text(data, value, keys.get(field))
    elif op == "message" and isinstance(value, list) and value:
        items = list(value)
        i = data.draw(st.integers(0, len(items) - 1))
        items[i] = mutate_message_text(data, items[i], keys.get(field))
        body[field] = items
    elif op == "drop":
        del body[field]
    elif op == "add":
        body[data.draw(st.text(max_size=8))] = data.draw(JSON)
    elif op == "list" and isinstance(value, list):
        body[field] = data.draw(st.lists(st.sampled_from([*value, "", "AAAA", "!"]), max_size=6))
    else:
        body[field] = data.draw(JSON, label="value")
    return body


def path_value(data: st.DataObject, real: str) -> str:
    choice = data.draw(
        st.sampled_from(["real", "real", "upper", "near", "text", "long", "b32"]), label="param"
    )
    if choice == "real":
        return real
    if choice == "upper":
        return real.upper()
    if choice == "near":
        i = data.draw(st.integers(0, len(real) - 1))
        return real[:i] + data.draw(st.sampled_from("a2z7=_ \x00é")) + real[i + 1 :]
    if choice == "long":
        return real * 50
    if choice == "b32":
        return data.draw(st.text("abcdefghijklmnopqrstuvwxyz234567", max_size=32))
    return data.draw(st.text(min_size=1, max_size=30))


def headers_for(data: st.DataObject) -> dict[str, str]:
    headers: dict[str, str] = {}
    auth = data.draw(
        st.sampled_from([f"Bearer {TOKEN}", f"Bearer {TOKEN}", None, TOKEN, "Bearer ", "Basic x"])
        | st.text("abcdefghijklmnopqrstuvwxyz -", max_size=20).map(lambda t: "Bearer " + t),
        label="authorization",
    )
    if auth is not None:
        headers["Authorization"] = auth
    clock = data.draw(
        st.none()
        | st.sampled_from([str(T0 + 5), "-1", "0", str(2**40 + 1), str(2**64), "x", "1e9", ""])
        | st.integers(T0 - 10**7, T0 + 10**7).map(str),
        label="x-offcash-time",
    )
    if clock is not None:
        headers["X-Offcash-Time"] = clock
    return headers


@pytest.mark.parametrize(
    "operation",
    [
        ("get", "/v1/accounts/{account}"), ("get", "/v1/anomalies"), ("get", "/v1/audit"),
        ("get", "/v1/trust"), ("get", "/v1/wallets/{wallet}/evidence"),
        ("post", "/v1/accounts"), ("post", "/v1/accounts/{account}/distribute"),
        ("post", "/v1/banks/{bank}/issue"), ("post", "/v1/release-torn"), ("post", "/v1/sync"),
        ("post", "/v1/terminals"), ("post", "/v1/terminals/{terminal}/redeem"),
        ("post", "/v1/unload"), ("post", "/v1/wallets"), ("post", "/v1/wallets/{wallet}/fund"),
        ("post", "/v1/wallets/{wallet}/lost"), ("post", "/v1/wallets/{wallet}/refund"),
    ],
    ids=lambda op: f"{op[0].upper()} {op[1]}",
)  # fmt: skip
@fuzz_settings()
@given(data=st.data())
def test_endpoint(api: Api, operation: tuple[str, str], data: st.DataObject) -> None:
    method, route = operation
    assert route in api.paths and method in api.paths[route]
    url = route
    for name, real in api.ids.items():
        if "{" + name + "}" in url:
            url = url.replace("{" + name + "}", quote(path_value(data, real), safe=""))
    params = {}
    if route in ("/v1/trust", "/v1/anomalies") and data.draw(st.booleans(), label="query"):
        params["wallet"] = path_value(data, api.ids["wallet"])
    headers = headers_for(data)
    body = api.bodies.get(operation)
    if data.draw(st.integers(0, 9), label="wrong_method") == 0:
        method = data.draw(st.sampled_from(["get", "put", "delete", "patch", "post"]))
    kind = data.draw(st.sampled_from(["valid", "mutated", "mutated", "mutated", "raw"]))
    content: bytes | None = None
    if kind == "mutated":
        for _ in range(data.draw(st.integers(1, 2), label="changes")):
            body = mutate_body(data, body, api.keys)
    if kind == "raw":
        content = data.draw(
            st.binary(max_size=200)
            | st.sampled_from([b"", b"{", b"null", b"[]", b'{"amount": 1e400}', b"\xff"]),
            label="raw",
        )
        headers["Content-Type"] = data.draw(
            st.sampled_from(["application/json", "text/plain", "application/cbor"])
        )
    elif body is not None:
        content = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    response = api.http.request(method, url, params=params, headers=headers, content=content)
    assert_problem_or_success(method, url, response)


@fuzz_settings(0.5)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD"]),
    path=st.text(min_size=0, max_size=40),
)
def test_unknown_paths(api: Api, method: str, path: str) -> None:
    """Any path, known or not: a problem document (404, 405) or a success, never a 5xx."""
    url = "/" + quote(path, safe="/")
    response = api.http.request(method, url, headers={"Authorization": f"Bearer {TOKEN}"})
    if method == "HEAD" or url in ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"):
        assert response.status_code < 500
        return
    assert_problem_or_success(method, url, response)


def test_resigned_messages_reach_the_rules(api: Api) -> None:
    """A message re-signed by the fuzzer passes decoding and is refused by a rule (the
    signature is checked against the certificate in the header: another wallet's)."""
    body = api.bodies[("post", "/v1/unload")]
    raw = base64.urlsafe_b64decode(body["request"] + "==")
    forged = resigned(raw, api.keys["request"])
    assert forged != raw  # a fresh signature, by another wallet's key
    r = api.http.post("/v1/unload", json={"request": b64(forged)})
    assert r.status_code in (409, 422) and r.json()["code"] != "decode-error", r.text
