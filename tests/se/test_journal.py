"""The sealed file's journal (``offcash.se.journal``, ``SealedFile.append``): an operation
appends a delta whose size does not grow with the log; a crash at any byte of an append leaves
the old state or the new one; a record altered, removed or reordered is refused; files of the
first format still open and are rewritten in the journal format at their first save."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from offcash.domain.ids import WalletId
from offcash.domain.limits import Limits
from offcash.encoding import cbor
from offcash.errors import SecureElementError
from offcash.se import storage
from offcash.se.software import SoftwareSecureElement
from offcash.se.storage import MAGIC, MAGIC_V1, SealedFile

from harness import DEFAULT_LIMITS, T0, PilotNetwork

FAST_N = 2**10
PIN = "1234"


BIG = Limits(10**9, 10**6, 10**4, 10**9, 10**6)


def _sealed_wallet(
    net: PilotNetwork, path: Path, balance: int, limits: Limits = DEFAULT_LIMITS
) -> SoftwareSecureElement:
    state = SoftwareSecureElement.new_state(net.params, net.central_bank.certificate_der)
    se = SoftwareSecureElement(state, SealedFile.create(path, PIN, state, scrypt_n=FAST_N))
    return net.wallet(balance, se=se, limits=limits)


def _reopen(path: Path) -> SoftwareSecureElement:
    store, state = SealedFile.open(path, PIN)
    return SoftwareSecureElement(state, store)


def _same(a: SoftwareSecureElement, b: SoftwareSecureElement) -> None:
    """The two hold the same state (the full encodings, log, book and memories included)."""
    assert a._s.encode() == b._s.encode()


def test_every_kind_of_operation_replays_to_the_same_state(
    network: PilotNetwork, tmp_path: Path
) -> None:
    a = _sealed_wallet(network, tmp_path / "a.se", 1_000)
    b = _sealed_wallet(network, tmp_path / "b.se", 0)
    size = (tmp_path / "a.se").stat().st_size
    for i in range(5):
        b.receive(a.pay(b.request(10 + i, T0 + i, reference=f"r{i}"), T0 + i), T0 + i)
    b.receive(a.pay_to(b.status(T0).wallet_id, 7, T0 + 6), T0 + 6)  # type: ignore[arg-type]
    a.unload(3, T0 + 7)
    b.request(5, T0 + 8)  # outstanding
    assert (tmp_path / "a.se").stat().st_size > size  # appended, not rewritten
    for se, name in ((a, "a.se"), (b, "b.se")):
        _same(_reopen(tmp_path / name), se)
        assert _reopen(tmp_path / name).sync_upload(T0 + 9).entries == se.sync_upload(T0).entries
    network.sync(a, T0 + 10)  # the log drops: a whole new base, the journal emptied
    assert len(_reopen(tmp_path / "a.se").sync_upload(T0 + 11).entries) == 0
    _same(_reopen(tmp_path / "a.se"), a)
    again = _reopen(tmp_path / "a.se")  # a reopened SE goes on appending to the same journal
    b.receive(again.pay(b.request(20, T0 + 12), T0 + 12), T0 + 12)
    _same(_reopen(tmp_path / "a.se"), again)


def test_an_operation_appends_the_same_bytes_at_any_log_length(
    network: PilotNetwork, tmp_path: Path
) -> None:
    a = _sealed_wallet(network, tmp_path / "a.se", 10**6, BIG)
    payee = WalletId.random()
    growth = []
    for i in range(120):
        before = (tmp_path / "a.se").stat().st_size
        a.pay_to(payee, 1, T0 + i, reference="0123456789")
        growth.append((tmp_path / "a.se").stat().st_size - before)
    assert a.status(T0).log_entries > 120  # the enrolment's load, then every payment
    # each payment adds one record of one size, however long the log is, except when the
    # journal is folded into a new base (its size then is the whole state's)
    usual = Counter(growth).most_common(1)[0][0]
    appended = [g for g in growth if abs(g - usual) <= 2]  # the counter's width may change
    assert len(appended) >= 110
    _same(_reopen(tmp_path / "a.se"), a)


def _states_at_every_cut(
    network: PilotNetwork, tmp_path: Path
) -> tuple[bytes, int, bytes, bytes, Path]:
    a = _sealed_wallet(network, tmp_path / "a.se", 1_000)
    path = tmp_path / "a.se"
    old_blob, old_state = path.read_bytes(), a._s.encode()
    a.pay_to(WalletId.random(), 10, T0)
    new_blob = path.read_bytes()
    assert new_blob.startswith(old_blob)  # an append, not a rewrite
    return new_blob, len(old_blob), old_state, a._s.encode(), path


def test_an_append_cut_at_any_byte_leaves_the_old_state_or_the_new_one(
    network: PilotNetwork, tmp_path: Path
) -> None:
    blob, old_end, old_state, new_state, path = _states_at_every_cut(network, tmp_path)
    # every byte of a P-256 or Ed25519 record; an ML-DSA one (6 KB and more) at its edges and
    # every 61st byte (each cut costs a reopen)
    cuts = range(old_end, len(blob) + 1)
    if len(cuts) > 1_024:
        cuts = sorted({*cuts[:64], *cuts[::61], *cuts[-64:]})
    for cut in cuts:
        path.write_bytes(blob[:cut])
        se = _reopen(path)
        assert se._s.encode() == (new_state if cut == len(blob) else old_state), cut
    # after a cut-short append the next operation writes over the torn bytes
    path.write_bytes(blob[: old_end + 7])
    se = _reopen(path)
    se.pay_to(WalletId.random(), 20, T0 + 1)
    _same(_reopen(path), se)
    assert se.status(T0).balance == 980


def test_a_record_altered_removed_or_reordered_is_refused(
    network: PilotNetwork, tmp_path: Path
) -> None:
    a = _sealed_wallet(network, tmp_path / "a.se", 1_000)
    path = tmp_path / "a.se"
    ends = [path.stat().st_size]
    for i in range(3):
        a.pay_to(WalletId.random(), 10, T0 + i)
        ends.append(path.stat().st_size)
    blob = path.read_bytes()
    first, second, third = (blob[ends[i] : ends[i + 1]] for i in range(3))
    flipped = bytearray(blob)
    flipped[ends[1] + 30] ^= 1  # inside the second record
    for bad in (
        bytes(flipped),
        blob[: ends[0]] + first + third,  # the middle record removed
        blob[: ends[0]] + second + first + third,  # reordered
    ):
        path.write_bytes(bad)
        with pytest.raises(SecureElementError, match="journal was altered"):
            SealedFile.open(path, PIN)
    # cut at a record boundary: a state the file really held before (a rollback, which only a
    # hardware SE can refuse: docs/SECURITY.md)
    path.write_bytes(blob[: ends[2]])
    assert _reopen(path).status(T0).balance == 980


def test_a_stale_holder_cannot_append(network: PilotNetwork, tmp_path: Path) -> None:
    a = _sealed_wallet(network, tmp_path / "a.se", 1_000)
    path = tmp_path / "a.se"
    one, two = _reopen(path), _reopen(path)
    one.pay_to(WalletId.random(), 10, T0)
    with pytest.raises(SecureElementError, match="changed by another process"):
        two.pay_to(WalletId.random(), 10, T0)  # would reuse counter 2
    assert two.status(T0).balance == 1_000  # the refused operation changed nothing
    assert _reopen(path).status(T0).balance == 990
    assert a.status(T0).balance == 1_000


def test_a_file_of_the_first_format_opens_and_is_rewritten_at_its_first_save(
    network: PilotNetwork, tmp_path: Path
) -> None:
    a = _sealed_wallet(network, tmp_path / "new.se", 1_000)
    state = a._s.encode()
    path = tmp_path / "old.se"
    key_store = SealedFile.create(tmp_path / "key.se", PIN, b"x", scrypt_n=FAST_N)
    salt_n = key_store._salt
    nonce = bytes(12)
    aead = AESGCM(storage._derive(PIN, salt_n[:16], FAST_N))
    path.write_bytes(MAGIC_V1 + salt_n + nonce + aead.encrypt(nonce, state, MAGIC_V1 + salt_n))
    old = _reopen(path)
    _same(old, a)
    old.pay_to(WalletId.random(), 10, T0)
    assert path.read_bytes().startswith(MAGIC)
    _same(_reopen(path), old)
    old.pay_to(WalletId.random(), 10, T0 + 1)  # and from now on it appends
    _same(_reopen(path), old)
    assert _reopen(path).status(T0).balance == 980


def test_an_se_started_on_another_state_than_the_file_holds_saves_it_whole(
    network: PilotNetwork, tmp_path: Path
) -> None:
    a = _sealed_wallet(network, tmp_path / "a.se", 1_000)
    path = tmp_path / "a.se"
    store, _ = SealedFile.open(path, PIN)
    a.pay_to(WalletId.random(), 10, T0)
    # a state the store did not return: no delta can apply to the file, so the first persist
    # writes the whole state (and is refused: the file changed since this store read it)
    other = SoftwareSecureElement(a._s.encode(), store)
    with pytest.raises(SecureElementError, match="changed by another process"):
        other.pay_to(WalletId.random(), 10, T0 + 1)


def test_a_state_of_an_older_version_is_saved_whole_first(
    network: PilotNetwork, tmp_path: Path
) -> None:
    a = _sealed_wallet(network, tmp_path / "a.se", 1_000)
    path = tmp_path / "a.se"
    value = cbor.decode(a._s.encode(), max_bytes=1 << 26)
    store, _ = SealedFile.open(path, PIN)
    old = cbor.encode([1, *value[1:12]])  # version 1: no paid memory, no encryption key
    store.save(old)
    se = _reopen(path)
    se.pay_to(WalletId.random(), 10, T0)  # written whole, in the current version
    _same(_reopen(path), se)
    se.pay_to(WalletId.random(), 10, T0 + 1)  # then appended
    _same(_reopen(path), se)
    assert _reopen(path).status(T0).balance == 980


def test_a_journal_of_the_previous_version_still_opens(
    network: PilotNetwork, tmp_path: Path
) -> None:
    """A file the previous release wrote (a version 4 base and its journal records) opens in
    this one: the records replay on the old base, and the first change saves it whole in the
    current version. Before, replaying refused any base but the current version's."""
    a = _sealed_wallet(network, tmp_path / "a.se", 1_000)
    path = tmp_path / "a.se"
    value = cbor.decode(a._s.encode(), max_bytes=1 << 26)
    store, _ = SealedFile.open(path, PIN)
    store.save(cbor.encode([4, *value[1:15]]))  # version 4: no next or retired KEM key
    balance, counter, seq, last = value[7]
    store.append(cbor.encode([{7: [balance - 10, counter + 1, seq, last]}, [], [], [], []]))
    se = _reopen(path)
    assert (se.status(T0).balance, se.status(T0).counter) == (990, counter + 1)
    se.pay_to(WalletId.random(), 10, T0)  # written whole, in the current version
    _same(_reopen(path), se)
    assert _reopen(path).status(T0).balance == 980
