"""The HTTP API through the Python client: same behaviour as the facade, problem details."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from offcash.api import wire
from offcash.api.app import create_app
from offcash.api.client import Client
from offcash.crypto.algorithms import SignatureAlgorithm
from offcash.errors import DecodeError, VerificationError
from offcash.ledger import LedgerService
from offcash.ledger.errors import IncompleteLog, NotFound, Unauthorized
from offcash.ledger.service import Enrollment
from offcash.protocol import messages as m
from offcash.se.software import SoftwareSecureElement
from offcash.wallet.facade import Wallet

from harness import T0, PilotNetwork

TOKEN = "s3cret"


@pytest.fixture
def setup(
    db_target: tuple[str, str | None], p256: PilotNetwork
) -> Iterator[tuple[Client, TestClient, PilotNetwork]]:
    url, schema = db_target
    ledger = LedgerService.open(url, schema=schema)
    ledger.install(p256.params, p256.central_bank, p256.banks)
    app = create_app(ledger, TOKEN, clock=lambda: T0, accept_client_time=True)
    with TestClient(app, base_url="http://offcash") as http:
        yield Client(token=TOKEN, http=http), http, p256
    ledger.close()


def _enrolled(
    c: Client, net: PilotNetwork, deposit: int
) -> tuple[SoftwareSecureElement, Enrollment, str]:
    """An SE enrolled over HTTP, its enrollment and its owner's account holding ``deposit``."""
    c.issue("Bank A", 1_000_000, T0)
    acct = c.open_account("Bank A", "owner")
    c.distribute(acct, deposit, T0)
    se = net.new_se()
    e = c.enroll(se.csr(), acct, T0)
    se.enroll(e.certificate, e.bank_certificates, e.crls, T0)
    return se, e, acct


def test_wallet_round_trip_over_http(setup: tuple[Client, TestClient, PilotNetwork]) -> None:
    c, _, net = setup
    se, e, acct = _enrolled(c, net, 10_000)
    se.load(c.fund(e.wallet_id, 4_000, T0), T0)
    shop = c.open_account("Bank A", "shop")
    term = c.register_terminal(shop)
    p = se.pay_to(term, 1_500, T0 + 1)
    assert c.redeem(term, [p, p], T0 + 2).settled == 1
    up = se.sync_upload(T0 + 3)
    res = c.sync(up.report, [x.encode() for x in up.entries], se.csr(), T0 + 3)
    assert res.ack is not None and res.certificate is not None
    se.apply_sync(res.ack, res.certificate, res.bank_certificates, res.crls, T0 + 3)
    assert c.unload(se.unload(500, T0 + 4), T0 + 4) == 500
    assert c.balance(shop) == 1_500 and c.balance(acct) == 6_500
    audit = c.audit()
    assert audit.balanced and audit.banks["Bank A"].float == 2_000
    assert c.anomalies() == [] and c.evidence(e.wallet_id) == []
    assert c.trust_material(None, T0).root == net.central_bank.certificate_der


def test_errors_are_problem_documents(setup: tuple[Client, TestClient, PilotNetwork]) -> None:
    c, http, net = setup
    r = http.post("/v1/sync", json={"report": "!!", "entries": [], "csr": ""})
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"] == "https://offcash.dev/problems/decode-error"
    r = http.post("/v1/sync", json={"nonsense": 1})  # JSON, but not the route's schema
    assert r.status_code == 422 and r.json()["code"] == "decode-error"
    assert {e["pointer"] for e in r.json()["errors"]} >= {"/body/report", "/body/entries"}
    r = http.post("/v1/unload", json={"request": "AAAA"})
    assert r.status_code == 400
    r = http.get("/v1/audit", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.json()["code"] == Unauthorized.code
    with pytest.raises(NotFound):
        c.open_account("No Bank", "x")
    with pytest.raises(DecodeError):
        c.unload(b"\x00", T0)
    se = net.wallet(1_000)  # certified by the bank key, but never enrolled in this ledger
    up = se.sync_upload(T0)
    with pytest.raises(NotFound):
        c.sync(up.report, [x.encode() for x in up.entries], se.csr(), T0)
    se, e, _ = _enrolled(c, net, 1_000)
    se.load(c.fund(e.wallet_id, 500, T0), T0)
    up = se.sync_upload(T0)
    with pytest.raises(IncompleteLog):
        c.sync(up.report, [], se.csr(), T0)
    with pytest.raises(VerificationError.__mro__[1]):  # RemoteError for a future report
        c.sync(se.sync_upload(T0 + 10_000).report, [x.encode() for x in up.entries], se.csr(), T0)


def test_openapi_is_served(setup: tuple[Client, TestClient, PilotNetwork]) -> None:
    _, http, _ = setup
    paths = http.get("/openapi.json").json()["paths"]
    assert "/v1/sync" in paths and "/v1/terminals/{terminal}/redeem" in paths


class _AnswerLostOnce(httpx.BaseTransport):
    """Forwards every request; the first answer to a POST whose path ends with ``suffix`` is
    lost after the server ran the request."""

    def __init__(self, inner: httpx.BaseTransport, suffix: str) -> None:
        self.inner, self.suffix, self.lost = inner, suffix, 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method == "POST" and request.url.path.endswith(self.suffix) and not self.lost:
            self.lost += 1
            response.read()
            raise httpx.ReadError("connection reset", request=request)
        return response


def _lossy(http: TestClient, suffix: str) -> tuple[Client, _AnswerLostOnce]:
    lossy = _AnswerLostOnce(http._transport, suffix)
    return Client(token=TOKEN, http=httpx.Client(base_url="http://offcash", transport=lossy)), lossy


def test_operator_calls_retried_after_a_lost_answer_apply_once(
    setup: tuple[Client, TestClient, PilotNetwork],
) -> None:
    c, http, net = setup
    flaky, lossy = _lossy(http, "/issue")
    flaky.issue("Bank A", 1_000, T0)  # sent twice with one Idempotency-Key
    assert lossy.lost == 1 and c.audit().issued == 1_000
    flaky, lossy = _lossy(http, "/v1/accounts")
    acct = flaky.open_account("Bank A", "alice")
    assert lossy.lost == 1 and c.balance(acct) == 0
    flaky, lossy = _lossy(http, "/distribute")
    flaky.distribute(acct, 600, T0)
    assert lossy.lost == 1 and c.balance(acct) == 600 and c.audit().banks["Bank A"].reserve == 400
    flaky, lossy = _lossy(http, "/v1/wallets")
    se = net.new_se()
    e = flaky.enroll(se.csr(), acct, T0)
    se.enroll(e.certificate, e.bank_certificates, e.crls, T0)
    assert lossy.lost == 1  # (that a retry makes no second account or wallet: test_idempotency)
    flaky, lossy = _lossy(http, "/v1/terminals")
    term = flaky.register_terminal(acct)
    assert lossy.lost == 1
    se.load(c.fund(e.wallet_id, 100, T0), T0)
    assert c.redeem(term, [se.pay_to(term, 40, T0 + 1)], T0 + 2).settled == 1
    audit = c.audit()
    assert audit.balanced and audit.customers == 540 and audit.banks["Bank A"].float == 60


def test_fund_retried_after_a_lost_answer_debits_once(
    setup: tuple[Client, TestClient, PilotNetwork],
) -> None:
    c, http, net = setup
    se, e, acct = _enrolled(c, net, 10_000)
    flaky, lossy = _lossy(http, "/fund")
    se.load(flaky.fund(e.wallet_id, 4_000, T0), T0)  # sent twice with one Idempotency-Key
    assert lossy.lost == 1
    assert c.balance(acct) == 6_000 and se.status(T0).balance == 4_000
    headers = {"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": "order-17"}
    path = f"/v1/wallets/{e.wallet_id}/fund"
    first = http.post(path, json={"amount": 100}, headers=headers).json()["voucher"]
    second = http.post(path, json={"amount": 100}, headers=headers).json()["voucher"]
    v1, v2 = (m.parse_voucher(wire.unb64(v)) for v in (first, second))
    assert v1.voucher_id == v2.voucher_id and c.balance(acct) == 5_900
    r = http.post(path, json={"amount": 200}, headers=headers)
    assert r.status_code == 409 and r.json()["code"] == "conflict"


def test_a_wallet_follows_a_migration_over_http(
    db_target: tuple[str, str | None], p256: PilotNetwork
) -> None:
    """GET /v1/network carries what a wallet made before the migration needs (the NewWithOld
    certificate, the legacy algorithm and its end); it follows and re-keys at a sync over HTTP."""
    url, schema = db_target
    ledger = LedgerService.open(url, schema=schema)
    ledger.install(p256.params, p256.central_bank, p256.banks)
    app = create_app(ledger, TOKEN, clock=lambda: T0, accept_client_time=True)
    with TestClient(app, base_url="http://offcash") as http:
        c = Client(token=TOKEN, http=http)
        se, e, _ = _enrolled(c, p256, 10_000)
        se.load(c.fund(e.wallet_id, 4_000, T0), T0)
        ledger.migrate(SignatureAlgorithm.ML_DSA_44, T0 + 10)
        info = c.network()
        assert info == ledger.network() and info.new_with_old is not None
        assert info.params.legacy is SignatureAlgorithm.P256
        Wallet(se, c).migrate(info)
        Wallet(se, c).sync(T0 + 20)
        assert se.status(T0 + 20).balance == 4_000
        assert se.trust.wallet_certificate(se._s.certificate or b"", None).algorithm is (
            SignatureAlgorithm.ML_DSA_44
        )
    ledger.close()
