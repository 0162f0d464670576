"""What persisting the software SE's state costs per operation, by the length of its log.

Prints, for a wallet whose log holds about 10, 100 and 1,000 entries (one-way P-256 payments):
- the persist each operation makes now (the delta computed, sealed, written at the end of the
  file and fsynced: ``SealedFile.append``), per operation, and the bytes it adds to the file;
- the whole-state save every operation made before (the state encoded, sealed, written to a
  temporary file, fsynced and renamed, the folder fsynced: ``SealedFile.save``), per
  operation, and the bytes it writes; the SE still makes one when the log is dropped at a sync, when
  expired memories are swept (at most hourly), and when the journal outgrows the base.

With ``--no-fsync`` every fsync is skipped: what is left is the CPU and the write, which is
what grows with the log (fsync's cost is the disk's).

Run: ``python benchmarks/se_storage.py [--ops N] [--no-fsync]``. Not a test: the figures
depend on the disk (fsync dominates); compare the two columns, measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from offcash.crypto.algorithms import SignatureAlgorithm
from offcash.domain.ids import WalletId
from offcash.domain.limits import Limits
from offcash.domain.network import NetworkParams
from offcash.issuance import CentralBank
from offcash.se.software import SoftwareSecureElement
from offcash.se.storage import SealedFile

NOW = 1_790_000_000
BIG = Limits(10**12, 10**9, 10**6, 10**12, 10**6)


def measure(folder: Path, entries: int, ops: int) -> tuple[float, int, float, int]:
    """Per-operation milliseconds and bytes of the appends, then of whole-state saves, at a
    log of ``entries``."""
    alg = SignatureAlgorithm.P256
    params = NetworkParams("EUR", alg)
    cb = CentralBank.create("Bench Central Bank", alg, NOW - 10)
    bank = cb.certify_bank("Bench Bank", NOW - 10)
    state = SoftwareSecureElement.new_state(params, cb.certificate_der)
    store = SealedFile.create(folder / f"w{entries}.se", "123456", state, scrypt_n=2**10)
    se = SoftwareSecureElement(state, store)
    se.enroll(
        bank.certify_wallet(se.csr(), WalletId.random(), BIG, 0, NOW),
        [bank.certificate_der],
        [],
        NOW,
    )
    wid = se.status(NOW).wallet_id
    assert wid is not None
    se.load(bank.voucher(wid, 10**11, "EUR", NOW), NOW)
    payee = WalletId.random()
    while se.status(NOW).log_entries < entries - ops // 2:  # the ops measured centred on it
        se.pay_to(payee, 1, NOW, reference="INV-0001")
    persist = se._commit  # what each operation persists now: a delta (or a whole state)
    spent, written, sizes = 0.0, 0, store.path.stat().st_size

    def timed_persist() -> None:
        nonlocal spent
        start = time.perf_counter()
        persist()
        spent += time.perf_counter() - start

    se._commit = timed_persist  # type: ignore[method-assign]
    for _ in range(ops):
        se.pay_to(payee, 1, NOW, reference="INV-0001")
        size = store.path.stat().st_size
        written += max(size - sizes, 0)
        sizes = size
    before = time.perf_counter()
    for _ in range(ops):  # what every operation persisted before: the whole state
        whole = se._s.encode()
        store.save(whole)
    return (
        1000 * spent / ops,
        written // ops,
        1000 * (time.perf_counter() - before) / ops,
        len(whole),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=20)
    parser.add_argument("--sizes", type=int, nargs="*", default=[10, 100, 1000])
    parser.add_argument("--no-fsync", action="store_true", help="skip every fsync")
    args = parser.parse_args()
    if args.no_fsync:
        os.fsync = lambda fd: None
    print(
        f"{'log entries':>11} {'append ms/op':>13} {'bytes':>7}"
        f" {'whole save ms/op':>17} {'bytes':>8}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for entries in args.sizes:
            append_ms, append_bytes, save_ms, save_bytes = measure(Path(tmp), entries, args.ops)
            print(
                f"{entries:11d} {append_ms:13.2f} {append_bytes:7d} {save_ms:17.2f} {save_bytes:8d}"
            )
    print("append: the delta each operation computes, seals, writes and fsyncs now; whole save:")
    print("the state encoded, sealed and atomically replaced (what every operation did before)")


if __name__ == "__main__":
    main()
