"""The secure element conformance kit: the contract of ``SecureElement`` and its checks.

A vendor of a hardware SE, a card or a TEE implements ``SecureElement`` and an ``SEFactory``
for it, and runs ``offcash.se.conformance.run(factory)``: it prints pass or fail per check and
returns a ``Report``. The contract it checks is docs/SE-CONFORMANCE.md.
"""

from offcash.se.conformance.factory import SEFactory, SoftwareFactory

__all__ = ["SEFactory", "SoftwareFactory"]
