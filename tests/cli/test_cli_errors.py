"""The ledger's refusals that carry minor units in their text are said in currency units."""

from __future__ import annotations

from pathlib import Path

from offcash.cli.config import Network, NetworkConfig
from offcash.cli.errors import describe
from offcash.errors import Rejection, VerificationError
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


def test_a_message_refused_for_its_time_is_said_with_dates(tmp_path: Path) -> None:
    """New-user trial: a payment from a phone whose clock ran a day ahead was refused as
    ``1795969699 > 1795883305 + 300``. Dates computed with ``date -u -d @1800000000``."""
    net = Network(tmp_path, NetworkConfig("EUR", "p256", ["Bank A"], "Central", ""))
    ahead = VerificationError(Rejection.FROM_THE_FUTURE, "1800000000 > 1799996400 + 300")
    assert describe(ahead, net) == (
        "verification-failed",
        "the message is dated 2027-01-15 08:00:00Z, 1 h 0 min ahead of this device's clock "
        "(2027-01-15 07:00:00Z; at most 5 min is allowed): check both devices' clocks",
    )
    old = VerificationError(Rejection.TOO_OLD, "1800000000 < 1800864000 - 604800")
    assert describe(old, net)[1] == (
        "the message is dated 2027-01-15 08:00:00Z, 10 days ago: older than the 7 days within "
        "which a payment can be received offline (the payer's sync reports it to the ledger)"
    )
    other = VerificationError(Rejection.TOO_OLD, "voucher expired")  # not a clock comparison
    assert describe(other, net)[1] == f"{Rejection.TOO_OLD.value}: voucher expired"
