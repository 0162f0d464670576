"""Settlement benchmark (prints figures; not a test).

A receive-only terminal uploads a stream of N payments from many wallets (50 each); the
service verifies each with ``offcash.verification.verify_payment`` and settles it on SQLite and
on PostgreSQL (``OFFCASH_TEST_PG``, skipped if unreachable). Beside it: the machine's
verification ceiling, ``verify_payment`` on all cores in a process pool, measured in the same
run. Peak memory (max RSS) is printed after streams of 10,000 and N payments: payments are read
lazily from a file and settled in batches, so it must not grow with N.

    python benchmarks/settlement.py --payments 100000
"""

from __future__ import annotations

import argparse
import os
import resource
import struct
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from offcash.crypto.algorithms import SignatureAlgorithm
from offcash.domain.ids import WalletId
from offcash.domain.limits import DEFAULT_LIMITS
from offcash.domain.network import NetworkParams
from offcash.issuance import Bank, CentralBank
from offcash.ledger import LedgerService, checks
from offcash.ledger import schema as s
from offcash.ledger.authority import key_der
from offcash.ledger.db import normalize_url
from offcash.se.software import SoftwareSecureElement

T0 = 1_790_000_000
PER_WALLET = 50
_W: dict[str, object] = {}


def _make(args: tuple[bytes, bytes, bytes, str, int, int, bytes]) -> list[bytes]:
    """Worker: one payer wallet making ``count`` payments to ``terminal``."""
    root, bank_key, bank_cert, alg, count, seed, terminal = args
    cb = CentralBank(None, x509.load_der_x509_certificate(root))  # type: ignore[arg-type]
    bank = Bank(
        serialization.load_der_private_key(bank_key, None),  # type: ignore[arg-type]
        x509.load_der_x509_certificate(bank_cert),
    )
    params = NetworkParams("EUR", SignatureAlgorithm.from_name(alg))
    se = SoftwareSecureElement(SoftwareSecureElement.new_state(params, cb.certificate_der))
    wid = WalletId.random()
    se.enroll(
        bank.certify_wallet(se.csr(), wid, DEFAULT_LIMITS, 0, T0), [bank.certificate_der], [], T0
    )
    se.load(bank.voucher(wid, count * 100, "EUR", T0), T0)
    return [se.pay_to(WalletId(terminal), 1 + (i % 99), T0 + seed % 1000 + i) for i in range(count)]


def _init_verify(root: bytes, banks: list[bytes], alg: str) -> None:
    _W["trust"] = checks.SettlementTrust.of(root, banks)
    _W["params"] = NetworkParams("EUR", SignatureAlgorithm.from_name(alg))


def _verify(chunk: list[bytes]) -> int:
    trust, params = _W["trust"], _W["params"]
    for p in chunk:
        checks.payment(p, trust, params, None)  # type: ignore[arg-type]
    return len(chunk)


def _stream(path: str, limit: int) -> Iterator[bytes]:
    with open(path, "rb") as f:
        for _ in range(limit):
            head = f.read(4)
            if not head:
                return
            yield f.read(struct.unpack(">I", head)[0])


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--payments", type=int, default=100_000)
    ap.add_argument("--alg", default="p256", choices=["p256", "ed25519"])
    a = ap.parse_args()
    alg = SignatureAlgorithm.from_name(a.alg)
    cb = CentralBank.create("Bench Central Bank", alg, T0 - 86400)
    bank = cb.certify_bank("Bank A", T0 - 86400)
    cores = os.cpu_count() or 1
    terminal = WalletId.random()
    path = tempfile.mktemp(suffix=".payments")
    t = time.perf_counter()
    wallets = (a.payments + PER_WALLET - 1) // PER_WALLET
    jobs = [
        (
            cb.certificate_der,
            key_der(bank.key),
            bank.certificate_der,
            a.alg,
            PER_WALLET,
            i,
            terminal.raw,
        )
        for i in range(wallets)
    ]
    with open(path, "wb") as f, ProcessPoolExecutor(cores) as pool:
        for batch in pool.map(_make, jobs, chunksize=8):
            for p in batch:
                f.write(struct.pack(">I", len(p)) + p)
    print(
        f"generated {a.payments} payments from {wallets} wallets ({a.alg}) "
        f"in {time.perf_counter() - t:.1f}s",
        flush=True,
    )

    sample = list(_stream(path, min(a.payments, 20_000)))
    chunks = [sample[i : i + 500] for i in range(0, len(sample), 500)]
    with ProcessPoolExecutor(
        cores,
        initializer=_init_verify,
        initargs=(cb.certificate_der, [bank.certificate_der], a.alg),
    ) as pool:
        list(pool.map(_verify, chunks[:cores]))  # warm up
        t = time.perf_counter()
        n = sum(pool.map(_verify, chunks))
        ceiling = n / (time.perf_counter() - t)
    print(f"verification ceiling (verify_payment, {cores} cores): {ceiling:,.0f} payments/s")
    del sample, chunks

    pg = os.environ.get("OFFCASH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
    backends = ["sqlite"]
    try:
        with sa.create_engine(normalize_url(pg)).connect():
            backends.append("postgresql")
    except Exception as exc:
        print(f"postgresql skipped: {exc}")
    for name in backends:
        for n in sorted({min(10_000, a.payments), a.payments}):
            schema = None if name == "sqlite" else "bench_" + uuid.uuid4().hex[:8]
            url = f"sqlite:///{tempfile.mkdtemp()}/bench.db" if name == "sqlite" else pg
            ledger = LedgerService.open(url, schema=schema)
            ledger.install(NetworkParams("EUR", alg), cb, [bank])
            term_acct = ledger.open_account("Bank A", "shop")
            with ledger.engine.begin() as conn:  # the terminal the payments are addressed to
                conn.execute(
                    sa.insert(s.wallets).values(
                        id=terminal.raw, kind="terminal", bank="Bank A", account=term_acct
                    )
                )
            t = time.perf_counter()
            res = ledger.redeem(terminal, _stream(path, n), T0 + 2000)
            dt = time.perf_counter() - t
            assert res.settled == n, (res.settled, res.refused[:3])
            assert ledger.balance(term_acct) == res.amount and ledger.audit().balanced
            print(
                f"{name:10s} settled {n:>7,} payments in {dt:6.1f}s: {n / dt:8,.0f} payments/s "
                f"({n / dt / ceiling:.0%} of ceiling); max RSS {_maxrss_mb():.0f} MB",
                flush=True,
            )
            ledger.engine.dispose()
            if schema:
                with sa.create_engine(normalize_url(pg)).begin() as c:
                    c.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    os.unlink(path)


if __name__ == "__main__":
    sys.exit(main())
