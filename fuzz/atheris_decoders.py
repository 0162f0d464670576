"""Coverage-guided fuzzing of every offcash decoder with atheris (libFuzzer for Python).

    python fuzz/atheris_decoders.py -max_total_time=300          # all decoders, 5 minutes
    python fuzz/atheris_decoders.py --target se_state -runs=100000
    python fuzz/atheris_decoders.py --list                       # the target names

The first byte of an input picks the decoder (``tests/fuzz/fuzzkit.py``, ``TARGETS``), the rest
is its input. libFuzzer starts from a corpus of valid inputs made by a real pilot network (a
payment, a receipt, a voucher, a sync report and acknowledgement, a secure element's state, a
terminal's state, certificates, CRLs, text and QR forms), written into the corpus directory
given (default ``fuzz/corpus``). Half of the mutations are structure-aware: the input is decoded as
CBOR, one node of the tree is replaced (a boundary integer, another type, a deleted or added
item), and the tree is encoded again deterministically, so it passes the strict decoder and
reaches the checks behind it; the other half are libFuzzer's byte mutations.

The property: only ``offcash.errors.OffcashError`` escapes a decoder. Any other exception is a
crash; libFuzzer saves the input as ``fuzz/artifacts/crash-<sha1>`` (replay it by passing the
file instead of a corpus directory). At exit
the number of inputs run per target is printed as JSON on stderr (docs/RELIABILITY.md).
Needs ``pip install -e ".[fuzz]"``.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import atheris

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "fuzz")]

with atheris.instrument_imports(include=["offcash"]):
    import cbor2

    from offcash.encoding import cbor
    from offcash.errors import OffcashError

    import fuzzkit

TARGETS = fuzzkit.targets()
NAMES = sorted(TARGETS)
RUNS: Counter[str] = Counter()
BOUNDARY: list[Any] = [*fuzzkit.BOUNDARY_INTS, None, True, b"", "", [], {}, bytes(32), "EUR"]


#: What the first byte of an input selects (``--target`` makes every byte select one target).
SELECT = list(NAMES)


def _selected(data: bytes) -> tuple[str, bytes]:
    if not data:
        return SELECT[0], b""
    return SELECT[data[0] % len(SELECT)], data[1:]


#: ``-max_total_time`` and ``-runs`` are enforced here rather than by libFuzzer, which exits
#: without running Python's exit handlers (so the per-target counts would be lost).
LIMITS = {"deadline": float("inf"), "runs": float("inf")}


def test_one_input(data: bytes) -> None:
    name, payload = _selected(data)
    RUNS[name] += 1
    if RUNS.total() > LIMITS["runs"] or time.monotonic() > LIMITS["deadline"]:
        report()
        os._exit(0)
    with contextlib.suppress(OffcashError):
        TARGETS[name](payload)


def _loads(data: bytes) -> Any:
    """``data`` decoded as CBOR, leniently. Invalid UTF-8 becomes lone surrogates (which the
    re-encoding refuses) rather than an error: cbor2's C decoder leaks memory when it raises on
    invalid UTF-8 (agronholm/cbor2#257), and this runs on every input, CBOR or not."""
    return cbor2.loads(data, str_errors="surrogateescape")


def _mutate_tree(value: Any, rng: random.Random) -> Any:
    """``value`` with one node replaced, deleted or added (a copy)."""
    if isinstance(value, list) and value and rng.random() < 0.7:
        i = rng.randrange(len(value))
        out = list(value)
        roll = rng.random()
        if roll < 0.15:
            del out[i]
        elif roll < 0.25:
            out.insert(i, rng.choice(BOUNDARY))
        else:
            out[i] = _mutate_tree(out[i], rng)
        return out
    if isinstance(value, dict) and value and rng.random() < 0.7:
        key = rng.choice(list(value))
        out = dict(value)
        roll = rng.random()
        if roll < 0.15:
            del out[key]
        elif roll < 0.25:
            out[rng.choice([-65539, 0, 8, 99, "x"])] = rng.choice(BOUNDARY)
        else:
            out[key] = _mutate_tree(out[key], rng)
        return out
    if isinstance(value, cbor2.CBORTag):
        return cbor2.CBORTag(value.tag, _mutate_tree(value.value, rng))
    if isinstance(value, bytes) and value and rng.random() < 0.5:
        try:
            return cbor.encode(_mutate_tree(_loads(value), rng))  # CBOR inside a bstr
        except Exception:
            pass
    if isinstance(value, bytes) and value:
        i = rng.randrange(len(value))
        return value[:i] + bytes([rng.randrange(256)]) + value[i + 1 :]
    return rng.choice(BOUNDARY)


def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    if data and rng.random() < 0.5:
        _name, payload = _selected(data)
        try:
            tree = _loads(payload)
            mutated = cbor.encode(_mutate_tree(tree, rng))
            if len(mutated) < max_size:
                return data[:1] + mutated
        except Exception:
            pass
    return atheris.Mutate(data, max_size)


def write_corpus(directory: Path, only: str | None) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, seeds in fuzzkit.corpus().seeds.items():
        if only and name != only:
            continue
        for i, seed in enumerate(seeds):
            (directory / f"{name}-{i}").write_bytes(bytes([NAMES.index(name)]) + seed)


def report() -> None:
    total = sum(RUNS.values())
    print(json.dumps({"inputs": total, "per_target": dict(sorted(RUNS.items()))}), file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--target", choices=NAMES)
    parser.add_argument("--list", action="store_true")
    ours, libfuzzer = parser.parse_known_args()
    if ours.list:
        print("\n".join(NAMES))
        return
    inputs = [a for a in libfuzzer if not a.startswith("-")]
    if not inputs:
        inputs.append(str(ROOT / "fuzz" / "corpus"))
        libfuzzer.append(inputs[0])
    if not Path(inputs[0]).is_file():  # a corpus directory, not a crash file to replay
        write_corpus(Path(inputs[0]), ours.target)
    if not any(a.startswith("-artifact_prefix=") for a in libfuzzer):
        (ROOT / "fuzz" / "artifacts").mkdir(exist_ok=True)
        libfuzzer.append(f"-artifact_prefix={ROOT / 'fuzz' / 'artifacts'}/")
    if ours.target:
        SELECT[:] = [ours.target]
    for arg in list(libfuzzer):
        flag, _, value = arg.partition("=")
        if flag in ("-max_total_time", "-runs") and value:
            libfuzzer.remove(arg)
            if flag == "-runs":
                LIMITS["runs"] = int(value)
            else:
                LIMITS["deadline"] = time.monotonic() + float(value)
    atexit.register(report)  # a crash ends the run through Python: the counts are printed too
    atheris.Setup([sys.argv[0], *libfuzzer], test_one_input, custom_mutator=custom_mutator)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
