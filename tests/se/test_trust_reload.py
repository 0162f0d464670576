"""A software SE's kept trust store (the fast path of a sync with the bank CAs it holds) is
the one its persisted state reloads to, and a sync refused for a forged CRL after a valid
newer one changes neither the state nor the store in memory."""

from __future__ import annotations

import pytest
from test_trust_at_sync import _enrolled, _paid, _sync

from offcash.errors import Rejection, VerificationError
from offcash.se.software import SoftwareSecureElement

from harness import T0, PilotNetwork
from se_kinds import network_per_kind

__all__ = ["network_per_kind"]


def test_a_refused_fast_path_sync_changes_nothing_and_the_state_reloads_alike(
    network: PilotNetwork,
) -> None:
    banks = network.bank_ders
    shop, _ = _enrolled(network, "Bank A", banks)
    payer, serial = _enrolled(network, "Bank B", banks, 100)
    if not isinstance(shop, SoftwareSecureElement):
        pytest.skip("the kept trust store is the software SE's")
    bank_b = network.bank("Bank B")
    _sync(network, shop, T0 + 10, banks, [bank_b.crl([(serial, T0 + 5)], 1, T0 + 5)])
    forged = bytearray(bank_b.crl([], 5, T0 + 6))
    forged[-3] ^= 1  # in the signature: still DER, no longer the bank's
    before = shop._s.encode()
    with pytest.raises(VerificationError) as info:  # a valid newer CRL, then the forged one
        _sync(network, shop, T0 + 20, banks, [bank_b.crl([], 3, T0 + 15), bytes(forged)])
    assert info.value.rejection is Rejection.UNKNOWN_ISSUER
    assert shop._s.encode() == before
    reloaded = SoftwareSecureElement(before)
    assert reloaded.trust.crl_numbers() == shop.trust.crl_numbers() == [("Bank B", 1)]
    assert reloaded.trust.bank_certificates() == shop.trust.bank_certificates()
    for se in (shop, reloaded):  # the payer stays revoked in both
        with pytest.raises(VerificationError) as info:
            _paid(payer, se, T0 + 30)
        assert info.value.rejection is Rejection.REVOKED
