"""An algorithm migration end to end (docs/PROTOCOL.md, "Algorithm migration"): a P-256
network with funded wallets moves to ML-DSA-44; old and new wallets pay each other offline in
both directions, sync and settle; an old wallet re-keys at its sync and keeps its wallet id,
balance and counter; old-algorithm certificates and signatures are refused once the old
certificates have expired; nothing moves back to P-256; the books balance throughout."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import random
import threading
import time
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import serialization
from ledgerkit import World

from offcash.crypto import pki
from offcash.crypto.algorithms import SignatureAlgorithm, spki
from offcash.domain.ids import WalletId
from offcash.domain.limits import DEFAULT_LIMITS
from offcash.encoding import cose, sealed
from offcash.encoding.sealed import KemSuite
from offcash.errors import (
    CannotDecrypt,
    Rejection,
    SecureElementError,
    ServiceUnavailable,
    VerificationError,
)
from offcash.ledger import authority
from offcash.ledger.sync import SyncResult
from offcash.protocol import messages as m
from offcash.se.software import SoftwareSecureElement
from offcash.se.state import SEState
from offcash.verification import verify_payment
from offcash.wallet.facade import Wallet

from harness import T0

ML_DSA = SignatureAlgorithm.ML_DSA_44
_YEAR = dt.timedelta(days=365)
T1 = T0 + 3600  # the migration


def _alg(payment: bytes) -> SignatureAlgorithm:
    return cose.decode_sign1(payment).alg


def _pay(payer: SoftwareSecureElement, payee: SoftwareSecureElement, amount: int, now: int) -> None:
    payee.receive(payer.pay(payee.request(amount, now), now), now)


def _new_wallet(world: World, balance: int, now: int) -> SoftwareSecureElement:
    """An SE made after the migration, enrolled and funded with ``balance``."""
    network = world.ledger.network()
    se = SoftwareSecureElement(SoftwareSecureElement.new_state(network.params, network.root))
    e = world.ledger.enroll(se.csr(), world.account(), now)
    se.enroll(e.certificate, e.bank_certificates, e.crls, now)
    if balance:
        se.load(world.ledger.fund(e.wallet_id, balance, now), now)
    return se


def _conserved(world: World, issued: int, *ses: SoftwareSecureElement) -> None:
    """The books balance, nothing was issued, and with every SE synced the banks' float is
    exactly what the SEs hold."""
    audit = world.ledger.audit()
    assert audit.balanced
    assert audit.issued == issued
    assert audit.float == sum(se.status(T0).balance for se in ses)


def test_a_p256_network_moves_to_ml_dsa_and_old_wallets_follow(world: World) -> None:
    ledger = world.ledger
    old, old_id, _ = world.wallet(30_000)
    stale, _, _ = world.wallet(30_000)  # never follows the migration
    issued = world.ledger.audit().issued
    params = ledger.migrate(ML_DSA, T1)
    assert (params.algorithm, params.legacy) == (ML_DSA, SignatureAlgorithm.P256)
    # the end of the last P-256 certificate the ledger issued (enrolment at T0, 7 days)
    assert params.legacy_until == T0 + int(pki.DEFAULT_WALLET_VALIDITY.total_seconds())
    network = ledger.network()
    assert network.new_with_old is not None

    # a new SE of the old algorithm is not enrolled any more
    with pytest.raises(VerificationError) as refused:
        world.wallet(0, now=T1)
    assert refused.value.rejection is Rejection.ALGORITHM_NOT_ALLOWED

    # a new ML-DSA wallet
    new = _new_wallet(world, 20_000, T1)
    assert new.trust.wallet_certificate(new._s.certificate or b"", None).algorithm is ML_DSA

    # the old wallet, not yet migrated, pays the new one: a P-256 payment, accepted
    _pay(old, new, 1_000, T1 + 10)
    # the other way the old wallet refuses ML-DSA until it follows the migration
    with pytest.raises(VerificationError) as unknown:
        _pay(new, old, 500, T1 + 20)
    assert unknown.value.rejection is Rejection.ALGORITHM_NOT_ALLOWED
    Wallet(old, ledger).migrate(network)
    assert old.params == params
    _pay(new, old, 500, T1 + 30)
    payment = old.pay(new.request(200, T1 + 40), T1 + 40)
    assert _alg(payment) is SignatureAlgorithm.P256  # the old key signs until the sync
    new.receive(payment, T1 + 40)

    # both sync; the old wallet re-keys: same wallet id, balance and counter carried over
    world.sync(new, T1 + 100)
    before = old.status(T1 + 100)
    result = world.sync(old, T1 + 100)
    cert = old.trust.wallet_certificate(result.certificate or b"", None)
    assert (cert.wallet_id, cert.algorithm) == (old_id, ML_DSA)
    assert cert.certifies_encryption_key(old._s.encryption_key.public())  # type: ignore[union-attr]
    after = old.status(T1 + 100)
    assert (after.wallet_id, after.balance, after.counter) == (
        old_id,
        before.balance,
        before.counter,
    )
    assert after.balance == 30_000 - 1_000 + 500 - 200
    _pay(old, new, 300, T1 + 200)  # now under ML-DSA (its P-256 key is gone)
    assert _alg(old.sent_payment(after.counter + 1)) is ML_DSA
    world.sync(new, T1 + 300)
    world.sync(old, T1 + 300)
    _conserved(world, issued, old, new, stale)

    # a wallet that never followed pays under its P-256 certificate until it expires
    until = params.legacy_until
    late = stale.pay(new.request(700, until - 400), until - 400)
    new.receive(late, until - 390)
    world.sync(new, until - 380)
    # a stale wallet's sync must re-key: no P-256 certificate is renewed after the migration
    up = stale.sync_upload(until - 370)
    with pytest.raises(VerificationError) as renew:
        ledger.sync(up.report, [x.encode() for x in up.entries], stale.csr(), until - 370)
    assert renew.value.rejection is Rejection.ALGORITHM_NOT_ALLOWED
    # it follows and re-keys; its offline payment settled at the payee, its own log now
    Wallet(stale, ledger).migrate(network)
    world.sync(stale, until - 370)
    assert stale.status(until - 370).balance == 30_000 - 700
    _conserved(world, issued, old, new, stale)


def test_old_algorithm_signatures_end_with_the_old_certificates(world: World) -> None:
    old, old_id, _ = world.wallet(1_000)
    old_key = serialization.load_der_private_key(SEState.decode(old._persisted).key_der, None)
    params = world.ledger.migrate(ML_DSA, T1)
    until = params.legacy_until
    new = _new_wallet(world, 0, T1)
    # after the old certificates' end, a P-256 signature is refused, whatever it claims:
    # here the old key (as if broken) signs a payment under the old certificate
    old_cert = world.net.bank().certify_wallet(  # the old bank CA, as a forger holding it
        pki.make_csr(old_key),  # type: ignore[arg-type]
        old_id,
        DEFAULT_LIMITS,
        0,
        T1,
    )
    trust, now = new.trust, until + 60
    forged = m.sign_payment(
        old_key,  # type: ignore[arg-type]
        old_cert,
        payee=new.status(now).wallet_id or WalletId.random(),
        amount=100,
        currency="EUR",
        counter=1,
        time=now,
        nonce=None,
        reference=None,
    )
    with pytest.raises(VerificationError) as expired:
        verify_payment(forged, trust=trust, params=params, now=now)
    assert expired.value.rejection is Rejection.ALGORITHM_NOT_ALLOWED
    # before the end, a P-256 certificate made after the migration (valid beyond the end) is
    # refused too: no old-algorithm certificate is issued after the migration
    early = m.sign_payment(
        old_key,  # type: ignore[arg-type]
        old_cert,
        payee=new.status(T1).wallet_id or WalletId.random(),
        amount=100,
        currency="EUR",
        counter=1,
        time=T1 + 500,
        nonce=None,
        reference=None,
    )
    with pytest.raises(VerificationError) as late_cert:
        verify_payment(early, trust=trust, params=params, now=T1 + 500)
    assert late_cert.value.rejection is Rejection.ALGORITHM_NOT_ALLOWED


def test_a_legacy_wallet_revoked_after_the_migration_is_on_its_old_banks_crl(
    world: World,
) -> None:
    ledger = world.ledger
    old, old_id, _ = world.wallet(10_000)
    ledger.migrate(ML_DSA, T1)
    new = _new_wallet(world, 0, T1)
    ledger.report_lost(old_id, T1 + 10)
    crls = ledger.trust_material(None, T1 + 20).crls
    assert len(crls) == 2  # the bank's new CA's and its old CA's, the same number
    new.install_crls(list(crls), T1 + 20)
    payment = old.pay(new.request(100, T1 + 30), T1 + 30)
    with pytest.raises(VerificationError) as revoked:
        new.receive(payment, T1 + 30)
    assert revoked.value.rejection is Rejection.REVOKED


def test_nothing_moves_back_or_twice(world: World) -> None:
    ledger = world.ledger
    old, _, _ = world.wallet(1_000)
    with pytest.raises(VerificationError) as classical:
        ledger.migrate(SignatureAlgorithm.ED25519, T1)
    assert classical.value.rejection is Rejection.ALGORITHM_NOT_ALLOWED
    params = ledger.migrate(ML_DSA, T1)
    for alg in (SignatureAlgorithm.P256, SignatureAlgorithm.ML_DSA_65):
        with pytest.raises(VerificationError) as again:
            ledger.migrate(alg, T1 + 10)
        assert again.value.rejection is Rejection.ALGORITHM_NOT_ALLOWED
    assert ledger.params == params
    # an SE refuses parameters that are not its network's migration (here: back to P-256)
    network = ledger.network()
    assert network.new_with_old is not None
    back = type(params)(params.currency, SignatureAlgorithm.P256)
    with pytest.raises(VerificationError) as downgrade:
        old.migrate(back, network.root, network.new_with_old, network.bank_certificates)
    assert downgrade.value.rejection is Rejection.ALGORITHM_NOT_ALLOWED
    # nor will it take a root its own root did not vouch for
    with pytest.raises(VerificationError):
        old.migrate(params, network.root, network.root, network.bank_certificates)
    assert old.params.algorithm is SignatureAlgorithm.P256
    with pytest.raises(SecureElementError):  # an SE that cannot re-key (the interface default)
        super(SoftwareSecureElement, old).migrate(
            params, network.root, network.new_with_old, network.bank_certificates
        )


def test_a_re_key_needs_the_old_keys_handover(world: World) -> None:
    """Whoever carries a sync upload cannot get its own key certified for the wallet: the CSR
    of a re-key must carry the reporting key's KeyRollover signature over the new key."""
    ledger = world.ledger
    old, old_id, _ = world.wallet(1_000)
    ledger.migrate(ML_DSA, T1)
    Wallet(old, ledger).migrate(ledger.network())
    up = old.sync_upload(T1 + 10)
    entries = [x.encode() for x in up.entries]
    thief = ML_DSA.generate()
    for csr in (
        pki.make_csr(thief),  # no handover
        pki.make_csr(thief, previous=SignatureAlgorithm.P256.generate()),  # by another key
    ):
        with pytest.raises(VerificationError) as refused:
            ledger.sync(up.report, entries, csr, T1 + 10)
        assert refused.value.rejection is Rejection.BAD_CERTIFICATE
    result = world.sync(old, T1 + 10)  # the SE's own handover
    assert result.certificate is not None
    assert old.trust.wallet_certificate(result.certificate, None).wallet_id == old_id


def test_a_second_service_process_follows_a_migration_made_by_another(world: World) -> None:
    """Attack review: a running service (``offcash serve``) loaded the CAs and parameters
    before an operator's ``network migrate`` in another process. It went on enrolling P-256
    keys under the old bank CA (certificates outliving ``legacy_until``: such a wallet could
    neither pay nor sync) and signing CRLs with the old CA's key into the new CA's row (a
    wallet certified by the new CA and revoked was then on no CRL of its issuer)."""
    ledger = world.ledger
    enrolling, revoking = type(ledger)(ledger.engine), type(ledger)(ledger.engine)
    account = world.account()
    for other in (enrolling, revoking):  # each with its own caches, as another process
        assert other.params.algorithm is SignatureAlgorithm.P256
        assert other.authorities.old_with_new is None
    params = ledger.migrate(ML_DSA, T1)

    # the stale process acts on nothing (a typed error, to retry), then follows: a P-256 key
    # is refused as through the migrator, and it tells of the migration
    csr = world.net.new_se().csr()
    with pytest.raises(ServiceUnavailable):
        enrolling.enroll(csr, account, T1 + 5)
    with pytest.raises(VerificationError) as refused:
        enrolling.enroll(csr, account, T1 + 5)
    assert refused.value.rejection is Rejection.ALGORITHM_NOT_ALLOWED
    network = enrolling.network()
    assert network.params == params and network.new_with_old is not None

    # a wallet of the new CA revoked through the stale process is on its issuer's CRL
    payer, payee = _new_wallet(world, 500, T1), _new_wallet(world, 0, T1)
    payer_id = payer.status(T1).wallet_id
    assert payer_id is not None
    with pytest.raises(ServiceUnavailable):
        revoking.report_lost(payer_id, T1 + 10)
    revoking.report_lost(payer_id, T1 + 10)
    payee.install_crls(list(ledger.trust_material(None, T1 + 20).crls), T1 + 20)
    with pytest.raises(VerificationError) as revoked:
        _pay(payer, payee, 100, T1 + 30)
    assert revoked.value.rejection is Rejection.REVOKED


def test_two_migrations_at_once_one_wins_the_other_is_refused(world: World) -> None:
    """Attack review: two operators (processes) migrate at once, both having loaded the
    classical parameters: the second got a database integrity error (a traceback in the CLI)
    instead of ``ALGORITHM_NOT_ALLOWED``."""
    ledger = world.ledger
    second = type(ledger)(ledger.engine)
    assert second.params.algorithm is SignatureAlgorithm.P256  # loaded before the first move
    params = ledger.migrate(ML_DSA, T1)
    with pytest.raises(VerificationError) as again:
        second.migrate(SignatureAlgorithm.ML_DSA_65, T1 + 1)
    assert again.value.rejection is Rejection.ALGORITHM_NOT_ALLOWED
    assert type(ledger)(ledger.engine).params == params


def test_an_old_bank_key_forges_no_voucher_loaded_after_the_legacy_window(world: World) -> None:
    """Attack review: a forger holding an old bank CA's key (the classical algorithm broken)
    signed a voucher dated before ``legacy_until`` but expiring when it liked; a wallet loaded
    it at any later time (rule 2 looked only at the voucher's own, signed, time): units made
    from nothing, spent offline to honest payees. An old-algorithm voucher, like a payment, is
    accepted only until ``legacy_until + max_payment_age``; an honest one (a day's validity,
    issued before the migration) is loaded well before."""
    params = world.ledger.migrate(ML_DSA, T1)
    se = _new_wallet(world, 0, T1)
    wallet = se.status(T1).wallet_id
    assert wallet is not None
    old_bank = world.net.bank()  # the old CA of the wallet's bank (same common name)
    end = params.legacy_until + params.max_payment_age

    def forged(now: int) -> bytes:
        return m.sign_voucher(
            old_bank.key,
            old_bank.certificate_der,
            wallet=wallet,
            amount=5_000,
            currency="EUR",
            voucher_id=now.to_bytes(16, "big"),
            time=params.legacy_until,
            expires=now + 3600,
        )

    with pytest.raises(VerificationError) as late:
        se.load(forged(end + 1), end + 1)
    assert late.value.rejection is Rejection.ALGORITHM_NOT_ALLOWED
    assert se.status(end + 1).balance == 0
    # within the window the old key is still trusted, as documented (the window's price)
    assert se.load(forged(end), end) == 5_000


def _takeover(world: World, victim: SoftwareSecureElement, old: tuple[object, bytes], now: int):  # type: ignore[no-untyped-def]
    """A forger holding the victim wallet's old (P-256) key and certificate, as if the
    classical algorithm were broken, and what any relay of the victim's syncs sees (sync
    sequence, log digest; counter and balance as the ledger knows them), syncs as the victim
    with a KeyRollover CSR for its own ML-DSA key."""
    key, cert = old
    s = victim._s
    report = m.sign_report(
        key,  # type: ignore[arg-type]
        cert,
        sync_seq=s.sync_seq,
        counter=s.counter,
        balance=s.balance,
        currency="EUR",
        entries=0,
        log_digest=victim._head,
        time=now,
        crls=[],
    )
    csr = pki.make_csr(ML_DSA.generate(), previous=key)  # type: ignore[arg-type]
    return world.ledger.sync(report, [], csr, now)


def _old_key(se: SoftwareSecureElement) -> tuple[object, bytes]:
    state = se._s
    assert state.certificate is not None
    return serialization.load_der_private_key(state.key_der, None), state.certificate


def test_a_broken_old_key_cannot_take_a_wallet_over_after_the_legacy_window(world: World) -> None:
    """Attack review: a sync report signed under the old algorithm was checked at
    ``min(time, not_after)``, so a forger holding a wallet's broken P-256 key signed one at
    any time, with a KeyRollover to its own ML-DSA key, and was certified as the wallet (its
    balance, spent offline; the honest holder then seen as a double spender). After
    ``legacy_until + max_payment_age`` a report under the old algorithm is refused, as a
    payment is; a wallet that never synced since is reported lost (its balance refunded)."""
    ledger = world.ledger
    victim, _, _ = world.wallet(10_000)
    world.sync(victim, T0 + 100)  # its last sync, before the migration
    old = _old_key(victim)
    params = ledger.migrate(ML_DSA, T1)
    late = params.legacy_until + params.max_payment_age + 1
    with pytest.raises(VerificationError) as refused:
        _takeover(world, victim, old, late)
    assert refused.value.rejection is Rejection.ALGORITHM_NOT_ALLOWED


def test_an_old_key_cannot_re_key_a_wallet_that_already_re_keyed(world: World) -> None:
    """Within the legacy window the old key is trusted for payments, but once the wallet's
    holder re-keyed, a second KeyRollover by the old key (a forger who broke it, or a clone)
    must not get another key certified as the same wallet: two live certificates."""
    ledger = world.ledger
    victim, _, _ = world.wallet(10_000)
    old = _old_key(victim)
    ledger.migrate(ML_DSA, T1)
    Wallet(victim, ledger).migrate(ledger.network())
    world.sync(victim, T1 + 100)  # the honest re-key
    with pytest.raises(VerificationError) as refused:
        _takeover(world, victim, old, T1 + 200)
    assert refused.value.rejection is Rejection.ALGORITHM_NOT_ALLOWED


def test_a_wallet_re_keys_once_retries_a_lost_answer_and_its_old_key_then_syncs_no_more(
    world: World,
) -> None:
    """The honest sequence: a P-256 wallet re-keys at its sync (whose answer is lost once: the
    SE retries under its old key with the same new key, and gets it certified again), then syncs
    under its ML-DSA key. A clone of it copied before it followed the migration follows with
    another new key: its old-key report, whatever it carries, is refused, nothing written; the
    counter it spent twice surfaces when the payees sync, attributed to the wallet, both paid."""
    ledger = world.ledger
    victim, wid, _ = world.wallet(5_000)
    assert isinstance(victim, SoftwareSecureElement)
    clone = SoftwareSecureElement(victim._s.encode())  # a copy, before the migration
    issued = ledger.audit().issued
    ledger.migrate(ML_DSA, T1)
    network = ledger.network()
    Wallet(victim, ledger).migrate(network)
    Wallet(clone, ledger).migrate(network)  # the clone makes its own new key
    up = victim.sync_upload(T1 + 10)
    lost = ledger.sync(up.report, [x.encode() for x in up.entries], victim.csr(), T1 + 10)
    assert lost.certificate is not None  # certified, but the SE never gets the answer
    retry = world.sync(victim, T1 + 20)  # the retry: old key, the same new key
    assert retry.certificate is not None
    keys = set()
    for result in (lost, retry):
        cert = victim.trust.wallet_certificate(result.certificate or b"", None)
        assert (cert.wallet_id, cert.algorithm) == (wid, ML_DSA)
        keys.add(hashlib.sha256(spki(cert.public_key)).digest())
    with ledger.engine.connect() as conn:  # two certificates, one key: the one recorded
        assert authority.certified_keys(conn, wid, ML_DSA) == keys and len(keys) == 1
    assert victim.status(T1 + 20).balance == 5_000

    bob, carol = _new_wallet(world, 0, T1 + 30), _new_wallet(world, 0, T1 + 30)
    p1 = victim.pay(bob.request(1_000, T1 + 40), T1 + 40)  # ML-DSA, the certified key
    bob.receive(p1, T1 + 41)
    p2 = clone.pay(carol.request(1_000, T1 + 42), T1 + 42)  # P-256, the old certificate
    carol.receive(p2, T1 + 43)
    assert (_alg(p1), _alg(p2)) == (ML_DSA, SignatureAlgorithm.P256)
    assert m.parse_payment(p1).counter == m.parse_payment(p2).counter
    # the clone's report (old key, a KeyRollover to its own new key) is refused, whole
    anomalies = len(ledger.anomalies())
    with pytest.raises(VerificationError) as refused:
        world.sync(clone, T1 + 50)
    assert refused.value.rejection is Rejection.ALGORITHM_NOT_ALLOWED
    assert len(ledger.anomalies()) == anomalies and ledger.wallet_status(wid) == "active"
    world.sync(victim, T1 + 60)  # the honest wallet syncs under its new key
    assert victim.status(T1 + 60).balance == 4_000

    # its payment surfaces at the payee's sync: a double spend of the wallet, both payees paid
    assert world.sync(bob, T1 + 70).refused == []
    assert world.sync(carol, T1 + 80).refused == []
    assert (bob.status(T1).balance, carol.status(T1).balance) == (1_000, 1_000)
    assert ledger.wallet_status(wid) == "revoked"
    [(counter, held)] = ledger.evidence(wid)
    assert counter == m.parse_payment(p1).counter and sorted(held) == sorted([p1, p2])
    [double] = [a for a in ledger.anomalies(wid) if a.kind == "double-spend"]
    assert double.amount == 1_000
    audit = ledger.audit()
    assert audit.balanced and audit.issued == issued
    assert audit.banks["Bank A"].losses == 1_000


def test_an_old_bank_key_certifies_no_ml_dsa_wallet_beyond_the_legacy_window(
    world: World,
) -> None:
    """Attack review: rule 8 bounded a certificate by ``legacy_until`` only when its *key* was
    of the old algorithm; a forger holding an old bank CA's broken P-256 key certified an
    ML-DSA key of its own (any wallet id, any validity) and paid offline under the network's
    algorithm forever. A certificate an old-algorithm CA signed is bounded the same way."""
    params = world.ledger.migrate(ML_DSA, T1)
    payee = _new_wallet(world, 0, T1)
    payee_id = payee.status(T1).wallet_id
    assert payee_id is not None
    key = ML_DSA.generate()
    forged_cert = world.net.bank().certify_wallet(  # the old bank CA, as a forger holding it
        pki.make_csr(key), WalletId.random(), DEFAULT_LIMITS, 0, T1, validity=_YEAR
    )
    for now in (T1 + 60, params.legacy_until + params.max_payment_age + 60):
        payment = m.sign_payment(
            key,
            forged_cert,
            payee=payee_id,
            amount=100,
            currency="EUR",
            counter=1,
            time=now,
            nonce=None,
            reference=None,
        )
        with pytest.raises(VerificationError) as refused:
            verify_payment(payment, trust=payee.trust, params=params, now=now)
        assert refused.value.rejection is Rejection.ALGORITHM_NOT_ALLOWED


def _at_once(calls: list[Callable[[], object]], delays: list[float]) -> list[object]:
    """Each call in its own thread, started together (each after its delay): what each
    returned, or the ``VerificationError`` it raised."""
    start = threading.Barrier(len(calls))
    out: list[object] = [None] * len(calls)

    def run(i: int) -> None:
        start.wait()
        time.sleep(delays[i])
        try:
            out[i] = calls[i]()
        except VerificationError as exc:
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return out


def test_two_re_keys_of_one_wallet_at_once_certify_one_key(world: World) -> None:
    """A wallet and its clone (copied before the migration, each following with its own new
    key) re-key at the same moment, through two service instances on one database (on
    PostgreSQL, READ COMMITTED: the transactions overlap): the second reads the first's
    certificate under the wallet's lock and is refused; one key is certified, never two."""
    ledger = world.ledger
    pairs = []
    for _ in range(8):
        se, wid, _ = world.wallet(1_000)
        assert isinstance(se, SoftwareSecureElement)
        pairs.append((se, SoftwareSecureElement(se._s.encode()), wid))
    params = ledger.migrate(ML_DSA, T1)
    other = type(ledger)(ledger.engine)  # a second service, as another process
    assert other.params == params
    network = ledger.network()
    rng = random.Random(12)
    for se, clone, wid in pairs:
        uploads = []
        for twin in (se, clone):
            Wallet(twin, ledger).migrate(network)
            up = twin.sync_upload(T1 + 10)
            uploads.append((up.report, [x.encode() for x in up.entries], twin.csr()))
        delays = [0.0, 0.0]
        delays[rng.randrange(2)] = rng.uniform(0, 0.01)
        out = _at_once(
            [
                functools.partial(svc.sync, *upload, T1 + 10)
                for svc, upload in zip((ledger, other), uploads, strict=True)
            ],
            delays,
        )
        [certified] = [x for x in out if isinstance(x, SyncResult) and x.certificate]
        [refused] = [x for x in out if isinstance(x, VerificationError)]
        assert refused.rejection is Rejection.ALGORITHM_NOT_ALLOWED
        cert = se.trust.wallet_certificate(certified.certificate, None)
        with ledger.engine.connect() as conn:  # the winner's key, the only one recorded
            assert authority.certified_keys(conn, wid, ML_DSA) == {
                hashlib.sha256(spki(cert.public_key)).digest()
            }


def test_the_sealing_key_moves_to_the_hybrid_suite_at_the_re_key(world: World) -> None:
    """At a migration to ML-DSA the SE's X25519 sealing key moves to ML-KEM-768 + X25519 with
    its signing key: the re-key CSR carries a new hybrid key, the renewed certificate binds its
    digest, requests carry it. A payment sealed for the X25519 key before (answering a request
    that carried it) still opens after the re-key, until a sync past the old key's retirement
    (the end of the certificate that bound it, plus max_payment_age and clock_skew)."""
    ledger = world.ledger
    payee, payee_id, _ = world.wallet(0)
    payer, _, _ = world.wallet(30_000)
    x25519 = payee._s.encryption_key  # type: ignore[attr-defined]
    assert x25519 is not None and x25519.suite is KemSuite.X25519
    before = payee.request(300, T0 + 10)
    assert m.parse_request(before).encryption_key == x25519.public()
    ledger.migrate(ML_DSA, T1)
    network = ledger.network()
    Wallet(payee, ledger).migrate(network)
    hybrid = payee._s.next_encryption_key  # type: ignore[attr-defined]
    assert hybrid is not None and hybrid.suite is KemSuite.MLKEM768_X25519
    assert pki.csr_encryption_key(payee.csr()) == hybrid.public()
    assert m.parse_request(payee.request(1, T1 + 1)).encryption_key == x25519.public()
    in_flight = sealed.seal(payer.pay(before, T1 + 5), x25519.public())

    result = world.sync(payee, T1 + 10)
    cert = payee.trust.wallet_certificate(result.certificate or b"", None)
    assert cert.algorithm is ML_DSA and cert.certifies_encryption_key(hybrid.public())
    assert not cert.certifies_encryption_key(x25519.public())
    after = payee.request(400, T1 + 20)
    assert m.parse_request(after).encryption_key == hybrid.public()
    assert payee.receive(payee.open_sealed(in_flight), T1 + 30).amount == 300
    fresh = sealed.seal(payer.pay(after, T1 + 40), hybrid.public())
    assert payee.receive(payee.open_sealed(fresh), T1 + 40).amount == 400

    # the enrolment certificate (T0, 7 days) bound the X25519 key: it retires a week after
    params = network.params
    week = int(pki.DEFAULT_WALLET_VALIDITY.total_seconds())
    retires = T0 + week + params.max_payment_age + params.clock_skew
    late = sealed.seal(payer.pay_to(payee_id, 50, T1 + 50), x25519.public())
    world.sync(payee, T1 + 60)  # a sync before then keeps it
    assert m.parse_payment(payee.open_sealed(late)).amount == 50
    world.sync(payee, retires)  # rule 9 still accepts a payment this old: the key is kept
    assert m.parse_payment(payee.open_sealed(late)).amount == 50
    world.sync(payee, retires + 1)  # the first sync past its retirement forgets it
    with pytest.raises(CannotDecrypt):
        payee.open_sealed(late)
    assert m.parse_payment(payee.open_sealed(fresh)).amount == 400
