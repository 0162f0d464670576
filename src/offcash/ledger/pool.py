"""Parallel verification for settlement: the core's pure verifiers in a pool of processes.

Theory of operation: verifying a payment (``checks.redeemable``, i.e. ``verify_payment``) is pure
CPU work on bytes, while settling it is database work. ``VerifierPool`` runs the verification in
worker processes (started with ``spawn``: no inherited database connections or threads), each
of which rebuilds the settlement ``TrustStore`` once, from the root and bank certificates, in its
initializer. ``VerifierPool.redeemable(batches, ...)`` is a pipeline: it keeps the next
``depth`` batches of an upload in the workers while the caller writes the current one to the
database, and yields each batch with its results in upload order. At most ``depth + 1`` batches
are held, so memory does not grow with the length of the upload stream.

The pool changes where a payment is verified, not what happens to it: the workers return exactly
what the inline path computes (the same function), and every settlement rule (exactly once,
double spends, refusals) is applied afterwards by the caller, in its transactions.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from offcash.crypto.trust import TrustStore
from offcash.domain.ids import WalletId
from offcash.domain.network import NetworkParams
from offcash.ledger import checks
from offcash.ledger.settle import Spend

#: Batches verified ahead of the one being written.
DEPTH = 2
_TrustKey = tuple[bytes, tuple[bytes, ...], tuple[Any, ...]]
_worker: dict[str, object] = {}


def trust_key(root: bytes, banks: Iterable[bytes], params: NetworkParams) -> _TrustKey:
    """What a worker needs to rebuild the trust store and parameters (picklable)."""
    return (root, tuple(banks), tuple(params.to_cbor()))


def _init(key: _TrustKey) -> None:
    root, banks, params = key
    _worker["trust"] = checks.settlement_trust(root, list(banks))
    _worker["params"] = NetworkParams.from_cbor(list(params), "params")


def _redeemable(chunk: list[bytes], terminal: bytes, now: int) -> list[Spend | checks.Refused]:
    trust: TrustStore = _worker["trust"]  # type: ignore[assignment]
    params: NetworkParams = _worker["params"]  # type: ignore[assignment]
    payee = WalletId(terminal)
    return [checks.redeemable(d, trust, params, payee, now) for d in chunk]


def with_message(result: Spend | checks.Refused, data: bytes) -> Spend | checks.Refused:
    """Put the signed message back into a verified spend (workers do not send it back)."""
    if not isinstance(result, Spend):
        return result
    r = result
    return Spend(
        r.payer, r.counter, r.digest, r.kind, r.payee, r.amount, r.time, r.payer_bank, data
    )


class VerifierPool:
    """A pool of verifying processes for one network's trust material (see the module doc)."""

    def __init__(self, key: _TrustKey, workers: int | None = None, depth: int = DEPTH) -> None:
        self.key = key
        self.workers = workers or os.cpu_count() or 1
        self.depth = depth
        self._pool = ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init,
            initargs=(key,),
        )

    def redeemable(
        self, batches: Iterable[list[bytes]], terminal: WalletId, now: int
    ) -> Iterator[tuple[list[bytes], list[Spend | checks.Refused]]]:
        """``checks.redeemable`` of every payment, batch by batch, pipelined (in order)."""
        pending: deque[tuple[list[bytes], list[Future[list[Spend | checks.Refused]]]]] = deque()
        try:
            for batch in batches:
                step = max(1, -(-len(batch) // self.workers))
                futures = [
                    self._pool.submit(_redeemable, batch[i : i + step], terminal.raw, now)
                    for i in range(0, len(batch), step)
                ]
                pending.append((batch, futures))
                if len(pending) > self.depth:
                    yield self._collect(*pending.popleft())
            while pending:
                yield self._collect(*pending.popleft())
        finally:
            for _, futures in pending:
                for f in futures:
                    f.cancel()

    @staticmethod
    def _collect(
        batch: list[bytes], futures: list[Future[list[Spend | checks.Refused]]]
    ) -> tuple[list[bytes], list[Spend | checks.Refused]]:
        results = [r for f in futures for r in f.result()]
        return batch, [with_message(r, d) for r, d in zip(results, batch, strict=True)]

    def start(self) -> None:
        """Start every worker and wait until each has built its trust store."""
        for f in [self._pool.submit(_redeemable, [], bytes(12), 0) for _ in range(self.workers)]:
            f.result()

    def close(self) -> None:
        """Stop the workers."""
        self._pool.shutdown(wait=True, cancel_futures=True)
