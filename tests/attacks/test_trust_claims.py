"""Issue 9, item 3: nobody can tell the ledger that a wallet holds the CRLs.

``GET /v1/trust?wallet=ID`` needs no credential. The attack: mark an honest payee as holding the
current CRLs, then pay it from a revoked wallet (its owner reported it lost, so the attacker gets
the money back through the refund too); the payee accepted offline (its SE never saw the CRL),
and settlement would charge it back. Now the route serves the material and records nothing
without the operator's credential; an SE's holdings are only ever proved by its own signed sync
reports (the answers it applied), and only the operator can say a terminal (no key) holds them.
End to end: real SEs, the real ledger, a real server process, SQLite and PostgreSQL."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from attackkit import ACCOUNT, assert_books, party, se_balance, sealed_wallet
from ledgerkit import World
from server_process import ServerProcess, pg_url_with_schema

from offcash.api.client import Client
from offcash.crypto.trust import TrustStore
from offcash.wallet.terminal import ReceiveOnlyTerminal

from harness import T0

TOKEN = "trust-test-token"


def test_unauthenticated_trust_fetch_records_nothing_over_http(
    world: World, db_target: tuple[str, str | None], tmp_path: Path
) -> None:
    url, schema = db_target
    now = int(time.time())  # the server reads its own clock
    alice = sealed_wallet(world, tmp_path / "alice", 5_000, "Bank A", now=now)
    bob = party(world, 0, "Bank B", now=now)
    shop, other_shop = world.account("Bank B", 0), world.account("Bank B", 0)
    tid, other = world.ledger.register_terminal(shop), world.ledger.register_terminal(other_shop)
    stale = world.ledger.trust_material(None, now)  # the terminals' trust: no CRL
    world.ledger.report_lost(alice.wid, now)  # revoked: Bank A's CRL lists alice
    world.ledger.engine.dispose()
    server_db = url if schema is None else pg_url_with_schema(url, schema)
    server = ServerProcess.api(server_db, TOKEN, tmp_path / "server.log")
    server.start()
    client = Client(server.url, TOKEN, timeout=30)
    try:
        for wid in (bob.wid, tid):  # the attacker "delivers" the CRLs to bob and the shop
            r = httpx.get(server.url + "/v1/trust", params={"wallet": str(wid)}, timeout=30)
            assert r.status_code == 200 and r.json()["crls"]  # served, but recorded nowhere
        # the operator hands the other shop's terminal the CRL (recorded), and asks for bob's
        # SE too (an SE's holdings are its own report's to prove: recorded nowhere)
        for wid in (other, bob.wid):
            client.trust_material(wid, now)
        time.sleep(1.1)  # the payments below come after those deliveries
        t = int(time.time())
        bob.se.receive(alice.se.pay_to(bob.wid, 500, t), t)  # valid by the CRL bob's SE holds
        terminals = [
            ReceiveOnlyTerminal(
                w, world.net.params, TrustStore.create(stale.root, stale.bank_certificates, [])
            )
            for w in (tid, other)
        ]
        for term, amount in zip(terminals, (300, 200), strict=True):
            term.receive(alice.se.pay_to(term.wallet_id, amount, t), t)

        up = bob.se.sync_upload(t)
        res = client.sync(up.report, [e.encode() for e in up.entries], bob.se.csr(), t)
        assert (res.settled, res.refused) == (1, [])  # paid, not charged back
        assert res.ack is not None and res.certificate is not None
        bob.se.apply_sync(res.ack, res.certificate, res.bank_certificates, res.crls, t)
        paid = client.redeem(tid, terminals[0].payments_to_redeem(), t)
        assert (paid.settled, paid.refused) == (1, [])
        told = client.redeem(other, terminals[1].payments_to_redeem(), t)
        assert (told.settled, [r.reason for r in told.refused]) == (0, ["REVOKED"])
    finally:
        client.close()
        server.stop()
    audit = assert_books(world, {bob.account: ACCOUNT, shop: 300, other_shop: 0})
    assert audit.banks["Bank B"].float == se_balance(bob) == 500


def test_trust_material_in_process_records_nothing_for_an_se(world: World, tmp_path: Path) -> None:
    alice = sealed_wallet(world, tmp_path / "alice", 5_000, "Bank A")
    bob = party(world, 0, "Bank B")
    world.ledger.report_lost(alice.wid, T0 + 1)
    world.ledger.trust_material(bob.wid, T0 + 2)  # bob's SE never installs these
    bob.se.receive(alice.se.pay_to(bob.wid, 700, T0 + 3), T0 + 4)
    res = world.sync(bob.se, T0 + 5)
    assert (res.settled, res.refused) == (1, [])
    audit = assert_books(world, {bob.account: ACCOUNT})
    assert audit.banks["Bank B"].float == se_balance(bob) == 700
