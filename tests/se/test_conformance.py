"""The conformance kit (``offcash.se.conformance``) against every SE kind of tests/se_kinds.py,
one test per check; ``run`` as a vendor calls it; and SEs with one flaw each, which the kit
must fail (so a pass means something)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from offcash.errors import VerificationError
from offcash.se.conformance import CHECKS, Bench, Check, SEFactory, SoftwareFactory, run, run_check
from offcash.se.paid import PaidRequests
from offcash.se.software import SoftwareSecureElement
from offcash.se.storage import SealedFile

from se_kinds import FAST_N


@pytest.fixture(scope="module")
def bench(se_factory: SEFactory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    b = Bench.open(se_factory, tmp_path_factory.mktemp(f"bench-{se_factory.kind}"))
    yield b
    b.close()


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.name)
def test_the_se_kind_passes_the_check(bench: Bench, check: Check) -> None:
    result = run_check(check, bench)
    assert result.passed, result.line()


def test_run_checks_a_kind_in_one_call_and_prints_a_line_per_check(
    se_factory: SEFactory, tmp_path: Path
) -> None:
    lines: list[str] = []
    names = [CHECKS[0].name, CHECKS[-1].name]
    report = run(se_factory, tmp_path, only=names, echo=lines.append)
    assert report.passed and report.kind == se_factory.kind
    assert [r.check.name for r in report.results] == names
    assert lines == [f"PASS {c.operation}: {c.name}" for c in (CHECKS[0], CHECKS[-1])] + [
        f"{se_factory.kind}: 2/2 checks passed"
    ]
    with pytest.raises(ValueError, match="no such checks"):
        run(se_factory, tmp_path / "again", only=["no_such_check"], echo=None)


def test_every_operation_of_the_interface_has_a_check() -> None:
    operations = {c.operation for c in CHECKS}
    interface = {
        "csr", "enroll", "install_crls", "status", "request", "pay", "pay_to", "sent_payment",
        "open_sealed", "receive", "load", "unload", "sync_upload", "apply_sync",
    }  # fmt: skip
    assert interface <= operations
    assert {"arguments", "counter", "limits", "expiry"} <= operations


# --- SEs with one flaw each: the kit fails them ----------------------------------------------


class _Flawed(SoftwareFactory):
    """The software factory, making SEs of a flawed subclass (software only: the flaws are
    planted in its code)."""

    def __init__(self, element: type[SoftwareSecureElement]) -> None:
        super().__init__(scrypt_n=FAST_N)
        self.element = element
        self.kind = f"flawed-{element.__name__}"

    def create(self, directory: Path, params: Any, root_certificate: bytes) -> Any:
        super().create(directory, params, root_certificate)
        return self.reopen(directory)

    def reopen(self, directory: Path) -> SoftwareSecureElement:
        store, state = SealedFile.open(self.path(directory), self.pin)
        return self.element(state, store)


class ForgetsToPersist(SoftwareSecureElement):
    """Keeps its changes in memory only."""

    def _commit(self) -> None:
        pass


class BumpsTheCounterOnRefusal(SoftwareSecureElement):
    """Persists a counter increment when it refuses a payment."""

    def pay_to(self, *args: Any, **kwargs: Any) -> bytes:
        try:
            return super().pay_to(*args, **kwargs)
        except VerificationError:
            self._s.counter += 1
            self._commit()
            raise


class ForgetsPaidRequests(SoftwareSecureElement):
    """Pays the same request again as a new payment."""

    def pay(self, request: bytes, now: int) -> bytes:
        self._s.paid = PaidRequests()
        return super().pay(request, now)


@pytest.mark.parametrize(
    ("element", "check", "why"),
    [
        (ForgetsToPersist, "load_credits_a_voucher_once", "restart"),
        (BumpsTheCounterOnRefusal, "pay_to_debits_and_refuses_a_self_payment", "changed"),
        (
            ForgetsPaidRequests,
            "pay_debits_once_and_the_same_request_gets_the_same_bytes",
            "paid twice",
        ),
    ],
)
def test_the_kit_fails_a_flawed_se(
    element: type[SoftwareSecureElement], check: str, why: str, tmp_path: Path
) -> None:
    report = run(_Flawed(element), tmp_path, only=[check], echo=None)
    [result] = report.results
    assert not report.passed and not result.passed
    assert why in result.detail, result.detail
    honest = run(SoftwareFactory(scrypt_n=FAST_N), tmp_path / "honest", only=[check], echo=None)
    assert honest.passed
