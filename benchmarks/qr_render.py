"""QR rendering of a payment against zxing-cpp's own writer, per algorithm.

For one payment of each algorithm, in interleaved rounds:
- the floor: zxing-cpp's writer alone making the same frames' codes (``create_barcode`` and
  ``to_image``, what any renderer must at least do);
- offcash: ``render_png`` (frames, codes, quiet zones, the grid image, PNG encoding);
- for reference, segno with its automatic mask choice (offcash's writer until 2026-11).

Prints milliseconds per payment and offcash's ratio to the floor (target <= 2x), and checks
that the PNG reads back. Run: ``python benchmarks/qr_render.py [--rounds N] [--json]``. Not a
test: figures vary with the machine; compare the ratios, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import zxingcpp

from offcash.crypto.algorithms import SignatureAlgorithm
from offcash.transports import qr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from harness import T0, PilotNetwork


def _payment(alg: SignatureAlgorithm) -> bytes:
    net = PilotNetwork.create(alg)
    payer, payee = net.wallet(1000), net.wallet()
    return payer.pay(payee.request(250, T0, reference="inv 1"), T0)


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(alg: SignatureAlgorithm, rounds: int) -> dict[str, float | int | str]:
    """Median milliseconds per payment of the floor, offcash and segno, in interleaved rounds."""
    import segno  # only for the reference column

    data = _payment(alg)
    frames = qr.encode_frames(data)

    def floor() -> None:
        for frame in frames:
            code = zxingcpp.create_barcode(frame, zxingcpp.BarcodeFormat.QRCode, ec_level="M")
            code.to_image(scale=qr.DEFAULT_SCALE)

    def offcash() -> None:
        qr.render_png(data)

    def with_segno() -> None:
        for frame in frames:
            segno.make(frame, error="m", mode="byte", micro=False).matrix  # noqa: B018

    assert qr.decode_image(qr.render_png(data)) == data
    samples: dict[str, list[float]] = {"floor": [], "offcash": [], "segno": []}
    for _ in range(rounds):
        samples["floor"].append(_timed(floor))
        samples["offcash"].append(_timed(offcash))
        samples["segno"].append(_timed(with_segno))
    ms = {k: 1000 * statistics.median(v) for k, v in samples.items()}
    return {
        "algorithm": alg.short,
        "payment_bytes": len(data),
        "frames": len(frames),
        "floor_ms": round(ms["floor"], 2),
        "offcash_ms": round(ms["offcash"], 2),
        "segno_codes_ms": round(ms["segno"], 2),
        "ratio": round(ms["offcash"] / ms["floor"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = [measure(alg, args.rounds) for alg in SignatureAlgorithm]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(
        f"{'algorithm':<10} {'bytes':>6} {'frames':>6} {'zxing writer':>13} {'offcash':>9} "
        f"{'ratio':>6} {'segno (codes only)':>19}"
    )
    for r in rows:
        print(
            f"{r['algorithm']:<10} {r['payment_bytes']:>6} {r['frames']:>6} "
            f"{r['floor_ms']:>10} ms {r['offcash_ms']:>6} ms {r['ratio']:>5}x "
            f"{r['segno_codes_ms']:>16} ms"
        )


if __name__ == "__main__":
    main()
