"""``GET /metrics``: the counters move with what the ledger did, on both backends, parsed with
prometheus-client's own text parser (not the code that wrote them)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from ledgerkit import clone, sealed_se
from prometheus_client.parser import text_string_to_metric_families

from offcash.api.app import create_app
from offcash.api.client import Client
from offcash.api.wire import b64
from offcash.ledger import LedgerService
from offcash.ledger.errors import WalletRevoked

from harness import T0, PilotNetwork

TOKEN = "metrics-token"


@pytest.fixture
def setup(
    db_target: tuple[str, str | None], p256: PilotNetwork
) -> Iterator[tuple[Client, TestClient]]:
    url, schema = db_target
    ledger = LedgerService.open(url, schema=schema)
    ledger.install(p256.params, p256.central_bank, p256.banks)
    app = create_app(ledger, TOKEN, clock=lambda: T0, accept_client_time=True)
    with TestClient(app, base_url="http://offcash") as http:
        yield Client(token=TOKEN, http=http), http
    ledger.close()


def samples(http: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``/metrics``, by name and sorted labels."""
    r = http.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def test_metrics_count_syncs_settlements_refusals_and_double_spends(
    setup: tuple[Client, TestClient], p256: PilotNetwork, tmp_path: Path
) -> None:
    c, http = setup
    c.issue("Bank A", 1_000_000, T0)
    acct = c.open_account("Bank A", "alice")
    c.distribute(acct, 10_000, T0)
    alice = sealed_se(p256, tmp_path / "alice.se")
    e = c.enroll(alice.csr(), acct, T0)
    alice.enroll(e.certificate, e.bank_certificates, e.crls, T0)
    alice.load(c.fund(e.wallet_id, 5_000, T0), T0)
    evil = clone(tmp_path / "alice.se", tmp_path / "evil.se")  # a broken SE: same counter
    term = c.register_terminal(c.open_account("Bank A", "shop"))
    first, twin = alice.pay_to(term, 700, T0 + 1), evil.pay_to(term, 300, T0 + 1)
    assert c.redeem(term, [first], T0 + 2).settled == 1
    settled = 1 + c.redeem(term, [twin], T0 + 3).settled  # the same counter: a double spend
    tampered = first[:-1] + bytes([first[-1] ^ 1])  # its signature no longer verifies
    assert c.redeem(term, [tampered], T0 + 3).refused
    up = alice.sync_upload(T0 + 4)
    with pytest.raises(WalletRevoked):  # the double spend revoked alice
        c.sync(up.report, [x.encode() for x in up.entries], alice.csr(), T0 + 4)
    http.post("/v1/sync", json={"report": "!!", "entries": [], "csr": ""})  # malformed
    http.get(f"/v1/wallets/{e.wallet_id}/evidence", headers={"Authorization": "Bearer x"})
    got = samples(http)

    assert got[("offcash_payments_settled_total", (("via", "redeem"),))] == settled
    assert got[("offcash_syncs_total", (("outcome", "decode-error"),))] == 1
    assert got[("offcash_syncs_total", (("outcome", "wallet-revoked"),))] == 1
    refused = {k[1][0][1]: v for k, v in got.items() if k[0] == "offcash_payments_refused_total"}
    assert sum(refused.values()) >= 1 and all(r.replace("_", "").isalnum() for r in refused)
    assert got[("offcash_ledger_up", ())] == 1
    assert got[("offcash_ledger_double_spends_total", ())] >= 1
    assert got[("offcash_ledger_anomalies_total", (("kind", "double-spend"),))] >= 1
    # latency by route template: the wallet id in the path is not a label
    routes = {dict(k[1]).get("route") for k in got if k[0].startswith("offcash_http_request")}
    assert {
        "/v1/sync",
        "/v1/terminals/{terminal}/redeem",
        "/v1/wallets/{wallet}/evidence",
    } <= routes
    assert not [r for r in routes if r and str(e.wallet_id) in r]
    count = got[
        (
            "offcash_http_request_duration_seconds_count",
            (("method", "GET"), ("route", "/v1/wallets/{wallet}/evidence"), ("status", "401")),
        )
    ]
    assert count == 1
    assert b64(first) not in http.get("/metrics").text


def test_unknown_paths_share_one_latency_series(setup: tuple[Client, TestClient]) -> None:
    _, http = setup
    for i in range(5):
        http.get(f"/no/such/path/{i}")
    routes = {dict(k[1]).get("route") for k in samples(http) if "duration" in k[0]}
    assert "unmatched" in routes and not [r for r in routes if r and "/no/such" in r]
