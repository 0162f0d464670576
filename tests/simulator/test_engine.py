"""The engine: one seed gives one summary; the report is one offline page; sweeps; the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

from simkit import tiny
from typer.testing import CliRunner, Result

from offcash.cli.main import app
from offcash.simulator.engine import simulate, tamper
from offcash.simulator.report import write_report, write_summary
from offcash.simulator.sweep import run_sweep


def _summary_bytes(out: Path, seed: int) -> bytes:
    summary, _ = simulate(tiny("fraud-wave", days=2, people=14, seed=seed), out)
    return write_summary(summary, out).read_bytes()


def test_one_seed_gives_one_summary(tmp_path: Path) -> None:
    first = _summary_bytes(tmp_path / "a", 11)
    second = _summary_bytes(tmp_path / "b", 11)
    assert first == second  # keys, nonces and signatures differ; no count does
    summary = json.loads(first)
    assert summary["payments"]["attempted"] > 20
    assert summary["honest_unpaid"] == 0 and summary["conserved"] is True
    assert _summary_bytes(tmp_path / "c", 12) != first


def test_the_report_is_one_offline_page(tmp_path: Path) -> None:
    summary, timing = simulate(tiny("disaster", days=4, people=10), tmp_path)
    page = write_report(summary, tmp_path).read_text()
    assert page.startswith("<!DOCTYPE html>")
    images = re.findall(r'<img alt="[^"]*" src="([^"]*)"', page)
    assert len(images) == 4 and all(i.startswith("data:image/png;base64,") for i in images)
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)
    assert not re.search(r"(https?:|//|<script|<link|@import|url\(|src=\"[^\"])", text, re.I)
    assert timing["seconds"]["total"] > 0 and "total" not in json.dumps(summary["events"])


def test_a_sweep_gives_one_point_per_value(tmp_path: Path) -> None:
    sc = tiny("fraud-wave", days=1, people=8)
    result = run_sweep(sc, "max_payment", [5000, 2000], tmp_path)
    points = result["points"]
    assert [p["value"] for p in points] == [2000, 5000]
    for p in points:
        assert (tmp_path / p["dir"] / "summary.json").is_file()
        assert (tmp_path / p["dir"] / "report.html").is_file()
        assert p["honest_unpaid"] == 0 and p["conserved"]
        assert p["worst_case_per_broken_se"] == 3 * 30_000  # 3 clones of 300.00 (Bank A)
    # a lower max_payment refuses at least as many of the same honest payments
    assert points[0]["honest_refused"] >= points[1]["honest_refused"]
    assert json.loads((tmp_path / "sweep.json").read_text()) == result
    page = (tmp_path / "report.html").read_text()
    assert "data:image/png;base64," in page and "http" not in page


def run(*args: str | Path) -> Result:
    """``offcash ARGS`` in process."""
    return CliRunner().invoke(app, [str(a) for a in args])


def test_tamper_changes_one_byte() -> None:
    msg = bytes(range(40))
    out = tamper(msg)
    assert len(out) == len(msg) and sum(a != b for a, b in zip(msg, out, strict=True)) == 1


def test_the_command(tmp_path: Path) -> None:
    done = run(
        "simulate", "--scenario", "everyday", "--out", tmp_path, "--scale", "0.01",
        "--days", "1", "--seed", "4", "--json",
    )  # fmt: skip
    assert done.exit_code == 0, done.stderr
    summary = json.loads(done.stdout)
    assert isinstance(summary, dict) and summary["seed"] == 4 and summary["days"] == 1
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    assert (tmp_path / "report.html").is_file() and (tmp_path / "timing.json").is_file()


def test_the_command_refuses_bad_input(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[limits]\nmax_payment = -5\n")
    for args in (
        ["--scenario", str(bad)],
        ["--scenario", "nowhere"],
        ["--scenario", "everyday", "--sweep", "max_fun=1"],
        ["--scenario", "everyday", "--scale", "0"],
    ):
        done = run("simulate", *args, "--out", tmp_path / "o")
        assert done.exit_code == 1, done.stdout
        assert (
            done.stderr.startswith("offcash: invalid-scenario: ") and done.stderr.count("\n") == 1
        )
    assert not (tmp_path / "o").exists()


def test_a_real_network_folder_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "ledger.db").write_bytes(b"a pilot's ledger")
    done = run("simulate", "--scenario", "everyday", "--out", tmp_path, "--scale", "0.01")
    assert done.exit_code == 1 and "did not make" in done.stderr
    assert (tmp_path / "ledger.db").read_bytes() == b"a pilot's ledger"
    net = tmp_path / "net"
    net.mkdir()
    (net / "offcash.json").write_text("{}")
    assert run("simulate", "--scenario", "everyday", "--out", net).exit_code == 1
    assert not (net / "ledger.db").exists()
