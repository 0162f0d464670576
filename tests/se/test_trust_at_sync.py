"""What an SE trusts after a sync: the bank CAs and CRLs the sync gives it, whether or not the
bank CAs are the ones it already held (the software SE then keeps its parsed trust store and
checks only the new CRLs), and nothing of a sync it refused."""

from __future__ import annotations

import pytest
from cryptography import x509

from offcash.crypto import pki
from offcash.domain.ids import WalletId
from offcash.domain.limits import DEFAULT_LIMITS
from offcash.errors import Rejection, SecureElementRevoked, VerificationError
from offcash.protocol import messages as m
from offcash.se.interface import SecureElement

from harness import T0, PilotNetwork
from se_kinds import network_per_kind

__all__ = ["network_per_kind"]


def _enrolled(
    net: PilotNetwork, bank: str, banks: list[bytes], balance: int = 0
) -> tuple[SecureElement, int]:
    """A new SE of ``bank`` that trusts only ``banks``, funded with ``balance``, and the serial
    of its certificate."""
    se, b = net.new_se(), net.bank(bank)
    cert = b.certify_wallet(se.csr(), WalletId.random(), DEFAULT_LIMITS, 0, T0)
    se.enroll(cert, banks, [], T0)
    if balance:
        wid = se.status(T0).wallet_id
        assert wid is not None
        se.load(b.voucher(wid, balance, net.params.currency, T0), T0)
    return se, x509.load_der_x509_certificate(cert).serial_number


def _sync(
    net: PilotNetwork, se: SecureElement, now: int, banks: list[bytes], crls: list[bytes]
) -> int:
    """Acknowledge the SE's log and renew its certificate, giving it ``banks`` and ``crls``;
    the serial of the renewed certificate."""
    status = se.status(now)
    assert status.wallet_id is not None and status.bank is not None
    bank = net.bank(status.bank)
    report = m.parse_report(se.sync_upload(now).report)
    cert = bank.certify_wallet(se.csr(), status.wallet_id, DEFAULT_LIMITS, report.counter, now)
    se.apply_sync(bank.acknowledge(report, status.wallet_id, now), cert, banks, crls, now)
    return int(x509.load_der_x509_certificate(cert).serial_number)


def _paid(payer: SecureElement, payee: SecureElement, now: int) -> int:
    """Pay 1 from ``payer`` to ``payee``; the payee's balance after it."""
    payee.receive(payer.pay(payee.request(1, now), now), now)
    return payee.status(now).balance


def test_a_sync_with_the_same_banks_installs_new_crls(network: PilotNetwork) -> None:
    banks = network.bank_ders
    shop, _ = _enrolled(network, "Bank A", banks)
    payer, serial = _enrolled(network, "Bank B", banks, 100)
    assert _paid(payer, shop, T0 + 1) == 1
    bank_b = network.bank("Bank B")
    _sync(network, shop, T0 + 10, banks, [bank_b.crl([(serial, T0 + 5)], 1, T0 + 5)])
    with pytest.raises(VerificationError) as info:
        _paid(payer, shop, T0 + 20)
    assert info.value.rejection is Rejection.REVOKED
    _sync(network, shop, T0 + 30, banks, [])  # a sync with no CRL keeps the one held
    with pytest.raises(VerificationError) as info:
        _paid(payer, shop, T0 + 40)
    assert info.value.rejection is Rejection.REVOKED
    # an older CRL does not replace it; a newer one that no longer lists the payer does
    _sync(network, shop, T0 + 50, banks, [bank_b.crl([], 0, T0 + 45)])
    with pytest.raises(VerificationError):
        _paid(payer, shop, T0 + 60)
    _sync(network, shop, T0 + 70, banks, [bank_b.crl([], 2, T0 + 65)])
    assert _paid(payer, shop, T0 + 80) == 2


def test_a_crl_installed_after_syncs_listing_the_se_stops_it(network: PilotNetwork) -> None:
    """``install_crls`` on the store a sync kept: a CRL of its bank listing the certificate the
    SE holds stops it paying; one listing its earlier certificate does not."""
    banks = network.bank_ders
    payer, first = _enrolled(network, "Bank A", banks, 100)
    shop, _ = _enrolled(network, "Bank B", banks)
    bank_a = network.bank("Bank A")
    _sync(network, payer, T0 + 10, banks, [])
    held = _sync(network, payer, T0 + 20, banks, [])
    assert payer.install_crls([bank_a.crl([(first, T0 + 25)], 1, T0 + 25)], T0 + 30) is False
    assert _paid(payer, shop, T0 + 35) == 1
    assert payer.install_crls([bank_a.crl([(held, T0 + 40)], 2, T0 + 40)], T0 + 45) is True
    with pytest.raises(SecureElementRevoked):
        payer.pay(shop.request(1, T0 + 50), T0 + 50)


def test_a_sync_with_other_banks_trusts_exactly_those(network: PilotNetwork) -> None:
    bank_a_only, both = network.bank_ders[:1], network.bank_ders
    shop, _ = _enrolled(network, "Bank A", bank_a_only)
    payer, _ = _enrolled(network, "Bank B", both, 100)
    with pytest.raises(VerificationError) as info:
        _paid(payer, shop, T0 + 1)
    assert info.value.rejection is Rejection.UNKNOWN_ISSUER
    _sync(network, shop, T0 + 10, both, [])
    assert _paid(payer, shop, T0 + 20) == 1
    _sync(network, shop, T0 + 30, bank_a_only, [])
    with pytest.raises(VerificationError) as info:
        _paid(payer, shop, T0 + 40)
    assert info.value.rejection is Rejection.UNKNOWN_ISSUER


def test_a_sync_with_a_forged_crl_changes_nothing(network: PilotNetwork) -> None:
    banks = network.bank_ders
    shop, _ = _enrolled(network, "Bank A", banks)
    payer, serial = _enrolled(network, "Bank B", banks, 100)
    bank_a, bank_b = network.bank("Bank A"), network.bank("Bank B")
    _sync(network, shop, T0 + 10, banks, [bank_b.crl([], 1, T0 + 5)])
    # Bank B's CRL with the payer on it, signed by Bank A's key
    forged = pki.der(pki.build_crl(bank_a.key, bank_b.certificate, [(serial, T0)], 9, T0 + 15))
    before = shop.status(T0 + 20)
    with pytest.raises(VerificationError) as info:
        _sync(network, shop, T0 + 20, banks, [forged])
    assert info.value.rejection is Rejection.UNKNOWN_ISSUER
    assert shop.status(T0 + 20) == before
    assert _paid(payer, shop, T0 + 30) == 1  # the forged CRL was not installed
    assert m.parse_report(shop.sync_upload(T0 + 40).report).crls == [("Bank B", 1)]


def test_a_refused_sync_installs_none_of_its_crls(network: PilotNetwork) -> None:
    """A sync whose certificate the SE refuses (counter ahead of it) leaves its trust as it
    was, though the CRL given with it verified."""
    banks = network.bank_ders
    shop, _ = _enrolled(network, "Bank A", banks)
    payer, serial = _enrolled(network, "Bank B", banks, 100)
    status = shop.status(T0 + 10)
    assert status.wallet_id is not None
    bank_a = network.bank("Bank A")
    report = m.parse_report(shop.sync_upload(T0 + 10).report)
    ahead = bank_a.certify_wallet(
        shop.csr(), status.wallet_id, DEFAULT_LIMITS, report.counter + 1, T0 + 10
    )
    crl = network.bank("Bank B").crl([(serial, T0 + 5)], 1, T0 + 5)
    ack = bank_a.acknowledge(report, status.wallet_id, T0 + 10)
    with pytest.raises(VerificationError) as info:
        shop.apply_sync(ack, ahead, banks, [crl], T0 + 10)
    assert info.value.rejection is Rejection.BAD_CERTIFICATE
    assert shop.status(T0 + 10) == status
    assert _paid(payer, shop, T0 + 20) == 1
