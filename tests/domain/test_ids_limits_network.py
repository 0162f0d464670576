"""Wallet ids, offline limits and network parameters."""

from __future__ import annotations

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


@pytest.mark.parametrize("limit", [lim for lim in Limit if lim is not Limit.MAX_LOG_ENTRIES])
def test_limits_check(limit: Limit) -> None:
    bound = DEFAULT_LIMITS.bound(limit)
    DEFAULT_LIMITS.check(limit, bound)
    with pytest.raises(LimitExceeded) as info:
        DEFAULT_LIMITS.check(limit, bound + 1)
    assert (info.value.limit, info.value.value, info.value.bound) == (limit, bound + 1, bound)


def test_limit_bounds_by_name() -> None:
    limits = Limits(1, 2, 3, 4, 5)
    assert [limits.bound(lim) for lim in Limit if lim is not Limit.MAX_LOG_ENTRIES] == [
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
