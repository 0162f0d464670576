"""The secure element conformance kit: the contract of ``SecureElement`` and its checks.

A vendor of a hardware SE, a card or a TEE implements ``SecureElement`` and an ``SEFactory``
for it (make an SE in a folder, reopen it, and, as an attacker who broke it, read and write its
``SEState`` bytes), then runs::

    from offcash.se.conformance import run
    report = run(MyFactory())     # prints PASS/FAIL per check
    assert report.passed

The checks run on a real network (``Bench``: central bank, banks, an in-process ledger on
SQLite). Each is a clause of the contract in docs/SE-CONFORMANCE.md: every operation's happy
path and refusals, argument checks, atomicity (a refused call changes no byte of the state),
persistence (a restart sees every committed change), exactly-once payment and receipt, the
counter, each limit, expiry, revocation by CRL, sealed payments, and a sync round trip with
the ledger. ``SoftwareFactory`` plugs in ``SoftwareSecureElement``.

This package is a test tool shipped with the library, not part of the core: it uses the ledger,
and no core module imports it.
"""

from offcash.se.conformance.bench import T0, Bench, Held
from offcash.se.conformance.expect import CHECKS, Check, CheckFailed
from offcash.se.conformance.factory import SEFactory, SoftwareFactory
from offcash.se.conformance.runner import Report, Result, run, run_check

__all__ = [
    "CHECKS",
    "T0",
    "Bench",
    "Check",
    "CheckFailed",
    "Held",
    "Report",
    "Result",
    "SEFactory",
    "SoftwareFactory",
    "run",
    "run_check",
]
