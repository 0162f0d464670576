"""Money: integer minor units, exact parse/format, no floats, no mixed currencies."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offcash.domain.money import _MINOR_DIGITS, MAX_MINOR, Currency, Money, is_known_currency
from offcash.errors import MoneyError

BY_DIGITS = {d: sorted(c for c, n in _MINOR_DIGITS.items() if n == d) for d in (0, 2, 3)}
CURRENCIES = st.sampled_from([c for codes in BY_DIGITS.values() for c in codes])


@settings(max_examples=200)
@given(minor=st.integers(0, MAX_MINOR), code=CURRENCIES)
def test_format_parse_round_trip(minor: int, code: str) -> None:
    money = Money.of(minor, code)
    text = money.format()
    assert Money.parse(text, code) == money
    assert Money.parse(text, code).format() == text
    assert str(money) == f"{text} {code}"


@settings(max_examples=200)
@given(units=st.integers(0, 10**12), frac=st.integers(0, 999), code=CURRENCIES)
def test_parse_format_round_trip(units: int, frac: int, code: str) -> None:
    digits = Currency.of(code).digits
    text = str(units) if digits == 0 else f"{units}.{frac % 10**digits:0{digits}d}"
    assert Money.parse(text, code).format() == text


@pytest.mark.parametrize(
    ("text", "code", "minor"),
    [
        ("12.50", "EUR", 1250),
        ("12.5", "EUR", 1250),
        ("12", "EUR", 1200),
        ("0.01", "EUR", 1),
        (" 7.00\n", "EUR", 700),
        ("1000", "JPY", 1000),
        ("1.234", "KWD", 1234),
        ("0.1", "BHD", 100),
        ("92233720368547758.07", "EUR", MAX_MINOR),
    ],
)
def test_parse_examples(text: str, code: str, minor: int) -> None:
    assert Money.parse(text, code).minor == minor


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("12.505", "EUR"),
        ("0.001", "USD"),
        ("1.5", "JPY"),
        ("1.0", "JPY"),
        ("1.2345", "KWD"),
    ],
)
def test_too_many_decimals(text: str, code: str) -> None:
    with pytest.raises(MoneyError, match="decimals"):
        Money.parse(text, code)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "-1",
        "+1",
        "1e3",
        "1,50",
        "12.",
        ".5",
        "1.2.3",
        "NaN",
        "inf",
        "0x10",
        "1_000",
        "\u0661\u0662.\u0665\u0660",
        "\uff11\uff12",
        "1" * 5000,
        "92233720368547758.08",
        12.5,
        1250,
        None,
        b"12.50",
    ],
    ids=lambda t: repr(t)[:20],
)
def test_not_an_amount(text: Any) -> None:
    with pytest.raises(MoneyError):
        Money.parse(text, "EUR")


@pytest.mark.parametrize("minor", [1.5, 1.0, "1", None, True, -1, MAX_MINOR + 1], ids=repr)
def test_minor_units_must_be_a_non_negative_int(minor: Any) -> None:
    with pytest.raises(MoneyError):
        Money(minor, Currency.of("EUR"))


def test_float_refused_everywhere() -> None:
    with pytest.raises(MoneyError):
        Money(1.5, Currency.of("EUR"))  # type: ignore[arg-type]
    with pytest.raises(MoneyError):
        Money.of(1.5, "EUR")  # type: ignore[arg-type]
    with pytest.raises(MoneyError):
        Money.parse(1.5, "EUR")  # type: ignore[arg-type]


def test_mixed_currencies_refused() -> None:
    eur, usd = Money.of(100, "EUR"), Money.of(100, "USD")
    for op in (lambda: eur + usd, lambda: eur - usd, lambda: eur < usd, lambda: eur <= usd):
        with pytest.raises(MoneyError, match="mixed currencies"):
            op()
    assert eur != usd


def test_arithmetic() -> None:
    a, b = Money.of(250, "EUR"), Money.of(100, "EUR")
    assert (a + b).minor == 350 and (a - b).minor == 150
    assert b < a and b <= Money.of(100, "EUR") and not a < b
    with pytest.raises(MoneyError, match="negative"):
        b - a
    with pytest.raises(MoneyError, match="out of range"):
        Money.of(MAX_MINOR, "EUR") + Money.of(1, "EUR")


def test_currencies() -> None:
    assert Currency.of("eur") == Currency("EUR", 2)
    assert (Currency.of("JPY").digits, Currency.of("KWD").digits) == (0, 3)
    assert is_known_currency("EUR") and not is_known_currency("eur")
    for code in ("XXX", "EU", "", None, 978):
        with pytest.raises(MoneyError):
            Currency.of(code)  # type: ignore[arg-type]
    assert str(Money.parse("5", Currency.of("JPY"))) == "5 JPY"
