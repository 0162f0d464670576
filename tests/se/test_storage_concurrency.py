"""Many processes on one sealed state file (issue 9, finding 6): ``SealedFile.locked`` makes a
read-modify-write atomic across processes, and ``save`` refuses to overwrite a newer state."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from offcash.errors import SecureElementError
from offcash.se import filelock
from offcash.se.storage import SealedFile

FAST_N = 2**10
ROOT = Path(__file__).resolve().parents[2]
PROCESSES, ROUNDS = 6, 15

#: Each process adds one to the number in the file, ROUNDS times, each a locked read-modify-write.
_INCREMENT = textwrap.dedent(
    """
    import sys
    from offcash.se.storage import SealedFile
    for _ in range(int(sys.argv[2])):
        with SealedFile.locked(sys.argv[1], "1234") as (store, state):
            store.save(str(int(state) + 1).encode())
    """
)


def _python(*args: str) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")
    )
    return subprocess.Popen([sys.executable, "-c", *args], env=env, stderr=subprocess.PIPE)


def test_locked_read_modify_write_loses_no_update(tmp_path: Path) -> None:
    path = tmp_path / "se.bin"
    SealedFile.create(path, "1234", b"0", scrypt_n=FAST_N)
    procs = [_python(_INCREMENT, str(path), str(ROUNDS)) for _ in range(PROCESSES)]
    for p in procs:
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err.decode()
    assert SealedFile.open(path, "1234")[1] == str(PROCESSES * ROUNDS).encode()


def test_a_stale_state_is_never_written_over_a_newer_one(tmp_path: Path) -> None:
    path = tmp_path / "se.bin"
    SealedFile.create(path, "1234", b"first", scrypt_n=FAST_N)
    one, _ = SealedFile.open(path, "1234")
    two, _ = SealedFile.open(path, "1234")
    one.save(b"paid with counter 1")
    with pytest.raises(SecureElementError, match="changed by another process"):
        two.save(b"paid with counter 1, again")  # would reuse the counter
    assert SealedFile.open(path, "1234")[1] == b"paid with counter 1"
    one.save(b"paid with counter 2")  # the up-to-date holder goes on
    assert SealedFile.open(path, "1234")[1] == b"paid with counter 2"


def test_the_lock_waits_for_another_process_and_then_times_out(tmp_path: Path) -> None:
    path = tmp_path / "se.bin"
    SealedFile.create(path, "1234", b"0", scrypt_n=FAST_N)
    hold = textwrap.dedent(
        """
        import sys, time
        from offcash.se.storage import SealedFile
        with SealedFile.locked(sys.argv[1], "1234"):
            print("held", flush=True)
            time.sleep(float(sys.argv[2]))
        """
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    holder = subprocess.Popen(
        [sys.executable, "-c", hold, str(path), "30"], env=env, stdout=subprocess.PIPE
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        started = time.monotonic()
        with pytest.raises(filelock.Busy), filelock.exclusive(filelock.lock_path(path), 0.3):
            pass
        assert time.monotonic() - started >= 0.3
    finally:
        holder.kill()
        holder.wait()
    # the kernel released the dead holder's lock: no stale lock is left behind
    with filelock.exclusive(filelock.lock_path(path), 5):
        pass


def test_the_lock_is_reentrant_within_a_process(tmp_path: Path) -> None:
    path = tmp_path / "se.bin"
    SealedFile.create(path, "1234", b"0", scrypt_n=FAST_N)
    with SealedFile.locked(path, "1234") as (store, _):
        store.save(b"1")  # save takes the same lock again
        with SealedFile.locked(path, "1234") as (_, state):
            assert state == b"1"
    assert oct(filelock.lock_path(path).stat().st_mode & 0o777) == "0o600"
