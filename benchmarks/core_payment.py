"""Offline payment throughput against the crypto floor, for every signature algorithm.

Prints, per algorithm:
- the full offline payment (request, pay, receive with receipt) with both SE states in memory,
  "cold" (the payee verifies the payer's certificate on every payment, as for a stranger) and
  "warm" (a repeat payer: the certificate's signature was verified once; validity and CRL are
  still checked every time), and with both states sealed and durably persisted (fsync) after
  every operation;
- payments/s, the ratio of the payments' time to the crypto floor's, and the payment's size;
- the crypto floor: exactly the cryptography one payment needs, called raw on
  ``cryptography`` (no offcash wrapper, one ``ECDSA(SHA256())`` object), timed in batches
  interleaved with the payments' batches: warm, the payer's signature, the payee's
  verification of it and the payee's receipt signature (2 signatures + 1 verification); cold,
  also the bank's signature over the payer's certificate verified and the payer's public key
  loaded from the certificate (2 signatures + 2 verifications + 1 key load).

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
from collections.abc import Callable
from pathlib import Path

import cryptography
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from offcash.crypto.algorithms import SignatureAlgorithm, spki
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


def crypto_floor(alg: SignatureAlgorithm, *, cold: bool) -> Callable[[], None]:
    """One payment's cryptography, called raw on ``cryptography`` (no offcash wrapper; for
    ECDSA one ``ECDSA(SHA256())`` object), exactly what the payment below needs: the payer
    signs the payment; the payee verifies the payer's signature and signs the receipt (2
    signatures + 1 verification, over payment-sized messages). ``cold`` adds the check of a
    stranger's certificate: the bank's signature over it verified, and the payer's public key
    loaded from its SubjectPublicKeyInfo (the point checked on the curve); the bank's own
    certificate is a trust anchor the payee validated once, at enrolment."""
    payer, bank, payee = alg.generate(), alg.generate(), alg.generate()
    bank_public = bank.public_key()
    payer_spki = spki(payer.public_key())
    message = b"x" * 400
    if isinstance(payer, ec.EllipticCurvePrivateKey):
        ecdsa = ec.ECDSA(hashes.SHA256())
        assert isinstance(bank, ec.EllipticCurvePrivateKey)
        assert isinstance(payee, ec.EllipticCurvePrivateKey)
        cert_sig, pay_sig = bank.sign(message, ecdsa), payer.sign(message, ecdsa)
        payer_public = payer.public_key()

        def ecdsa_cold() -> None:
            payer.sign(message, ecdsa)
            bank_public.verify(cert_sig, message, ecdsa)  # type: ignore[call-arg]
            load_der_public_key(payer_spki).verify(pay_sig, message, ecdsa)  # type: ignore[call-arg]
            payee.sign(message, ecdsa)

        def ecdsa_warm() -> None:
            payer.sign(message, ecdsa)
            payer_public.verify(pay_sig, message, ecdsa)
            payee.sign(message, ecdsa)

        return ecdsa_cold if cold else ecdsa_warm
    cert_sig, pay_sig = bank.sign(message), payer.sign(message)  # type: ignore[call-arg]
    plain_public = payer.public_key()

    def plain_cold() -> None:
        payer.sign(message)  # type: ignore[call-arg]
        bank_public.verify(cert_sig, message)  # type: ignore[call-arg]
        load_der_public_key(payer_spki).verify(pay_sig, message)  # type: ignore[call-arg]
        payee.sign(message)  # type: ignore[call-arg]

    def plain_warm() -> None:
        payer.sign(message)  # type: ignore[call-arg]
        plain_public.verify(pay_sig, message)  # type: ignore[call-arg]
        payee.sign(message)  # type: ignore[call-arg]

    return plain_cold if cold else plain_warm


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
) -> tuple[float, float, int]:
    """Payments/s for ``count`` request-pay-receive rounds, the ratio of their time to the raw
    crypto floor's for as many rounds (interleaved: each batch of payments is timed right
    after as many floor rounds, so both see the same machine), and one payment's size.

    With ``cache`` False the payee re-verifies the payer's certificate on every payment (as for
    a payer it has never seen); with True it verifies each distinct certificate once."""
    params = NetworkParams("EUR", alg)
    cb = CentralBank.create("Bench Central Bank", alg, NOW - 10)
    bank = cb.certify_bank("Bench Bank", NOW - 10)
    alice = make_wallet(cb, bank, params, store_dir, "alice")
    bob = make_wallet(cb, bank, params, store_dir, "bob")
    floor_round = crypto_floor(alg, cold=not cache)
    size, elapsed, floor_elapsed, now = 0, 0.0, 0.0, NOW
    for done in range(0, count, SYNC_EVERY):
        batch = min(SYNC_EVERY, count - done)
        bob.trust.certificate_cache = 4096 if cache else 0
        start = time.perf_counter()
        for _ in range(batch):
            floor_round()
        floor_elapsed += time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(batch):
            now += 1
            payment = alice.pay(bob.request(1234, now, reference="INV-0001"), now)
            bob.receive(payment, now)
        elapsed += time.perf_counter() - start
        size = len(payment)
        # a week passes before the sync: the payer's memory of paid requests and the payee's
        # of payments seen empty out (each holds at most MAX_PAID_REQUESTS live entries)
        now += params.max_payment_age + params.clock_skew + 1
        sync(alice, bank, now)
        sync(bob, bank, now)
    assert parse_payment(payment).amount == 1234
    return count / elapsed, elapsed / floor_elapsed, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=2000)
    parser.add_argument("--durable-payments", type=int, default=300)
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores,"
        f" python {sys.version.split()[0]}, cryptography {cryptography.__version__}"
    )
    print(f"{'alg':10} {'mode':10} {'payments/s':>11} {'x floor':>8} {'bytes':>6}")
    for alg in SignatureAlgorithm:
        for mode, cache in (("cold", False), ("warm", True)):
            rate, ratio, size = payments(alg, args.payments, None, cache=cache)
            print(f"{alg.short:10} {'mem ' + mode:10} {rate:11.0f} {ratio:8.2f} {size:6d}")
        with tempfile.TemporaryDirectory() as tmp:
            rate, ratio, size = payments(alg, args.durable_payments, Path(tmp), cache=True)
        print(f"{alg.short:10} {'durable':10} {rate:11.0f} {ratio:8.2f} {size:6d}")
    print("x floor: time of the payments / time of as many raw crypto rounds with cryptography,")
    print("no wrapper (warm and durable: 2 sign + 1 verify; cold: 2 sign + 2 verify + the")
    print("payer's key loaded), interleaved batch by batch in the same run")


if __name__ == "__main__":
    main()
