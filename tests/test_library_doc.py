"""docs/LIBRARY.md's program runs as written, against a real ``offcash serve`` (issue 10).

The test takes the one ``python`` block of the page, writes it to a file, and runs it in a fresh
interpreter with the environment the page describes: a network made by ``offcash network
init`` and served by ``offcash serve`` in another process. It then checks the output against the
amounts the page's story implies (computed here, not read from the program).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "LIBRARY.md"
TOKEN = "library-doc-token"


def python_blocks(text: str) -> list[str]:
    """The fenced ``python`` code blocks of a Markdown page."""
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE)


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, OFFCASH_TOKEN=TOKEN, **extra)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _cli(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "offcash.cli", *map(str, args)]


def _serve(network: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    for _ in range(3):  # a free port can be taken between choosing and binding it
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with log.open("wb") as out:
            proc = subprocess.Popen(
                _cli("--network", network, "serve", "--port", str(port)),
                env=_env(),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            if proc.poll() is not None:
                break
            try:
                if httpx.get(f"{url}/v1/network", timeout=2).status_code == 200:
                    return proc, url
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        proc.kill()
        proc.wait()
    raise AssertionError(f"offcash serve did not start: {log.read_text()[-2000:]}")


def test_the_page_has_one_program() -> None:
    assert len(python_blocks(DOC.read_text(encoding="utf-8"))) == 1


def test_the_library_walkthrough_runs_against_a_real_server(tmp_path: Path) -> None:
    (program,) = python_blocks(DOC.read_text(encoding="utf-8"))
    script = tmp_path / "wallet_maker.py"
    script.write_text(program, encoding="utf-8")
    network = tmp_path / "pilot"
    subprocess.run(
        _cli("network", "init", network, "--banks", "Bank A,Bank B"),
        env=_env(),
        check=True,
        capture_output=True,
    )
    server, url = _serve(network, tmp_path / "serve.log")
    try:
        done = subprocess.run(
            [sys.executable, str(script)],
            env=_env(OFFCASH_SERVER=url),
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
            cwd=tmp_path,
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    # The story: Alice's account 100.00, 40.00 loaded, 12.50 paid to Bob, Bob unloads 5.00.
    assert "network: EUR, p256, 2 banks" in out
    assert "bob received 1250; the re-send is a duplicate: True" in out
    assert re.search(r"synced \S+: 1 settled, balance 2750\n", out)
    assert re.search(r"synced \S+: 1 settled, balance 1250\n", out)
    assert "bob unloads 500 to his account" in out
    assert "refused: insufficient-balance:" in out
    assert "bob's wallet holds 750" in out
    issued = 2 * 10_000_000  # network init: 100,000.00 into each bank's reserves
    assert f"audit: balanced=True, issued {issued}, wallets {2750 + 750}" in out
    assert f"accounts {6000 + 500}" in out
