"""Settlement benchmark (prints figures; not a test).

A receive-only terminal uploads a stream of N payments from many wallets (50 each); the
service verifies each with ``offcash.verification.verify_payment`` (in its process pool, one
worker per core) and settles it on SQLite and on PostgreSQL (``OFFCASH_TEST_PG``, skipped if
unreachable). Beside it, measured in the same run: the machine's verification ceiling, i.e.
``verify_payment`` alone on all cores (one process per core, each verifying payments it already
holds in memory: no inter-process traffic, no database), and for reference the raw signature
verification alone (ECDSA/EdDSA over the to-be-signed bytes, keys parsed beforehand). The
target is settlement >= 50% of the ``verify_payment`` ceiling. Peak memory (max RSS of the
service process) is printed after streams of 10,000 and N payments: payments are read lazily
from a file and settled in pipelined batches, so it must not grow with N.

    python benchmarks/settlement.py --payments 100000
"""

from __future__ import annotations

import argparse
import os
import platform
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

from offcash.crypto.algorithms import SignatureAlgorithm, verify
from offcash.domain.ids import WalletId
from offcash.domain.limits import DEFAULT_LIMITS
from offcash.domain.network import NetworkParams
from offcash.issuance import Bank, CentralBank
from offcash.ledger import LedgerService, checks
from offcash.ledger import schema as s
from offcash.ledger.authority import key_der
from offcash.ledger.db import normalize_url
from offcash.protocol import messages as m
from offcash.se.software import SoftwareSecureElement
from offcash.verification import verify_payment

T0 = 1_790_000_000
PER_WALLET = 50
NOW = T0 + 2000  # settlement time
PG = os.environ.get("OFFCASH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
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


def _init_ceiling(path: str, n: int, root: bytes, banks: list[bytes], alg: str) -> None:
    _W["sample"] = list(_stream(path, n))
    _W["trust"] = checks.settlement_trust(root, banks)
    _W["params"] = NetworkParams("EUR", SignatureAlgorithm.from_name(alg))
    for p in _W["sample"][::PER_WALLET]:  # type: ignore[index]
        _verify_one(p)  # parse each wallet certificate once, as the service's cache does
    envs = [m.parse_payment(p).envelope for p in _W["sample"]]  # type: ignore[attr-defined]
    trust = _W["trust"]
    _W["raw"] = [
        (
            trust.wallet_certificate(e.certificate_der, None).public_key,
            e.signature,
            e.to_be_signed(),
        )  # type: ignore[attr-defined]
        for e in envs
    ]


def _verify_one(p: bytes) -> None:
    verify_payment(p, trust=_W["trust"], params=_W["params"], now=NOW)  # type: ignore[arg-type]


def _ceiling_chunk(span: tuple[int, int]) -> int:
    """verify_payment over sample[a:b] (already in this worker's memory)."""
    sample: list[bytes] = _W["sample"]  # type: ignore[assignment]
    for p in sample[span[0] : span[1]]:
        _verify_one(p)
    return span[1] - span[0]


def _raw_chunk(span: tuple[int, int]) -> int:
    """The signature verification alone over sample[a:b]."""
    for key, sig, tbs in _W["raw"][span[0] : span[1]]:  # type: ignore[index]
        assert verify(key, sig, tbs)
    return span[1] - span[0]


def _rate(pool: ProcessPoolExecutor, fn: object, n: int) -> float:
    spans = [(i, min(i + 250, n)) for i in range(0, n, 250)]
    t = time.perf_counter()
    done = sum(pool.map(fn, spans))  # type: ignore[arg-type]
    return done / (time.perf_counter() - t)


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

    n_sample = min(a.payments, 20_000)
    cpu = platform.processor() or platform.machine()
    with ProcessPoolExecutor(
        cores,
        initializer=_init_ceiling,
        initargs=(path, n_sample, cb.certificate_der, [bank.certificate_der], a.alg),
    ) as ceiling_pool:
        _rate(ceiling_pool, _ceiling_chunk, min(n_sample, 1000 * cores))  # warm up every worker

        def ceiling() -> tuple[float, float]:
            """(verify_payment, raw signature) rates on all cores, now (the pool is idle
            while settlement runs)."""
            vp = _rate(ceiling_pool, _ceiling_chunk, n_sample)
            raw = _rate(ceiling_pool, _raw_chunk, n_sample)
            print(
                f"  ceiling on {cores} cores ({cpu}): verify_payment {vp:,.0f} payments/s; "
                f"raw signature verification alone {raw:,.0f}/s",
                flush=True,
            )
            return vp, raw

        before = ceiling()
        for name in _backends():
            for n in sorted({min(10_000, a.payments), a.payments}):
                rate = _settle(name, n, path, cb, bank, terminal, alg)
                after = ceiling()
                # the ratio is to the higher of the ceilings measured just before and after
                vp, raw = max(before[0], after[0]), max(before[1], after[1])
                print(
                    f"{name:10s} settled {n:>7,} payments: {rate:8,.0f} payments/s = "
                    f"{rate / vp:.0%} of the verify_payment ceiling ({rate / raw:.0%} of raw "
                    f"signature verification); max RSS {_maxrss_mb():.0f} MB",
                    flush=True,
                )
                before = after
    os.unlink(path)


def _backends() -> list[str]:
    backends = ["sqlite"]
    try:
        with sa.create_engine(normalize_url(PG)).connect():
            backends.append("postgresql")
    except Exception as exc:
        print(f"postgresql skipped: {exc}")
    return backends


def _settle(
    name: str,
    n: int,
    path: str,
    cb: CentralBank,
    bank: Bank,
    terminal: WalletId,
    alg: SignatureAlgorithm,
) -> float:
    """Settle the first ``n`` payments of the file on a fresh ledger; payments/s."""
    schema = None if name == "sqlite" else "bench_" + uuid.uuid4().hex[:8]
    url = f"sqlite:///{tempfile.mkdtemp()}/bench.db" if name == "sqlite" else PG
    ledger = LedgerService.open(url, schema=schema)
    ledger.install(NetworkParams("EUR", alg), cb, [bank])
    ledger.start_verifiers()  # a running service's pool is up already
    term_acct = ledger.open_account("Bank A", "shop")
    with ledger.engine.begin() as conn:  # the terminal the payments are addressed to
        conn.execute(
            sa.insert(s.wallets).values(
                id=terminal.raw, kind="terminal", bank="Bank A", account=term_acct
            )
        )
    t = time.perf_counter()
    res = ledger.redeem(terminal, _stream(path, n), NOW)
    dt = time.perf_counter() - t
    assert res.settled == n, (res.settled, res.refused[:3])
    assert ledger.balance(term_acct) == res.amount and ledger.audit().balanced
    print(f"{name:10s} settled {n:>7,} payments in {dt:6.1f}s", flush=True)
    ledger.close()
    if schema:
        with sa.create_engine(normalize_url(PG)).begin() as c:
            c.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    return n / dt


if __name__ == "__main__":
    sys.exit(main())
