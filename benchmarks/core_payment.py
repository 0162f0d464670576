"""Offline payment throughput against the crypto floor, for P-256 and Ed25519.

Prints, per algorithm:
- the crypto floor: what one payment needs from ``cryptography``, timed raw: the payer signs the
  payment, the payee verifies the wallet certificate and the payment, and signs the receipt
  (2 signatures + 2 verifications);
- the full offline payment (request, pay, receive with receipt) with both SE states in memory,
  "cold" (the payee verifies the payer's certificate on every payment, as for a stranger) and
  "warm" (a repeat payer: the certificate's signature was verified once; validity and CRL are
  still checked every time), and with both states sealed and durably persisted (fsync) after
  every operation;
- payments/s, the ratio to the floor, and the payment's size in bytes.

Run: ``python benchmarks/core_payment.py [--payments N]``. Not a test: figures vary with the
machine; compare the ratios, which are measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import cryptography

from offcash.crypto.algorithms import SignatureAlgorithm, sign, verify
from offcash.domain.ids import WalletId
from offcash.domain.limits import Limits
from offcash.domain.network import NetworkParams
from offcash.issuance import Bank, CentralBank
from offcash.protocol.messages import parse_payment, parse_report
from offcash.se.software import SoftwareSecureElement
from offcash.se.storage import SealedFile

NOW = 1_790_000_000
BIG = Limits(10**12, 10**9, 10**6, 10**12, 10**6)
SYNC_EVERY = 100


def crypto_floor(alg: SignatureAlgorithm, seconds: float) -> float:
    """Payments/s if a payment cost only its 2 signatures and 2 verifications."""
    payer, bank, payee = alg.generate(), alg.generate(), alg.generate()
    message = b"x" * 400
    cert_sig, pay_sig = sign(bank, message), sign(payer, message)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        sig = sign(payer, message)
        verify(bank.public_key(), cert_sig, message)
        verify(payer.public_key(), pay_sig, message)
        sign(payee, message + sig)
        n += 1
    return n / (time.perf_counter() - start)


def make_wallet(
    cb: CentralBank, bank: Bank, params: NetworkParams, store_dir: Path | None, name: str
) -> SoftwareSecureElement:
    state = SoftwareSecureElement.new_state(params, cb.certificate_der)
    store = None
    if store_dir is not None:
        store = SealedFile.create(store_dir / f"{name}.se", "123456", state, scrypt_n=2**10)
    se = SoftwareSecureElement(state, store)
    se.enroll(
        bank.certify_wallet(se.csr(), WalletId.random(), BIG, 0, NOW),
        [bank.certificate_der],
        [],
        NOW,
    )
    se.load(bank.voucher(se.status(NOW).wallet_id, 10**11, params.currency, NOW), NOW)  # type: ignore[arg-type]
    return se


def sync(se: SoftwareSecureElement, bank: Bank, now: int) -> None:
    report = parse_report(se.sync_upload(now).report)
    wallet = se.status(now).wallet_id
    assert wallet is not None
    cert = bank.certify_wallet(se.csr(), wallet, BIG, report.counter, now)
    se.apply_sync(bank.acknowledge(report, wallet, now), cert, [bank.certificate_der], [], now)


def payments(
    alg: SignatureAlgorithm, count: int, store_dir: Path | None, *, cache: bool
) -> tuple[float, int]:
    """Payments/s for ``count`` request-pay-receive rounds, and the size of one payment.

    With ``cache`` False the payee re-verifies the payer's certificate on every payment (as for
    a payer it has never seen); with True it verifies each distinct certificate once."""
    params = NetworkParams("EUR", alg)
    cb = CentralBank.create("Bench Central Bank", alg, NOW - 10)
    bank = cb.certify_bank("Bench Bank", NOW - 10)
    alice = make_wallet(cb, bank, params, store_dir, "alice")
    bob = make_wallet(cb, bank, params, store_dir, "bob")
    size, elapsed, now = 0, 0.0, NOW
    for done in range(0, count, SYNC_EVERY):
        batch = min(SYNC_EVERY, count - done)
        bob.trust.certificate_cache = 4096 if cache else 0
        start = time.perf_counter()
        for _ in range(batch):
            now += 1
            payment = alice.pay(bob.request(1234, now, reference="INV-0001"), now)
            bob.receive(payment, now)
        elapsed += time.perf_counter() - start
        size = len(payment)
        sync(alice, bank, now)
        sync(bob, bank, now)
    assert parse_payment(payment).amount == 1234
    return count / elapsed, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=2000)
    parser.add_argument("--durable-payments", type=int, default=300)
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores,"
        f" python {sys.version.split()[0]}, cryptography {cryptography.__version__}"
    )
    print(f"{'alg':8} {'mode':10} {'payments/s':>11} {'x floor':>8} {'bytes':>6}")
    for alg in SignatureAlgorithm:
        floor = crypto_floor(alg, 1.5)
        print(f"{alg.short:8} {'floor':10} {floor:11.0f} {1.0:8.2f} {'':>6}  (2 sign + 2 verify)")
        for mode, cache in (("cold", False), ("warm", True)):
            rate, size = payments(alg, args.payments, None, cache=cache)
            print(f"{alg.short:8} {'mem ' + mode:10} {rate:11.0f} {floor / rate:8.2f} {size:6d}")
        with tempfile.TemporaryDirectory() as tmp:
            rate, size = payments(alg, args.durable_payments, Path(tmp), cache=True)
        print(f"{alg.short:8} {'durable':10} {rate:11.0f} {floor / rate:8.2f} {size:6d}")


if __name__ == "__main__":
    main()
