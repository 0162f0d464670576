"""A few seconds of the atheris harness (fuzz/atheris_decoders.py), when atheris is installed."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[2] / "fuzz" / "atheris_decoders.py"


@pytest.mark.skipif(
    importlib.util.find_spec("atheris") is None,
    reason="atheris is not installed (pip install -e '.[fuzz]'; wheels exist for Linux x86-64)",
)
def test_atheris_harness_runs_every_target(tmp_path: Path) -> None:
    listed = subprocess.run(
        [sys.executable, str(HARNESS), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    run = subprocess.run(
        [
            sys.executable,
            str(HARNESS),
            "-max_total_time=4",
            f"-artifact_prefix={tmp_path}/",
            str(tmp_path / "corpus"),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    # atheris prints an uncaught exception's traceback on stdout, libFuzzer its report on stderr.
    crashes = [f"{c.name}: {c.read_bytes().hex()}" for c in tmp_path.glob("crash-*")]
    assert run.returncode == 0, "\n".join([run.stdout[-4000:], run.stderr[-1500:], *crashes])
    counts = json.loads(next(x for x in run.stderr.splitlines() if x.startswith('{"inputs"')))
    assert counts["inputs"] > 100
    assert set(counts["per_target"]) == set(listed)  # the seed corpus alone reaches each one
    assert not crashes
