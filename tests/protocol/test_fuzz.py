"""Fuzzing every decoder and ``verify_payment``: only ``OffcashError`` subclasses may escape.

Inputs: random bytes, random CBOR values, mutations of valid messages (bit flips, insertions,
deletions, truncations), validly signed payments with random payloads, and payments carrying
a mutated certificate.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable
from typing import Any

import cbor2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offcash.crypto import pki
from offcash.crypto.algorithms import SignatureAlgorithm
from offcash.crypto.trust import TrustStore
from offcash.domain.ids import WalletId
from offcash.encoding import cbor, cose
from offcash.errors import OffcashError
from offcash.protocol import messages as m
from offcash.se.log import Entry
from offcash.verification import verify_payment

from factories import network_for, protected_map, resign, signer_for, trust_of
from harness import T0

ALGS = list(SignatureAlgorithm)
PAYEE = WalletId(bytes(range(12)))
#: OFFCASH_FUZZ_EXAMPLES=20000 for a long run; the default keeps the suite fast.
FUZZ = settings(
    max_examples=int(os.environ.get("OFFCASH_FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _verify(alg: SignatureAlgorithm, data: bytes) -> Any:
    net = network_for(alg)
    return verify_payment(data, trust=_trust(alg), params=net.params, now=T0, payee=PAYEE)


@functools.cache
def _trust(alg: SignatureAlgorithm) -> TrustStore:
    return trust_of(network_for(alg))


DECODERS: dict[str, Callable[[bytes], Any]] = {
    "request": m.parse_request,
    "payment": m.parse_payment,
    "receipt": m.parse_receipt,
    "voucher": m.parse_voucher,
    "unload": m.parse_unload,
    "report": m.parse_report,
    "ack": m.parse_ack,
    "entry": Entry.decode,
    "policy": pki.decode_policy,
    "sign1": cose.decode_sign1,
    "cbor": cbor.decode,
    "verify_p256": functools.partial(_verify, SignatureAlgorithm.P256),
    "verify_ed25519": functools.partial(_verify, SignatureAlgorithm.ED25519),
}


def _feed(data: bytes) -> None:
    for decode in DECODERS.values():
        with contextlib.suppress(OffcashError):
            decode(data)


@functools.cache
def _samples() -> list[bytes]:
    out = []
    for alg in ALGS:
        s = signer_for(alg)
        out += [
            s.payment(PAYEE, nonce=bytes(16), reference="r"),
            m.sign_receipt(s.key, s.cert, payment=bytes(32), time=T0),
            m.sign_voucher(
                s.key,
                s.cert,
                wallet=PAYEE,
                amount=1,
                currency="EUR",
                voucher_id=bytes(16),
                time=T0,
                expires=T0,
            ),
            m.sign_unload(s.key, s.cert, amount=1, currency="EUR", counter=1, time=T0),
            s.report(entries=1),
            m.sign_ack(
                s.key,
                s.cert,
                wallet=PAYEE.raw,
                sync_seq=0,
                entries=1,
                log_digest=bytes(32),
                time=T0,
            ),
        ]
    out.append(m.PaymentRequest(PAYEE, 1, "EUR", bytes(16), T0, "r", "n").encode())
    out.append(Entry(1, T0, 1, out[0]).encode())  # type: ignore[arg-type]
    return out


@FUZZ
@given(st.binary(max_size=600))
def test_random_bytes(data: bytes) -> None:
    _feed(data)


CBOR_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64)
    | st.floats()
    | st.binary(max_size=40)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.integers(-3, 10) | st.text(max_size=3), children, max_size=8)
        | st.builds(cbor2.CBORTag, st.sampled_from([18, 24, 2, 3, 1, 4000]), children)
    ),
    max_leaves=20,
)


@FUZZ
@given(CBOR_VALUES)
def test_random_cbor_values(value: Any) -> None:
    _feed(cbor2.dumps(value))
    try:
        encoded = cbor.encode(value)
    except (TypeError, ValueError, cbor2.CBOREncodeError):
        return  # the encoder is for our own messages, not arbitrary values
    _feed(encoded)


MUTATIONS = st.sampled_from(["flip", "insert", "delete", "truncate", "replace"])


@FUZZ
@given(st.data())
def test_mutated_messages(data: st.DataObject) -> None:
    sample = bytearray(data.draw(st.sampled_from(_samples())))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(sample) - 1))
        kind = data.draw(MUTATIONS)
        if kind == "flip":
            sample[i] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "insert":
            sample[i:i] = data.draw(st.binary(min_size=1, max_size=4))
        elif kind == "delete":
            del sample[i : i + data.draw(st.integers(1, 4))]
        elif kind == "truncate":
            del sample[i:]
        else:
            sample[i] = data.draw(st.integers(0, 255))
        if not sample:
            break
    _feed(bytes(sample))


PAYLOAD_VALUES = (
    st.none()
    | st.booleans()
    | st.integers(-(2**65), 2**65)
    | st.binary(max_size=40)
    | st.text(max_size=8)
    | st.sampled_from([PAYEE.raw, bytes(16), "EUR", "USD", T0, 0])
)


@FUZZ
@given(
    alg=st.sampled_from(ALGS),
    payload=st.dictionaries(st.integers(0, 9), PAYLOAD_VALUES, max_size=9),
)
def test_validly_signed_random_payloads(alg: SignatureAlgorithm, payload: dict[int, Any]) -> None:
    """A signature that verifies takes the fuzzer past the envelope into the rules."""
    s = signer_for(alg)
    data = resign(s.payment(PAYEE), s.key, payload=payload)
    for a in ALGS:
        with contextlib.suppress(OffcashError):
            _verify(a, data)


@FUZZ
@given(alg=st.sampled_from(ALGS), data=st.data())
def test_mutated_certificates(alg: SignatureAlgorithm, data: st.DataObject) -> None:
    s = signer_for(alg)
    cert = bytearray(s.cert)
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(cert) - 1))
        cert[i] = data.draw(st.integers(0, 255))
    payment = s.payment(PAYEE)
    header = protected_map(payment) | {cose.HEADER_X5CHAIN: bytes(cert)}
    forged = resign(payment, s.key, protected=header)
    with contextlib.suppress(OffcashError):
        _verify(alg, forged)
    with contextlib.suppress(OffcashError):
        _trust(alg).wallet_certificate(bytes(cert), T0)
