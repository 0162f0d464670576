"""``LedgerService.wallet_validity``: the lifetime of the certificates enrolment and sync issue
(the simulator sets it from a scenario's ``certificate_hours``)."""

from __future__ import annotations

import datetime as dt

from ledgerkit import World

from offcash.crypto.pki import DEFAULT_WALLET_VALIDITY
from offcash.crypto.trust import TrustStore

from harness import T0


def _not_after(world: World, cert: bytes) -> int:
    trust = TrustStore.create(world.net.central_bank.certificate_der, world.net.bank_ders)
    return trust.wallet_certificate(cert, None).not_after


def test_default_lifetime(world: World) -> None:
    assert world.ledger.wallet_validity == DEFAULT_WALLET_VALIDITY
    se, _, _ = world.wallet(100)
    res = world.sync(se, T0 + 60)
    assert res.certificate is not None
    assert _not_after(world, res.certificate) == T0 + 60 + DEFAULT_WALLET_VALIDITY.total_seconds()


def test_enrolment_and_sync_use_the_configured_lifetime(world: World) -> None:
    world.ledger.wallet_validity = dt.timedelta(hours=30)
    se = world.net.new_se()
    e = world.ledger.enroll(se.csr(), world.account(), T0)
    assert _not_after(world, e.certificate) == T0 + 30 * 3600
    se.enroll(e.certificate, e.bank_certificates, e.crls, T0)
    world.ledger.wallet_validity = dt.timedelta(hours=2)
    res = world.sync(se, T0 + 60)
    assert res.certificate is not None and _not_after(world, res.certificate) == T0 + 60 + 7200
    assert se.status(T0 + 60).certificate_expires == T0 + 60 + 2 * 3600
