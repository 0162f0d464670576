"""Running the conformance checks against an SE kind: one call, a printed line per check.

Theory of operation: ``run`` opens one ``Bench`` (a network and a ledger in a folder) for the
factory, runs every check of ``CHECKS`` (or those named), catches what each raises, and prints
``PASS`` or ``FAIL`` with the reason, so a vendor needs neither pytest nor this repository's
tests. Checks are independent (each makes its own SEs), so one failure does not hide another.
"""

from __future__ import annotations

import tempfile
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from offcash.crypto.algorithms import SignatureAlgorithm
from offcash.se.conformance import lifecycle, operations
from offcash.se.conformance.bench import Bench
from offcash.se.conformance.expect import CHECKS, Check
from offcash.se.conformance.factory import SEFactory

# the checks register themselves when their modules load
_MODULES = (operations, lifecycle)


@dataclass(frozen=True)
class Result:
    """One check's outcome."""

    check: Check
    passed: bool
    #: why it failed (empty when it passed)
    detail: str = ""

    def line(self) -> str:
        """``PASS name`` or ``FAIL name: why``."""
        head = f"{'PASS' if self.passed else 'FAIL'} {self.check.operation}: {self.check.name}"
        return head if self.passed else f"{head}: {self.detail}"


@dataclass
class Report:
    """What ``run`` found for one SE kind."""

    kind: str
    results: list[Result] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Whether every check passed."""
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> list[Result]:
        """The checks that failed."""
        return [r for r in self.results if not r.passed]

    def __str__(self) -> str:
        lines = [r.line() for r in self.results]
        ok = len(self.results) - len(self.failures)
        lines.append(f"{self.kind}: {ok}/{len(self.results)} checks passed")
        return "\n".join(lines)


def run_check(check: Check, bench: Bench) -> Result:
    """Run one check on ``bench``; any exception is a failure, reported with its reason."""
    try:
        check.run(bench)
    except AssertionError as exc:
        return Result(check, False, str(exc) or traceback.format_exc(limit=-1).strip())
    except Exception as exc:
        return Result(check, False, f"{type(exc).__name__}: {exc}")
    return Result(check, True)


def run(
    factory: SEFactory,
    directory: Path | None = None,
    *,
    only: Iterable[str] | None = None,
    algorithm: SignatureAlgorithm = SignatureAlgorithm.P256,
    echo: Callable[[str], object] | None = print,
) -> Report:
    """Check ``factory``'s SEs against the whole contract (or the checks named in ``only``);
    SEs and the ledger live under ``directory`` (a temporary folder by default). Prints a line
    per check through ``echo`` (None: silent) and returns the ``Report``."""
    wanted = None if only is None else set(only)
    checks = [c for c in CHECKS if wanted is None or c.name in wanted]
    if wanted is not None and len(checks) != len(wanted):
        unknown = wanted - {c.name for c in checks}
        raise ValueError(f"no such checks: {sorted(unknown)}")
    report = Report(factory.kind)
    with tempfile.TemporaryDirectory(prefix="offcash-se-conformance-") as tmp:
        bench = Bench.open(factory, Path(directory or tmp), algorithm)
        try:
            for c in checks:
                result = run_check(c, bench)
                report.results.append(result)
                if echo is not None:
                    echo(result.line())
        finally:
            bench.close()
    if echo is not None:
        echo(str(report).splitlines()[-1])
    return report
