"""What every conformance check asserts with: a failed clause, a refusal that changed nothing,
a change that survives a restart; and the registry of checks.

Theory of operation: a check is a plain function of a ``Bench`` registered with ``@check`` under
the operation whose contract clause it checks; it raises ``CheckFailed`` (or any exception: the
runner reports it as a failure too) when the SE under test breaks the clause. ``refused`` is the
atomicity rule of the whole contract: the call raises the typed error named, and the SE's state
(as ``read_state`` gives it), its status and its status after a restart are what they were.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from offcash.errors import Limit, LimitExceeded, Rejection, VerificationError
from offcash.se.conformance.bench import T0, Bench, Held


class CheckFailed(AssertionError):
    """The SE under test broke a clause of the contract (the message says which)."""


@dataclass(frozen=True)
class Check:
    """One conformance check: its name, the operation whose contract it checks, the function."""

    name: str
    operation: str
    run: Callable[[Bench], None]

    @property
    def doc(self) -> str:
        """The clause it checks (the function's docstring)."""
        return " ".join((self.run.__doc__ or "").split())


#: The operations (and cross-cutting rules) in the order the contract lists them.
OPERATIONS = (
    "csr",
    "enroll",
    "install_crls",
    "status",
    "request",
    "pay",
    "pay_to",
    "sent_payment",
    "open_sealed",
    "receive",
    "load",
    "unload",
    "sync_upload",
    "apply_sync",
    "arguments",
    "counter",
    "limits",
    "expiry",
)

#: Every check, in the order of ``OPERATIONS`` (kept so by ``check``).
CHECKS: list[Check] = []


def check(operation: str) -> Callable[[Callable[[Bench], None]], Callable[[Bench], None]]:
    """Register a check of ``operation``'s contract."""

    def register(fn: Callable[[Bench], None]) -> Callable[[Bench], None]:
        if operation not in OPERATIONS:
            raise ValueError(f"unknown operation {operation!r}")
        CHECKS.append(Check(fn.__name__.removeprefix("check_"), operation, fn))
        CHECKS.sort(key=lambda c: OPERATIONS.index(c.operation))
        return fn

    return register


def expect(condition: bool, clause: str) -> None:
    """``CheckFailed(clause)`` unless ``condition``."""
    if not condition:
        raise CheckFailed(clause)


def refused(
    b: Bench,
    h: Held,
    call: Callable[[], Any],
    error: type[BaseException],
    *,
    rejection: Rejection | None = None,
    limit: Limit | None = None,
    what: str = "",
) -> BaseException:
    """``call`` raises ``error`` (with ``rejection`` / ``limit`` if given) and changes nothing:
    the state bytes, the status, and the status after a restart are as before."""
    label = what or getattr(call, "__name__", "the call")
    before, status = b.state(h), h.se.status(T0)
    try:
        call()
    except error as exc:
        caught: BaseException = exc
    except Exception as exc:
        raise CheckFailed(f"{label}: expected {error.__name__}, got {exc!r}") from exc
    else:
        raise CheckFailed(f"{label}: expected {error.__name__}, it succeeded")
    if rejection is not None:
        got = caught.rejection if isinstance(caught, VerificationError) else None
        expect(got is rejection, f"{label}: expected rejection {rejection}, got {got}")
    if limit is not None:
        got_limit = caught.limit if isinstance(caught, LimitExceeded) else None
        expect(got_limit is limit, f"{label}: expected limit {limit}, got {got_limit}")
    expect(b.state(h) == before, f"{label} was refused but changed the SE's state")
    expect(h.se.status(T0) == status, f"{label} was refused but changed the SE's status")
    expect(b.reopen(h).status(T0) == status, f"{label} was refused but a restart shows a change")
    return caught


def persisted(b: Bench, h: Held, now: int = T0) -> None:
    """What the SE shows now is what it shows after a restart (every change was committed)."""
    live = h.se.status(now)
    expect(b.reopen(h).status(now) == live, "a restart does not show the last committed change")
