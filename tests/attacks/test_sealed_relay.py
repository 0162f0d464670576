"""A relay that carries a sealed payment (chat, mail, a shared folder) learns nothing but its
size, cannot redirect it, and cannot make it count twice.

The payee's request carries its encryption key; the payer's device signs, then seals for it
(``PayerSide.pay``); only the payee's SE opens it (``SecureElement.open_sealed``).
"""

from __future__ import annotations

import cbor2
import pytest

from offcash.crypto import pki
from offcash.crypto.algorithms import PrivateKey, SignatureAlgorithm
from offcash.domain.ids import WalletId
from offcash.domain.limits import Limits
from offcash.encoding import sealed
from offcash.errors import CannotDecrypt
from offcash.protocol import messages as m
from offcash.protocol.exchange import PayeeSide, PayerSide
from offcash.se.state import SEState

from harness import T0, PilotNetwork


def _exchange(network: PilotNetwork) -> tuple[PayerSide, PayeeSide, bytes, bytes]:
    alice, bob = network.wallet(5_000), network.wallet(0, bank="Bank B")
    payer, payee = PayerSide(alice), PayeeSide(bob)
    request = payee.start(1_234, T0, reference="rent")
    assert m.parse_request(request).encryption_key is not None
    payer.receive_request(request)
    return payer, payee, request, payer.pay(T0 + 1)


def test_a_relay_reads_nothing_but_the_size(network: PilotNetwork) -> None:
    payer, _, _, data = _exchange(network)
    assert sealed.is_sealed(data)
    plain = payer.device.sent_payment(1)  # type: ignore[attr-defined]
    p = m.parse_payment(plain)
    secrets = {
        "payer certificate": p.envelope.certificate_der,
        "payee id": p.payee.raw,
        "payer key part": p.envelope.certificate_der[-64:],
        "reference": b"rent",
        "signature": p.envelope.signature,
        "payload (payee, amount, counter, nonce)": p.envelope.payload,
    }
    for name, secret in secrets.items():
        assert secret not in data, name
    assert len(data) > len(plain)  # what a relay learns: the size


def test_the_payee_opens_and_is_paid_once(network: PilotNetwork) -> None:
    _, payee, _, data = _exchange(network)
    first = payee.receive_payment(data, T0 + 2)
    again = payee.receive_payment(data, T0 + 3)  # the relay replays the same sealed bytes
    assert (first.amount, first.duplicate, again.duplicate) == (1_234, False, True)
    assert payee.device.status(T0).balance == 1_234  # type: ignore[attr-defined]


def test_a_resend_is_sealed_afresh_and_counted_once(network: PilotNetwork) -> None:
    payer, payee, _, data = _exchange(network)
    resent = payer.resend()
    assert sealed.is_sealed(resent) and resent != data
    assert not payee.receive_payment(resent, T0 + 2).duplicate
    assert payee.receive_payment(data, T0 + 3).duplicate


def test_someone_else_cannot_open_or_redirect_it(network: PilotNetwork) -> None:
    _, payee, _, data = _exchange(network)
    carol = network.wallet(0)
    with pytest.raises(CannotDecrypt):
        carol.open_sealed(data)
    tampered = data[:-1] + bytes([data[-1] ^ 1])
    with pytest.raises(CannotDecrypt):
        payee.receive_payment(tampered, T0 + 2)
    assert payee.device.status(T0).balance == 0  # type: ignore[attr-defined]
    assert payee.receive_payment(data, T0 + 2).amount == 1_234


def test_the_payer_may_send_it_unsealed(network: PilotNetwork) -> None:
    alice, bob = network.wallet(5_000), network.wallet(0)
    payer, payee = PayerSide(alice), PayeeSide(bob)
    payer.receive_request(payee.start(50, T0))
    data = payer.pay(T0 + 1, encrypt=False)
    assert not sealed.is_sealed(data) and m.parse_payment(data).amount == 50
    assert payee.receive_payment(data, T0 + 2).amount == 50


def test_a_request_with_an_unusable_key_is_refused_before_any_debit(
    network: PilotNetwork,
) -> None:
    """A relay rewrites the request's encryption key to one no message can be sealed for (an
    X25519 key of low order: all zeros): the request does not decode, so the payer's SE signs
    and debits nothing (found by the attacker review: the CLI debited, then crashed sealing)."""
    import cbor2

    from offcash.encoding import cbor
    from offcash.errors import DecodeError

    alice, bob = network.wallet(5_000), network.wallet()
    fields = cbor2.loads(PayeeSide(bob).start(100, T0))
    fields[9] = bytes(32 if network.params.algorithm.short in ("p256", "ed25519") else 1216)
    forged = cbor.encode(fields)
    with pytest.raises(DecodeError, match="encryption_key"):
        m.parse_request(forged)
    ses = network.ses
    assert ses is not None
    before = ses.state_of(alice)  # the whole state, as an attacker would read it out
    with pytest.raises(DecodeError):
        alice.pay(forged, T0)
    assert ses.state_of(alice) == before


def test_a_one_way_payment_is_sealed_for_the_key_the_payees_certificate_binds(
    network: PilotNetwork,
) -> None:
    """No request, so no key in one: the payer takes the payee's key from a directory and
    checks it against the digest the bank bound to the payee's certificate
    (EncryptionKeyDigest), after checking the certificate; a relay reads nothing, another
    wallet cannot open it, the payee is paid once."""
    alice, bob, carol = network.wallet(5_000), network.wallet(0, bank="Bank B"), network.wallet()
    ses = network.ses
    assert ses is not None
    bob_der = SEState.decode(ses.state_of(bob)).certificate  # as the ledger issued it to bob
    bob_cert = alice.trust.wallet_certificate(bob_der or b"", T0)
    bob_key = SEState.decode(ses.state_of(bob)).encryption_key
    assert bob_key is not None and bob_cert.certifies_encryption_key(bob_key.public())
    plain = alice.pay_to(bob_cert.wallet_id, 777, T0, reference="gift")
    data = sealed.seal(plain, bob_key.public())
    p = m.parse_payment(plain)
    for secret in (p.envelope.certificate_der, p.payee.raw, b"gift", p.envelope.signature):
        assert secret not in data
    with pytest.raises(CannotDecrypt):
        carol.open_sealed(data)
    got = bob.receive(bob.open_sealed(data), T0 + 1)
    assert (got.amount, got.duplicate) == (777, False)
    assert bob.receive(bob.open_sealed(data), T0 + 2).duplicate
    assert bob.status(T0).balance == 777


def test_a_relay_cannot_tell_amounts_apart_by_the_sealed_size(network: PilotNetwork) -> None:
    """Attack review: a relay that carries sealed one-way payments sorted them by size: a
    payment of 5 (one CBOR byte) sealed 2 bytes shorter than one of 5,000 (three). The
    plaintext is now padded to the suite's block (docs/PROTOCOL.md section 9)."""
    alice, bob = network.wallet(30_000), network.wallet(0, bank="Bank B")
    assert network.ses is not None
    state = SEState.decode(network.ses.state_of(bob))
    assert state.encryption_key is not None
    key = state.encryption_key.public()
    assert alice.trust.wallet_certificate(state.certificate or b"", T0).certifies_encryption_key(
        key
    )
    payee = bob.status(T0).wallet_id
    assert payee is not None
    small = sealed.seal(alice.pay_to(payee, 5, T0), key)
    large = sealed.seal(alice.pay_to(payee, 5_000, T0), key)
    assert len(small) == len(large)


def test_every_payment_a_network_can_sign_seals_to_one_size(network: PilotNetwork) -> None:
    """The extremes of what a payer of this network signs (amount 1, counter 1, no nonce, no
    reference; against the largest amount, counter and time, a nonce and a reference of 140
    four-byte characters), under a real wallet certificate of the network (with its KEM key's
    digest), seal to one size for a payee of either suite: the padding hides them all."""
    alice, bob = network.wallet(100), network.wallet(0, bank="Bank B")
    payee = bob.status(T0).wallet_id
    assert payee is not None
    certificate = cbor2.loads(cbor2.loads(alice.pay_to(payee, 1, T0)).value[0])[33]
    key = network.params.algorithm.generate()  # a signature's size is the algorithm's
    smallest = m.sign_payment(
        key, certificate, payee=payee, amount=1, currency="EUR", counter=1, time=0,
        nonce=None, reference=None,
    )  # fmt: skip
    largest = m.sign_payment(
        key, certificate, payee=payee, amount=2**63 - 1, currency="EUR", counter=2**63 - 1,
        time=2**40, nonce=bytes(16), reference="\U0001f600" * 140,
    )  # fmt: skip
    assert len(largest) - len(smallest) > 600  # what an unpadded seal showed
    for suite in sealed.KemSuite:
        public = sealed.KemKey.generate(suite).public()
        assert len(sealed.seal(smallest, public)) == len(sealed.seal(largest, public))


def _payer(
    alg: SignatureAlgorithm, bank: str, generation: str | None, big: bool
) -> tuple[PrivateKey, bytes]:
    """A payer key and its wallet certificate (with a hybrid KEM key's digest) from a bank
    named ``bank``; ``big``: the largest policy values and counter base, else the smallest."""
    root_key, bank_key, key = alg.generate(), alg.generate(), alg.generate()
    root = pki.issue_root(root_key, "Central Bank", T0, generation)
    bank_cert = pki.issue_bank(root_key, root, bank_key.public_key(), bank, T0, generation)
    top = 2**63 - 1
    limits = Limits(*[top if big else 1] * 5)
    kem = sealed.KemKey.generate(sealed.KemSuite.MLKEM768_X25519).public()
    cert = pki.issue_wallet(
        bank_key, bank_cert, key.public_key(), WalletId(bytes(12)), limits,
        top if big else 0, T0, encryption_key=kem,
    )  # fmt: skip
    return key, pki.der(cert)


@pytest.mark.parametrize("alg", list(SignatureAlgorithm), ids=lambda a: a.short)
def test_a_payers_class_seals_to_one_size_for_every_bank_name_and_payee_suite(
    alg: SignatureAlgorithm,
) -> None:
    """The extremes of one payer-algorithm class: the smallest payment (a one-byte bank name,
    the smallest policy, amount 1, no nonce or reference) and the largest (a bank name of 64
    bytes, the limit X.509 and ``cryptography`` put on a common name, with the migration's
    generationQualifier, the largest policy, amount, counter and time, a nonce and the
    longest reference) seal to one size, for a payee of either suite: during a migration an
    ML-DSA payer pays payees still on X25519. (An ML-DSA-65 payment of a short bank name fit
    the 9,000-byte ``hpke-3`` size, its others 12,000: the size told a one-way payment with
    no reference from the rest.)"""
    payee = WalletId(bytes(range(12)))
    small_key, small_cert = _payer(alg, "B", None, big=False)
    generation = alg.short if alg.post_quantum else None
    large_key, large_cert = _payer(alg, "\U0001f600" * 16, generation, big=True)
    smallest = m.sign_payment(
        small_key, small_cert, payee=payee, amount=1, currency="EUR", counter=1, time=0,
        nonce=None, reference=None,
    )  # fmt: skip
    largest = m.sign_payment(
        large_key, large_cert, payee=payee, amount=2**63 - 1, currency="EUR",
        counter=2**63 - 1, time=2**40, nonce=bytes(16), reference="\U0001f600" * 140,
    )  # fmt: skip
    for suite in sealed.KemSuite:
        public = sealed.KemKey.generate(suite).public()
        sizes = {len(sealed.seal(smallest, public)), len(sealed.seal(largest, public))}
        assert len(sizes) == 1, (suite.short, len(smallest), len(largest), sizes)
