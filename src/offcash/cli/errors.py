"""What the CLI says when something is refused: one error code and one plain message.

Theory of operation: the core raises typed errors that carry numbers in minor units
(``LimitExceeded(limit, value, bound)``, ``InsufficientFunds(balance, amount)``) because it
does not format money for people. ``describe`` turns such an error into the code and message a
person reads: amounts in currency units with the currency (``300.00 EUR``), durations in days
or hours, times as UTC dates (a message refused for its time), wallet ids replaced by the
names the network folder knows, and, where there is one, the next step (offline limits: sync
to reset them; a wrong PIN: which wallet and how to give its PIN). ``main`` prints the result
as one line, or as a JSON object with ``--json``; the demo tells refusals with it too.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING

from offcash.domain.money import Money
from offcash.errors import (
    InsufficientFunds,
    Limit,
    LimitExceeded,
    OffcashError,
    Rejection,
    VerificationError,
)

if TYPE_CHECKING:
    from offcash.cli.config import Network

#: Limits whose bound is an amount of money.
MONEY_LIMITS = frozenset({Limit.MAX_BALANCE, Limit.MAX_PAYMENT, Limit.MAX_OFFLINE_VALUE})
#: Limits that a sync resets (they count what the wallet did offline since its last sync).
RESET_BY_SYNC = frozenset(
    {
        Limit.MAX_OFFLINE_PAYMENTS,
        Limit.MAX_OFFLINE_VALUE,
        Limit.MAX_OFFLINE_SECONDS,
        Limit.MAX_LOG_ENTRIES,
    }
)
_LABEL = {
    Limit.MAX_BALANCE: "the wallet would hold {value}, over its limit of {bound}",
    Limit.MAX_PAYMENT: "a single payment of {value} is over the limit of {bound}",
    Limit.MAX_OFFLINE_PAYMENTS: (
        "offline payment limit reached: payment {value} since the last sync, limit {bound}"
    ),
    Limit.MAX_OFFLINE_VALUE: (
        "offline spending limit reached: {value} sent since the last sync would exceed {bound}"
    ),
    Limit.MAX_OFFLINE_SECONDS: (
        "offline time limit reached: {value} since the last sync, limit {bound}"
    ),
    Limit.MAX_LOG_ENTRIES: "the wallet's log is full: {value} entries, limit {bound}",
}


#: The ledger's refusals that carry amounts in minor units in their text (the same text comes
#: back over HTTP, where the typed fields are gone), and how the CLI says them.
_LEDGER_AMOUNTS = [
    (
        re.compile(r"account holds (\d+), (\d+) asked"),
        "the account holds {0}, less than the {1} asked",
    ),
    (
        re.compile(r"voucher id already used for (\d+), not (\d+)"),
        "this voucher id was already used for {0}, not {1}",
    ),
    (
        re.compile(
            r"unload of (\d+) refused: \d+ asked, (\d+) accounted for by the wallet's signed "
            r"history: sync first \(the next sync settles the request from the log\)"
        ),
        "unload of {0} refused: the ledger accounts for {1} from the wallet's synced history; "
        "sync the wallet first (its next sync settles this unload from its log)",
    ),
    (
        re.compile(r"unload of (\d+) refused: \d+ asked, over the certified max_balance (\d+)"),
        "unload of {0} refused: more than the wallet's certified maximum balance of {1}",
    ),
    (
        re.compile(
            r"(wallet \S+) holds (\d+) by the ledger's books: (\d+) more would exceed its "
            r"certified max_balance (\d+)"
        ),
        "{0} holds {1} by the ledger's books: {2} more would pass its maximum balance of {3}; "
        "sync it first if it spent offline",
    ),
]


def money_text(minor: int, currency: str | None) -> str:
    """``minor`` units as ``12.50 EUR`` (just the integer if the currency is unknown)."""
    if currency is None:
        return str(minor)
    return str(Money.of(minor, currency))


_CLOCK = re.compile(r"(\d+) [<>] (\d+) [-+] (\d+)")


def _time_refusal(exc: VerificationError) -> str | None:
    """A message refused for its time (``FROM_THE_FUTURE``, ``TOO_OLD``), said with dates and
    spans instead of the verifier's ``time > now + skew`` in epoch seconds; ``None`` for any
    other refusal."""
    match = _CLOCK.fullmatch(exc.detail)
    if match is None or exc.rejection not in (Rejection.FROM_THE_FUTURE, Rejection.TOO_OLD):
        return None
    time, now, margin = (int(x) for x in match.groups())
    dated = f"the message is dated {_utc(time)}"
    if exc.rejection is Rejection.FROM_THE_FUTURE:
        return (
            f"{dated}, {span_text(time - now)} ahead of this device's clock ({_utc(now)}; at "
            f"most {span_text(margin)} is allowed): check both devices' clocks"
        )
    return (
        f"{dated}, {span_text(now - time)} ago: older than the {span_text(margin)} within "
        "which a payment can be received offline (the payer's sync reports it to the ledger)"
    )


def _utc(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def span_text(seconds: int) -> str:
    """A duration for people: ``7 days``, ``6 days 23 h``, ``3 h 20 min``, ``45 s``."""
    if seconds >= 86400:
        days, rest = divmod(seconds, 86400)
        text = f"{days} day" + ("s" if days != 1 else "")
        return text + (f" {rest // 3600} h" if rest >= 3600 else "")
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    if seconds >= 60:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def describe(exc: OffcashError, net: Network | None) -> tuple[str, str]:
    """The error code and the message a person reads for ``exc`` (see the module docstring)."""
    currency = net.config.currency if net is not None else None
    if isinstance(exc, LimitExceeded):
        value: str
        bound: str
        if exc.limit in MONEY_LIMITS:
            value, bound = money_text(exc.value, currency), money_text(exc.bound, currency)
        elif exc.limit is Limit.MAX_OFFLINE_SECONDS:
            value, bound = span_text(exc.value), span_text(exc.bound)
        else:
            value, bound = str(exc.value), str(exc.bound)
        text = _LABEL[exc.limit].format(value=value, bound=bound)
        if exc.limit in RESET_BY_SYNC:
            text += ": sync the wallet to reset it (`offcash wallet sync NAME`)"
        elif exc.limit is Limit.MAX_BALANCE:
            text += ": spend or unload first"
        return exc.code, text
    if isinstance(exc, InsufficientFunds):
        text = (
            f"the wallet holds {money_text(exc.balance, currency)}, less than "
            f"{money_text(exc.amount, currency)}"
        )
        return exc.code, text
    if isinstance(exc, VerificationError) and (said := _time_refusal(exc)) is not None:
        return exc.code, said
    text = str(exc)
    for pattern, template in _LEDGER_AMOUNTS:
        match = pattern.fullmatch(text)
        if match is not None:
            text = template.format(
                *(money_text(int(x), currency) if x.isdigit() else x for x in match.groups())
            )
            break
    return exc.code, net.named(text) if net is not None else text
