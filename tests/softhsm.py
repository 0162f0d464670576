"""A SoftHSM2 token for the HSM tests: one token directory and config per test process.

SoftHSM2 reads ``SOFTHSM2_CONF`` and lists its tokens once, when the PKCS#11 library is first
initialised in a process, so ``token()`` makes the directory, the config and the token before
anything loads the library, and every test of the process shares that token (each test makes its
own keys, told apart by their random ids). Tests that need a token nobody has logged in to yet
run the CLI in a subprocess. When ``softhsm2-util`` is missing the tests are skipped with the
reason shown, or fail when ``OFFCASH_REQUIRE_HSM`` is set (``.ci/run`` sets it)."""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

MODULES = ("/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so")
LABEL = "offcash-test"
PIN = "314159"
SO_PIN = "271828"


@dataclass(frozen=True)
class SoftHsm:
    """The process's SoftHSM2: module path, config, token label, PIN and a file holding it."""

    module: str
    conf: Path
    label: str
    pin: str
    pin_file: Path

    def env(self) -> dict[str, str]:
        """The environment for a subprocess that uses this SoftHSM."""
        return {**os.environ, "SOFTHSM2_CONF": str(self.conf)}


def _module() -> str | None:
    return next((m for m in MODULES if Path(m).is_file()), None)


def init_token(conf: Path, label: str, pin: str) -> None:
    """Initialise a token in the first free slot of the SoftHSM configured by ``conf``."""
    cmd = ["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", pin]
    subprocess.run(
        [*cmd, "--so-pin", SO_PIN],
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
        check=True,
        capture_output=True,
        timeout=60,
    )


def new_softhsm(root: Path, label: str = LABEL, pin: str = PIN) -> SoftHsm:
    """A SoftHSM2 config and token directory in ``root`` with one token ``label``."""
    module = _module()
    assert module is not None
    (root / "tokens").mkdir(parents=True)
    conf = root / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    init_token(conf, label, pin)
    pin_file = root / "pin"
    pin_file.write_text(pin + "\n")
    return SoftHsm(module, conf, label, pin, pin_file)


@functools.cache
def _process_softhsm() -> SoftHsm:
    root = Path(tempfile.mkdtemp(prefix="offcash-softhsm-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    hsm = new_softhsm(root)
    os.environ["SOFTHSM2_CONF"] = str(hsm.conf)  # before the library is first loaded
    return hsm


def softhsm() -> SoftHsm:
    """This process's SoftHSM2 token (skips, or fails under ``OFFCASH_REQUIRE_HSM``)."""
    missing = shutil.which("softhsm2-util") is None or _module() is None
    if missing:
        why = "SoftHSM2 is not installed (Debian package softhsm2)"
        if os.environ.get("OFFCASH_REQUIRE_HSM", "") not in ("", "0"):
            pytest.fail(why)
        pytest.skip(why)
    return _process_softhsm()
