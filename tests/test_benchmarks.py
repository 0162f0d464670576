"""Every benchmark still runs: each is started as a script, at a tiny size, and must finish and
print its figures. No figure is checked (timings belong to the benchmarks, not to tests); this
only keeps them from rotting as the code they drive changes. They run with no ``offcash`` command on
``PATH``: a benchmark reaches the CLI through ``sys.executable -m offcash``, so it works in a venv
that is not activated."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

RUNS = {
    "explain_hot_queries.py": (["--spends", "2000"], "release-torn (whole call"),
    "core_payment.py": (["--payments", "20", "--durable-payments", "4"], "x floor"),
    "settlement.py": (["--payments", "100"], "of the verify_payment ceiling"),
    "sync_settlement.py": (["--payments", "100"], "payments/s by sync"),
    "load.py": (
        ["--clients", "2", "--seconds", "2", "--pairs", "3", "--workers", "2"],
        "payments/s",
    ),
    "simulator.py": (["--scale", "0.01", "--days", "1"], "payments/s overall"),
    "qr_render.py": (["--rounds", "1"], "zxing writer"),
    "apdu.py": (["--payments", "2", "--algorithms", "p256"], "x floor"),
    "se_storage.py": (["--ops", "2", "--sizes", "5", "20", "--no-fsync"], "whole save"),
}


def _path_without_offcash() -> str:
    dirs = os.environ.get("PATH", "").split(os.pathsep)
    return os.pathsep.join(d for d in dirs if d and not (Path(d) / "offcash").exists())


@pytest.mark.parametrize("script", sorted(RUNS))
def test_benchmark_runs(script: str) -> None:
    args, expect = RUNS[script]
    env = {**os.environ, "PATH": _path_without_offcash()}
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=BENCHMARKS,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert expect in done.stdout, done.stdout[-3000:]
