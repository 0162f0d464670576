"""Credentials and single-use instruments: guessing the PIN of a stolen sealed SE file; a load
voucher used twice; an unload request used twice.

The PIN test measures what one guess costs with the production scrypt parameters and reports it
(``record_property``, and printed with ``-s``); it asserts no time. What it shows honestly: the
sealed file refuses every wrong PIN and records nothing, so an attacker holding a copy guesses
offline at scrypt's cost alone, and a 6-digit PIN (10^6 candidates) falls to that search; a
hardware SE with a PIN try counter is the production answer (docs/SECURITY.md). The two PIN
tests are about the software SE's sealed file, so they run once, on it; the voucher and unload
tests run against each SE kind (tests/se_kinds.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from attackkit import (
    ACCOUNT,
    PIN,
    VOUCHERS,
    assert_books,
    edit_state,
    party,
    reopen,
    se_balance,
    sealed_wallet,
)
from ledgerkit import World

from offcash.crypto.algorithms import SignatureAlgorithm
from offcash.errors import Rejection, VerificationError, WrongPin
from offcash.ledger.errors import UnloadRefused
from offcash.se.software import SoftwareSecureElement
from offcash.se.storage import MAGIC, SCRYPT_N, SealedFile

from factories import network_for, payload_map, with_payload
from harness import T0
from se_kinds import FAST_N

SALT = 16


def test_wrong_pins_are_refused_and_one_guess_costs_a_production_scrypt(
    tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    """Software SE only: its sealed file."""
    p256 = network_for(SignatureAlgorithm.P256)
    state = SoftwareSecureElement.new_state(p256.params, p256.central_bank.certificate_der)
    path = tmp_path / "stolen.se"
    SealedFile.create(path, PIN, state)  # the production parameters, as a wallet makes it
    sealed = path.read_bytes()
    n = int.from_bytes(sealed[len(MAGIC) + SALT : len(MAGIC) + SALT + 4], "big")
    assert n == SCRYPT_N == 2**15  # r = 8, p = 1: 128 * r * N = 32 MiB of memory per guess
    seconds = []
    for guess in ("000000", "246811", ""):
        start = time.perf_counter()
        with pytest.raises(WrongPin):
            SealedFile.open(path, guess)
        seconds.append(time.perf_counter() - start)
    assert path.read_bytes() == sealed  # a wrong guess changes nothing: no counter, no lockout
    assert SealedFile.open(path, PIN)[1] == state
    per_guess = min(seconds)
    hours = 10**6 * per_guess / 3600
    record_property("scrypt_n", n)
    record_property("seconds_per_pin_guess", round(per_guess, 4))
    record_property("six_digit_pin_core_hours", round(hours, 1))
    print(
        f"\none PIN guess (scrypt N=2^15, r=8, p=1): {per_guess * 1000:.0f} ms, 32 MiB; "
        f"all 10^6 six-digit PINs: {hours:.0f} core-hours"
    )


def test_an_offline_attacker_with_the_file_finds_a_short_pin_by_search(tmp_path: Path) -> None:
    """Nothing but scrypt's cost stands between a copied file and its PIN (shown here on a
    cheap file and a PIN early in the search order, to keep the test fast). Software SE only:
    its sealed file."""
    p256 = network_for(SignatureAlgorithm.P256)
    state = SoftwareSecureElement.new_state(p256.params, p256.central_bank.certificate_der)
    path = tmp_path / "stolen.se"
    SealedFile.create(path, "000042", state, scrypt_n=FAST_N)
    found = None
    for candidate in (f"{i:06d}" for i in range(10**6)):
        try:
            _, opened = SealedFile.open(path, candidate)
        except WrongPin:
            continue
        found = candidate
        break
    assert found == "000042" and opened == state


# --- load vouchers ----------------------------------------------------------------------------


def test_load_voucher_used_twice_is_refused(world: World, tmp_path: Path) -> None:
    alice = sealed_wallet(world, tmp_path / "alice", 0, "Bank A")
    bob = party(world, 0, "Bank A")
    voucher = world.ledger.fund(alice.wid, 2_000, T0 + 1)
    assert alice.se.load(voucher, T0 + 2) == 2_000
    for restart in (False, True):  # also after a restart from what it persisted
        se = reopen(alice) if restart else alice.se
        with pytest.raises(VerificationError) as info:
            se.load(voucher, T0 + 3)
        assert info.value.rejection is Rejection.REPLAYED
    with pytest.raises(VerificationError) as info:
        bob.se.load(voucher, T0 + 4)  # another wallet of the same bank
    assert info.value.rejection is Rejection.WRONG_WALLET
    world.sync(alice.se, T0 + 10)
    with pytest.raises(VerificationError) as info:  # remembered past the sync, until expiry
        alice.se.load(voucher, T0 + 11)
    assert info.value.rejection is Rejection.REPLAYED
    audit = assert_books(world, {alice.account: ACCOUNT - 2_000, bob.account: ACCOUNT})
    assert audit.banks["Bank A"].float == se_balance(alice) == 2_000


@pytest.mark.parametrize("when", ["same-sync", "later-sync"])
def test_voucher_replayed_by_a_broken_se_is_detected_at_settlement(
    world: World, tmp_path: Path, when: str
) -> None:
    alice = sealed_wallet(world, tmp_path / "alice", 0, "Bank A")
    voucher = world.ledger.fund(alice.wid, 2_000, T0 + 1)
    alice.se.load(voucher, T0 + 2)
    if when == "later-sync":
        world.sync(alice.se, T0 + 3)
    edit_state(alice, lambda s: s[VOUCHERS].clear())  # forget it was applied
    broken = reopen(alice)
    assert broken.load(voucher, T0 + 4) == 2_000
    assert broken.status(T0 + 4).balance == 4_000
    res = world.sync(broken, T0 + 10)
    assert_books(world, {alice.account: ACCOUNT - 2_000})
    assert res.ack is None
    assert world.ledger.anomalies(alice.wid) != []


# --- unload requests --------------------------------------------------------------------------


def test_unload_request_used_twice_is_credited_once(world: World) -> None:
    alice = party(world, 5_000, "Bank A")
    request = alice.se.unload(1_500, T0 + 1)
    assert world.ledger.unload(request, T0 + 2) == 1_500
    assert world.ledger.unload(request, T0 + 3) == 0  # again (or by whoever intercepted it)
    assert world.sync(alice.se, T0 + 4).settled == 0  # its UNLOADED log entry: already paid
    assert world.ledger.unload(request, T0 + 5) == 0  # after the sync
    inflated = payload_map(request)
    inflated[1] = 4_500
    with pytest.raises(VerificationError) as info:
        world.ledger.unload(with_payload(request, inflated), T0 + 6)
    assert info.value.rejection is Rejection.BAD_SIGNATURE
    audit = assert_books(world, {alice.account: ACCOUNT - 5_000 + 1_500})
    assert audit.banks["Bank A"].float == se_balance(alice) == 3_500


def test_unload_twice_from_a_rolled_back_se_is_paid_once(world: World, tmp_path: Path) -> None:
    alice = sealed_wallet(world, tmp_path / "alice", 5_000, "Bank A")
    backup = alice.state()
    first = alice.se.unload(3_000, T0 + 1)
    alice.restore(backup)
    second = reopen(alice).unload(3_000, T0 + 2)  # the same counter again
    assert world.ledger.unload(first, T0 + 3) == 3_000
    with pytest.raises(UnloadRefused):  # the counter is used: refused, kept as evidence
        world.ledger.unload(second, T0 + 4)
    assert world.ledger.wallet_status(alice.wid) == "revoked"
    [(_, evidence)] = world.ledger.evidence(alice.wid)
    assert sorted(evidence) == sorted([first, second])
    audit = assert_books(world, {alice.account: ACCOUNT - 5_000 + 3_000})
    assert audit.banks["Bank A"].losses == 0
