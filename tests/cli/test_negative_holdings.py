"""``ledger audit`` and ``account show`` print holdings that may be negative (a bank's float or
reserve after losses, an account charged back beyond what it held): a minus sign, never a crash
(issue 9, item 2: both failed on a negative float)."""

from __future__ import annotations

from pathlib import Path

from offcash.cli.config import Network, NetworkConfig


def test_negative_holdings_are_shown_with_a_minus_sign(tmp_path: Path) -> None:
    net = Network(tmp_path, NetworkConfig("EUR", "p256", ["Bank A"], "Central", ""))
    assert [str(net.money_of(v)) for v in (-100_000_000_00, -1, 0, 1_250)] == [
        "-100000000.00",
        "-0.01",
        "0.00",
        "12.50",
    ]
    jpy = Network(tmp_path, NetworkConfig("JPY", "p256", ["Bank A"], "Central", ""))
    assert str(jpy.money_of(-5)) == "-5"
