"""Sealed, atomic persistence of the software SE (``offcash.se.storage``) and crash rollback."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from offcash.domain.ids import WalletId
from offcash.errors import SecureElementError, WrongPin
from offcash.se import storage
from offcash.se.software import SoftwareSecureElement
from offcash.se.storage import MAGIC, SealedFile

from harness import T0, PilotNetwork

FAST_N = 2**10  # scrypt cost for tests; the default (2**15) is for devices


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "se.bin"
    store = SealedFile.create(path, "1234", b"state one", scrypt_n=FAST_N)
    assert SealedFile.open(path, "1234")[1] == b"state one"
    store.save(b"state two")
    reopened, state = SealedFile.open(path, "1234")
    assert state == b"state two"
    reopened.save(b"three")
    assert SealedFile.open(path, "1234")[1] == b"three"
    assert b"three" not in path.read_bytes() and path.read_bytes().startswith(MAGIC)
    # no temporary left over (the lock file stays: see offcash.se.filelock)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["se.bin", "se.bin.lock"]


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "se.bin"
    SealedFile.create(path, "1234", b"x", scrypt_n=FAST_N)
    with pytest.raises(SecureElementError, match="exists"):
        SealedFile.create(path, "1234", b"y", scrypt_n=FAST_N)


def test_wrong_pin(tmp_path: Path) -> None:
    path = tmp_path / "se.bin"
    SealedFile.create(path, "1234", b"secret", scrypt_n=FAST_N)
    with pytest.raises(WrongPin):
        SealedFile.open(path, "4321")


@pytest.mark.parametrize("where", [-1, -20, len(MAGIC) + 1, len(MAGIC) + 16 + 4 + 1])
def test_altered_file_is_refused(tmp_path: Path, where: int) -> None:
    """A flipped bit in the ciphertext, tag, salt or nonce: the seal does not open."""
    path = tmp_path / "se.bin"
    SealedFile.create(path, "1234", b"secret state" * 10, scrypt_n=FAST_N)
    blob = bytearray(path.read_bytes())
    blob[where] ^= 0x01
    path.write_bytes(bytes(blob))
    with pytest.raises(WrongPin):
        SealedFile.open(path, "1234")


@pytest.mark.parametrize(
    "mangle",
    [
        lambda b: b"XXXX" + b[4:],
        lambda b: b[:30],
        lambda b: b[: len(MAGIC) + 16] + (3).to_bytes(4, "big") + b[len(MAGIC) + 20 :],
    ],
    ids=["magic", "truncated", "scrypt_n"],
)
def test_not_a_sealed_file(tmp_path: Path, mangle: Callable[[bytes], bytes]) -> None:
    path = tmp_path / "se.bin"
    SealedFile.create(path, "1234", b"secret", scrypt_n=FAST_N)
    path.write_bytes(mangle(path.read_bytes()))
    with pytest.raises(SecureElementError) as info:
        SealedFile.open(path, "1234")
    assert not isinstance(info.value, WrongPin)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SecureElementError, match="cannot read"):
        SealedFile.open(tmp_path / "absent.bin", "1234")


# --- the SE over a sealed file -------------------------------------------------------------


def _sealed_wallet(net: PilotNetwork, path: Path, balance: int) -> SoftwareSecureElement:
    state = SoftwareSecureElement.new_state(net.params, net.central_bank.certificate_der)
    se = SoftwareSecureElement(state, SealedFile.create(path, "1234", state, scrypt_n=FAST_N))
    return net.wallet(balance, se=se)


def _reopen(path: Path) -> SoftwareSecureElement:
    store, state = SealedFile.open(path, "1234")
    return SoftwareSecureElement(state, store)


def test_reopen_gives_identical_status(network: PilotNetwork, tmp_path: Path) -> None:
    a = _sealed_wallet(network, tmp_path / "a.bin", 1000)
    b = _sealed_wallet(network, tmp_path / "b.bin", 0)
    b.receive(a.pay(b.request(300, T0), T0), T0)
    a.unload(100, T0)
    req = b.request(50, T0)  # outstanding, remembered across the reopen
    for se, path in ((a, tmp_path / "a.bin"), (b, tmp_path / "b.bin")):
        assert _reopen(path).status(T0) == se.status(T0)
    b2 = _reopen(tmp_path / "b.bin")
    assert b2.receive(_reopen(tmp_path / "a.bin").pay(req, T0), T0).duplicate is False
    assert _reopen(tmp_path / "b.bin").status(T0).balance == 350


def _crash_on_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """Power lost before the new state reaches the file: before the rename of a whole state,
    or before a delta is written at the end of the journal."""

    def boom(*args: object) -> None:
        raise OSError("simulated power loss before the write")

    monkeypatch.setattr(storage.os, "replace", boom)
    monkeypatch.setattr(storage.os, "pwrite", boom)


@pytest.mark.parametrize("operation", ["pay", "receive", "unload", "load", "request", "sync"])
def test_crash_while_persisting_rolls_back(
    network: PilotNetwork, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, operation: str
) -> None:
    a = _sealed_wallet(network, tmp_path / "a.bin", 1000)
    b = _sealed_wallet(network, tmp_path / "b.bin", 0)
    req = b.request(200, T0)
    payment = a.pay_to(WalletId.random(), 10, T0)
    incoming = a.pay(req, T0)
    wid = b.status(T0).wallet_id
    assert wid is not None
    voucher = network.bank().voucher(wid, 70, "EUR", T0)
    se, path = (
        (b, tmp_path / "b.bin")
        if operation in ("receive", "load", "request")
        else (a, tmp_path / "a.bin")
    )
    before, upload_before = se.status(T0), se.sync_upload(T0).entries
    actions = {
        "pay": lambda: a.pay_to(WalletId.random(), 10, T0),
        "receive": lambda: b.receive(incoming, T0),
        "unload": lambda: a.unload(10, T0),
        "load": lambda: b.load(voucher, T0),
        "request": lambda: b.request(5, T0),
        "sync": lambda: network.sync(a, T0 + 60),
    }
    _crash_on_write(monkeypatch)
    with pytest.raises(OSError, match="simulated"):
        actions[operation]()
    assert se.status(T0) == before
    assert se.sync_upload(T0).entries == upload_before
    assert _reopen(path).status(T0) == before  # the file still holds the old state
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    monkeypatch.undo()
    actions[operation]()  # after the crash the operation can simply be retried
    assert payment  # the first payment stays valid and in the log
    assert _reopen(path).status(T0) == se.status(T0)


def test_crash_before_fsync_of_temp(
    network: PilotNetwork, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = _sealed_wallet(network, tmp_path / "a.bin", 1000)
    before = a.status(T0)

    def boom(fd: int) -> None:
        raise OSError("simulated disk error")

    monkeypatch.setattr(storage.os, "fsync", boom)
    with pytest.raises(OSError):
        a.pay_to(WalletId.random(), 10, T0)
    monkeypatch.undo()
    assert a.status(T0) == before == _reopen(tmp_path / "a.bin").status(T0)
    assert sorted(os.listdir(tmp_path)) == ["a.bin", "a.bin.lock"]
