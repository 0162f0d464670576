"""The wallet facade over the one settlement protocol, in process and over HTTP, on both backends.

Each test runs four times: ``LedgerService`` and ``offcash.api.Client`` (against the real app),
each on SQLite and PostgreSQL. What a wallet sees must not depend on which one it talks to:
the same answers and the same typed errors. The tests that make wallets do it once more per
secure element kind (``ses``, tests/se_kinds.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from offcash.api import Client, create_app
from offcash.crypto.algorithms import SignatureAlgorithm
from offcash.errors import OffcashError, Rejection, ServiceUnavailable, VerificationError
from offcash.ledger import LedgerService
from offcash.ledger.errors import InsufficientBalance
from offcash.protocol import PayeeSide, PayerSide
from offcash.wallet import Operations, RevokedAtSync, Wallet

from harness import SEs

T0 = 1_767_225_600
TOKEN = "s3cret"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["in-process", "http"])
def settlement(
    request: pytest.FixtureRequest, db_target: tuple[str, str | None]
) -> Iterator[Operations]:
    """A fresh network (P-256, EUR, one bank with 1,000.00 of reserves) behind either side."""
    url, schema = db_target
    ledger = LedgerService.open(url, schema=schema, workers=0)
    ledger.create_network("EUR", SignatureAlgorithm.P256, "Central Bank", ["Bank A"], T0 - 60)
    ledger.issue("Bank A", 100_000, T0)
    if request.param == "in-process":
        yield ledger
    else:
        app = create_app(ledger, TOKEN, clock=lambda: T0, accept_client_time=True)
        with (
            TestClient(app, base_url="http://offcash") as http,
            Client(token=TOKEN, http=http) as client,
        ):
            yield client
    ledger.close()


def _new_wallet(s: Operations, ses: SEs, deposit: int, now: int = T0) -> tuple[Wallet, str]:
    """A wallet made the way a third-party app makes one: from ``network()`` alone."""
    info = s.network()
    account = s.open_account("Bank A", "holder")
    if deposit:
        s.distribute(account, deposit, now)
    se = ses.new(info.params, info.root)
    return Wallet.enrol(se, s, account, now), account


def test_network_gives_what_a_new_wallet_needs(settlement: Operations) -> None:
    info = settlement.network()
    assert info.params.currency == "EUR" and info.params.algorithm is SignatureAlgorithm.P256
    assert len(info.bank_certificates) == 1 and info.root.startswith(b"0")  # DER SEQUENCE


def test_enrol_fund_pay_offline_sync_unload(settlement: Operations, ses: SEs) -> None:
    alice, alice_account = _new_wallet(settlement, ses, 50_000)
    bob, bob_account = _new_wallet(settlement, ses, 0)
    assert alice.wallet_id != bob.wallet_id
    assert alice.fund(20_000, T0 + 1, idempotency_key="fund-1") == 20_000
    assert settlement.balance(alice_account) == 30_000
    # a retry with the same key gets the same voucher: the SE refuses it, the account is not
    # debited again
    with pytest.raises(VerificationError) as replayed:
        alice.fund(20_000, T0 + 2, idempotency_key="fund-1")
    assert replayed.value.rejection is Rejection.REPLAYED
    assert settlement.balance(alice_account) == 30_000
    # offline, with the sans-I/O exchange: no settlement involved
    payee, payer = PayeeSide(bob.se), PayerSide(alice.se)
    request = payer.receive_request(payee.start(2_500, T0 + 3, reference="coffee"))
    assert request.amount == 2_500 and request.payee == bob.wallet_id
    received = payee.receive_payment(payer.pay(T0 + 4), T0 + 5)
    assert received.receipt is not None
    payer.receive_receipt(received.receipt)
    # online again
    assert alice.sync(T0 + 10).settled == 1
    assert bob.sync(T0 + 11).settled == 1
    assert bob.status(T0 + 12).balance == 2_500 and bob.status(T0 + 12).log_entries == 0
    assert bob.unload(1_000, T0 + 13) == 1_000
    assert settlement.balance(bob_account) == 1_000
    audit = settlement.audit()
    assert audit.balanced and audit.float == 17_500 + 1_500
    assert settlement.anomalies() == []


def test_refusals_are_the_same_typed_errors_on_both_sides(settlement: Operations, ses: SEs) -> None:
    alice, account = _new_wallet(settlement, ses, 1_000)
    with pytest.raises(InsufficientBalance):
        alice.fund(1_001, T0)  # more than the account holds
    with pytest.raises(InsufficientBalance, match="reserves"):
        settlement.distribute(account, 100_001, T0)  # more than the bank's reserves
    assert settlement.balance(account) == 1_000
    ed = SignatureAlgorithm.ED25519
    info = settlement.network()
    foreign = ses.new(type(info.params)(info.params.currency, ed), info.root)
    with pytest.raises(VerificationError) as wrong:
        settlement.enroll(foreign.csr(), account, T0)
    assert wrong.value.rejection is Rejection.ALGORITHM_NOT_ALLOWED
    assert "ed25519" in str(wrong.value)


def test_a_revoked_wallet_is_told_at_sync(settlement: Operations, ses: SEs) -> None:
    alice, _ = _new_wallet(settlement, ses, 1_000)
    alice.fund(500, T0)
    clone = ses.clone(alice.se)  # its state read out of the broken SE, written into another
    bob, _ = _new_wallet(settlement, ses, 0)
    one = alice.se.pay_to(bob.wallet_id, 100, T0 + 1)
    two = clone.pay_to(bob.wallet_id, 200, T0 + 1)  # the same counter: a double spend
    bob.se.receive(one, T0 + 2)
    with pytest.raises(VerificationError):
        bob.se.receive(two, T0 + 2)
    bob.sync(T0 + 3)
    alice.sync(T0 + 4)
    with pytest.raises(RevokedAtSync) as revoked:  # its log holds the twin: a double spend
        Wallet(clone, settlement).sync(T0 + 5)
    assert revoked.value.wallet == alice.wallet_id
    with pytest.raises(OffcashError):  # the clone's SE learned it is revoked: it stops paying
        clone.pay_to(bob.wallet_id, 1, T0 + 6)
    kinds = {(a.kind, a.wallet) for a in settlement.anomalies()}
    assert ("double-spend", alice.wallet_id) in kinds


def test_unreachable_services_are_offcash_errors(tmp_path: Path) -> None:
    with (
        Client("http://127.0.0.1:9", timeout=5) as client,
        pytest.raises(ServiceUnavailable, match=r"127\.0\.0\.1:9"),
    ):
        client.network()
    with pytest.raises(ServiceUnavailable, match="cannot be reached"):
        LedgerService.open("postgresql://postgres@127.0.0.1:9/nowhere")


def test_mypy_checks_that_both_implement_the_protocol(tmp_path: Path) -> None:
    """The conformance is a static check: a class that breaks the protocol fails mypy."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        textwrap.dedent(
            """
            from offcash.api import Client
            from offcash.ledger import LedgerService
            from offcash.wallet import Operations, Settlement

            def local(x: LedgerService) -> Operations:
                return x

            def remote(x: Client) -> Operations:
                return x

            class Stale:
                def network(self) -> None: ...

            def stale(x: Stale) -> Settlement:
                return x  # line 16: not a Settlement
            """
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", str(probe)],
        cwd=ROOT,
        env={**os.environ, "MYPYPATH": str(ROOT / "src")},
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    # mypy's incremental cache may replay the error under the path of an earlier run's probe
    assert errors and all("probe.py:16: " in line for line in errors), done.stdout
