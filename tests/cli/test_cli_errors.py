"""The ledger's refusals that carry minor units in their text are said in currency units."""

from __future__ import annotations

from pathlib import Path

from offcash.cli.config import Network, NetworkConfig
from offcash.cli.errors import describe
from offcash.ledger.errors import LimitReached, UnloadRefused


def test_unload_and_funding_refusals_are_said_in_units(tmp_path: Path) -> None:
    net = Network(tmp_path, NetworkConfig("EUR", "p256", ["Bank A"], "Central", ""))
    code, text = describe(
        UnloadRefused(
            "unload of 2000 refused: 2000 asked, 0 accounted for by the wallet's signed "
            "history: sync first (the next sync settles the request from the log)"
        ),
        net,
    )
    assert code == "unload-refused"
    assert text.startswith("unload of 20.00 EUR refused: the ledger accounts for 0.00 EUR")
    assert "sync the wallet first" in text
    _, text = describe(
        UnloadRefused(
            "unload of 100000000 refused: 100000000 asked, over the certified max_balance 30000"
        ),
        net,
    )
    assert text == (
        "unload of 1000000.00 EUR refused: more than the wallet's certified maximum balance "
        "of 300.00 EUR"
    )
    code, text = describe(
        LimitReached(
            "wallet abcdefghijklmnopqrst holds 25000 by the ledger's books: 10000 more would "
            "exceed its certified max_balance 30000"
        ),
        net,
    )
    assert code == "limit-reached"
    assert text.startswith(
        "wallet abcdefghijklmnopqrst holds 250.00 EUR by the ledger's books: 100.00 EUR more "
        "would pass its maximum balance of 300.00 EUR"
    )
