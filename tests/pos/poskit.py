"""Harness for the point-of-sale tests: a pilot network, `offcash pos` servers, Chromium.

The network is built once per session with the real CLI on a real SQLite ledger: alice and bob
hold funded wallets, the shop owns a wallet (``shop-phone``) and a receive-only terminal
(``shop-till``). Each till is served by a real ``offcash pos`` process; the browser is Debian's
``chromium`` driven by Playwright (no browser download). Payers pay with the CLI, as a phone
would, from what the page shows.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import zxingcpp
from PIL import Image
from typer.testing import CliRunner

from offcash.cli.main import app

CHROMIUM = os.environ.get("OFFCASH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VENDOR = Path(__file__).resolve().parent / "vendor"


@dataclass
class Run:
    """The outcome of one CLI run."""

    code: int
    stdout: str
    stderr: str

    def json(self) -> dict[str, object]:
        out = json.loads(self.stdout)
        assert isinstance(out, dict)
        return out


def run(*args: str | Path) -> Run:
    """``offcash ARGS`` in process."""
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=True)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return Run(result.exit_code, result.stdout, result.stderr)


def build_network(root: Path) -> list[str]:
    """The shared pilot network; returns the ``--network DIR`` arguments. ``shop-phone`` and
    ``shop-till`` are served by ``offcash pos`` processes for the session, ``kiosk-phone`` by
    in-process apps or a short-lived process (never two at once on one wallet: two processes
    writing one secure-element file race)."""
    r = run("network", "init", root, "--currency", "EUR", "--banks", "Bank A,Bank B")
    assert r.code == 0, r.stderr
    n = ["--network", str(root)]
    for account, bank, deposit in (("alice", "Bank A", "500"), ("bob", "Bank B", "500")):
        assert run(*n, "account", "open", account, "--bank", bank, "--deposit", deposit).code == 0
        r = run(*n, "wallet", "create", f"{account}-phone", "--bank", bank, "--owner", account)
        assert r.code == 0, r.stderr
        assert run(*n, "wallet", "fund", f"{account}-phone", "200").code == 0
    assert run(*n, "account", "open", "shop", "--bank", "Bank B", "--deposit", "0").code == 0
    for till in ("shop-phone", "kiosk-phone"):
        r = run(*n, "wallet", "create", till, "--bank", "Bank B", "--owner", "shop")
        assert r.code == 0, r.stderr
    r = run(*n, "terminal", "create", "shop-till", "--owner", "shop")
    assert r.code == 0, r.stderr
    return n


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PosServer:
    """A running ``offcash pos`` process."""

    url: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path


@contextmanager
def pos_server(network: list[str], name: str, log: Path, *extra: str) -> Iterator[PosServer]:
    """Run ``offcash pos NAME`` in a child process until the block ends."""
    port = free_port()
    cmd = [sys.executable, "-m", "offcash.cli", *network, "pos", name, "--port", str(port), *extra]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(url + "/api/info", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"offcash pos did not start: {log.read_text()}"
            time.sleep(0.3)
        yield PosServer(url, port, proc, log)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def chromium_available() -> bool:
    return Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is not None


def data_url_bytes(url: str) -> bytes:
    """The bytes of a ``data:...;base64,`` URL."""
    head, _, body = url.partition(",")
    assert head.endswith(";base64"), head
    return base64.b64decode(body)


def qr_contents(png: bytes) -> list[bytes]:
    """The raw content of every QR code in an image (zxing-cpp, independent of the page)."""
    image = Image.open(io.BytesIO(png)).convert("L")
    return [c.bytes for c in zxingcpp.read_barcodes(image) if c.valid]


def write_y4m(frames: list[Image.Image], path: Path, *, hold: int = 6) -> None:
    """A Y4M video (4:2:0) showing each image centred on white, ``hold`` video frames each:
    what Chromium's fake camera (``--use-file-for-fake-video-capture``) plays in a loop."""
    width, height = 640, 480
    out = [f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode()]
    chroma = bytes([128]) * ((width // 2) * (height // 2))
    for frame in frames:
        canvas = Image.new("L", (width, height), 255)
        code = frame.convert("L")
        if code.width > width or code.height > height:
            code.thumbnail((width, height), Image.Resampling.NEAREST)
        canvas.paste(code, ((width - code.width) // 2, (height - code.height) // 2))
        luma = canvas.tobytes()
        out.extend([b"FRAME\n" + luma + chroma + chroma] * hold)
    path.write_bytes(b"".join(out))
