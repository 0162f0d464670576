"""Wallet ids, offline limits and network parameters."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offcash.crypto.algorithms import SignatureAlgorithm
from offcash.domain.ids import NONCE_BYTES, WalletId, new_nonce
from offcash.domain.limits import DEFAULT_LIMITS, Limits
from offcash.domain.network import NetworkParams
from offcash.errors import DecodeError, Limit, LimitExceeded, MoneyError


@given(st.binary(min_size=12, max_size=12))
def test_wallet_id_text_round_trip(raw: bytes) -> None:
    wid = WalletId(raw)
    text = str(wid)
    assert len(text) == 20 and text == text.lower()
    assert WalletId.parse(text) == wid
    assert WalletId.parse(text.upper()) == wid


def _parse_by_base64(text: str) -> WalletId | None:
    """The text form's definition: the base32 (RFC 4648) that re-encodes to the same text."""
    cleaned = text.strip().upper()
    try:
        raw = base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
    except ValueError:
        return None
    if base64.b32encode(raw).decode().rstrip("=") != cleaned or len(raw) != 12:
        return None
    return WalletId(raw)


@given(
    st.binary(min_size=12, max_size=12),
    st.integers(0, 21),
    st.sampled_from("abcxyz234567ABC01890=_+- \n\u00df\u0131"),
)
def test_wallet_id_parse_agrees_with_base64(raw: bytes, at: int, char: str) -> None:
    text = str(WalletId(raw))
    for candidate in (text, text[:at] + char + text[at + 1 :], text[:at] + char + text[at:]):
        try:
            parsed: WalletId | None = WalletId.parse(candidate)
        except DecodeError:
            parsed = None
        assert parsed == _parse_by_base64(candidate), repr(candidate)


@pytest.mark.parametrize(
    "text",
    ["", "abc", "a" * 19, "a" * 21, "0" * 20, "aaaaaaaaaaaaaaaaaaab", 7, None, "a" * 20 + "===="],
    ids=repr,
)
def test_wallet_id_parse_refusals(text: Any) -> None:
    with pytest.raises(DecodeError) as info:
        WalletId.parse(text)
    assert info.value.path == "wallet_id"


@pytest.mark.parametrize("raw", [b"", bytes(11), bytes(13), bytearray(12), "x" * 12])
def test_wallet_id_is_twelve_bytes(raw: Any) -> None:
    with pytest.raises(DecodeError):
        WalletId(raw)


def test_random_ids_and_nonces() -> None:
    assert WalletId.random() != WalletId.random()
    assert len(new_nonce()) == NONCE_BYTES and new_nonce() != new_nonce()


#: Capacities of a secure element, not bounds of a bank's policy.
CAPACITIES = {Limit.MAX_LOG_ENTRIES, Limit.MAX_PAID_REQUESTS}


@pytest.mark.parametrize("limit", [lim for lim in Limit if lim not in CAPACITIES])
def test_limits_check(limit: Limit) -> None:
    bound = DEFAULT_LIMITS.bound(limit)
    DEFAULT_LIMITS.check(limit, bound)
    with pytest.raises(LimitExceeded) as info:
        DEFAULT_LIMITS.check(limit, bound + 1)
    assert (info.value.limit, info.value.value, info.value.bound) == (limit, bound + 1, bound)


def test_limit_bounds_by_name() -> None:
    limits = Limits(1, 2, 3, 4, 5)
    assert [limits.bound(lim) for lim in Limit if lim not in CAPACITIES] == [
        1,
        2,
        3,
        4,
        5,
    ]


def test_network_params() -> None:
    params = NetworkParams("EUR")
    assert params.algorithm is SignatureAlgorithm.P256
    assert params.max_payment_age == 7 * 86400 and params.clock_skew == 300
    with pytest.raises(MoneyError):
        NetworkParams("XXX")
