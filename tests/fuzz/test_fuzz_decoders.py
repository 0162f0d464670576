"""Structure-aware fuzzing of every decoder: only ``OffcashError`` may escape.

tests/protocol/test_fuzz.py feeds random bytes, random CBOR and byte mutations to the message
parsers and ``verify_payment``. This suite covers every other decoder (trust store, CRLs,
wallet certificates, every ``verify_*``, a secure element's state, a terminal's state, the text,
QR-frame, file and image readers) and goes structure-aware for all of them: it decodes a valid
input from a real pilot network, changes one field of the tree (its value, its type, its
presence, a boundary integer, the CBOR inside a byte string), re-encodes it deterministically
so the strict decoder lets it through, and re-signs signed messages so the changed field reaches
the verification rules. Certificates are forged field by field and signed by the real bank.
``OFFCASH_FUZZ_EXAMPLES`` scales the example counts (fuzzkit.py).
"""

from __future__ import annotations

import contextlib

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from offcash.crypto.algorithms import SignatureAlgorithm
from offcash.crypto.trust import TrustStore
from offcash.encoding import cbor, cose
from offcash.errors import OffcashError
from offcash.protocol import messages as m
from offcash.transports import decode_frames, decode_text
from offcash.transports.qr import encode_frames
from offcash.transports.text import BASE45_PREFIX, BASE64URL_PREFIX
from offcash.verification import verify_payment

from factories import network_for
from fuzzkit import (
    CBOR_TARGETS,
    CBOR_VALUES,
    check,
    corpus,
    encode_any,
    forged_wallet_cert,
    fuzz_settings,
    mutate_value,
    resigned,
    signer_key_for,
    split_frames,
    targets,
)
from harness import T0

ALGS = list(SignatureAlgorithm)
ALL_TARGETS = sorted(targets())
SIGNED_KINDS = ["payment", "receipt", "voucher", "unload", "report", "ack"]
#: Targets the older protocol/test_fuzz.py already feeds random bytes.
COVERED_ELSEWHERE = {"cbor", "cose", "request", "payment", "receipt", "voucher", "unload",
                     "report", "ack", "entry", "policy", "verify_payment"}  # fmt: skip


@pytest.mark.parametrize("alg", ALGS, ids=lambda a: a.short)
def test_every_seed_is_accepted(alg: SignatureAlgorithm) -> None:
    """The corpus is valid, so mutations start past the decoders' first checks."""
    run = targets(alg)
    for name, seeds in corpus(alg).seeds.items():
        assert seeds, name
        for seed in seeds:
            run[name](seed)


@pytest.mark.parametrize("name", [t for t in ALL_TARGETS if t not in COVERED_ELSEWHERE])
@fuzz_settings(0.5)
@given(data=st.binary(max_size=700))
def test_random_bytes(name: str, data: bytes) -> None:
    check(targets()[name], data)


@pytest.mark.parametrize("name", ALL_TARGETS)
@fuzz_settings()
@given(data=st.data())
def test_byte_mutations_of_valid_inputs(name: str, data: st.DataObject) -> None:
    seeds = corpus().seeds[name]
    seed = bytearray(seeds[data.draw(st.integers(0, len(seeds) - 1), label="seed")])
    for _ in range(data.draw(st.integers(1, 4))):
        if not seed:
            break
        i = data.draw(st.integers(0, len(seed) - 1))
        op = data.draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "dup"]))
        if op == "flip":
            seed[i] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "set":
            seed[i] = data.draw(st.sampled_from([0, 0x7F, 0x80, 0xFF, 0x18, 0x1B, 0x9F, 0xBF]))
        elif op == "insert":
            seed[i:i] = data.draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del seed[i : i + data.draw(st.integers(1, 16))]
        elif op == "truncate":
            del seed[i:]
        else:
            seed[i:i] = seed[i : i + data.draw(st.integers(1, 64))]
    check(targets()[name], bytes(seed))


@pytest.mark.parametrize("alg", ALGS, ids=lambda a: a.short)
@pytest.mark.parametrize("name", CBOR_TARGETS)
@fuzz_settings()
@given(data=st.data())
def test_tree_mutations(alg: SignatureAlgorithm, name: str, data: st.DataObject) -> None:
    """One to three fields of a valid input changed, re-encoded deterministically."""
    c = corpus(alg)
    seeds = c.seeds[name]
    value = cbor2.loads(seeds[data.draw(st.integers(0, len(seeds) - 1), label="seed")])
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        value = mutate_value(data, value)
    encoded = encode_any(data, value)
    check(targets(alg)[name], encoded)
    if isinstance(value, cbor2.CBORTag):  # also with a signature that verifies again
        for kind in ("payment", "voucher"):
            check(targets(alg)[name], resigned(encoded, signer_key_for(c, kind)))


@pytest.mark.parametrize("alg", ALGS, ids=lambda a: a.short)
@pytest.mark.parametrize("kind", SIGNED_KINDS)
@fuzz_settings()
@given(data=st.data())
def test_validly_signed_field_mutations(
    alg: SignatureAlgorithm, kind: str, data: st.DataObject
) -> None:
    """A field of the payload or of the protected header changed, then signed again by the
    real signer: the message passes the signature check and the change meets the rules."""
    c = corpus(alg)
    parts = cbor2.loads(c.messages[kind]).value
    part = data.draw(st.sampled_from([0, 2]), label="part")  # protected header or payload
    inner = mutate_value(data, cbor2.loads(parts[part]))
    parts = list(parts)
    parts[part] = encode_any(data, inner)
    message = resigned(cbor.encode(cbor2.CBORTag(cose.COSE_SIGN1_TAG, parts)),
                       signer_key_for(c, kind))  # fmt: skip
    run = targets(alg)
    check(run[kind], message)
    check(run[f"verify_{kind}"], message)


@pytest.mark.parametrize("alg", ALGS, ids=lambda a: a.short)
@fuzz_settings(0.5)
@given(data=st.data())
def test_forged_wallet_certificates(alg: SignatureAlgorithm, data: st.DataObject) -> None:
    """Certificates the bank's key really signed, with hostile fields: as a wallet certificate,
    as a bank CA, and in the header of a payment signed by the certified key."""
    c = corpus(alg)
    cert, key = forged_wallet_cert(data, c)
    net = network_for(alg)
    for decode in (
        lambda: c.trust.wallet_certificate(cert, T0),
        lambda: c.trust.wallet_certificate(cert, None),
        lambda: TrustStore.create(net.central_bank.certificate_der, [cert]),
        lambda: TrustStore.create(cert),
    ):
        with contextlib.suppress(OffcashError):
            decode()
    payment = c.messages["payment"]
    header = cbor2.loads(cbor2.loads(payment).value[0]) | {cose.HEADER_X5CHAIN: cert}
    parts = list(cbor2.loads(payment).value)
    parts[0] = cbor.encode(header)
    forged = cbor.encode(cbor2.CBORTag(cose.COSE_SIGN1_TAG, parts))
    forged = resigned(forged, key)  # a key offcash cannot sign with keeps the old signature
    with contextlib.suppress(OffcashError):
        verify_payment(forged, trust=c.trust, params=net.params, now=T0, payee=c.payee)


@pytest.mark.parametrize("alg", ALGS, ids=lambda a: a.short)
@fuzz_settings(0.5)
@given(value=CBOR_VALUES, kind=st.sampled_from(SIGNED_KINDS))
def test_validly_signed_random_payloads(alg: SignatureAlgorithm, value: object, kind: str) -> None:
    """Any CBOR payload under a valid signature, for every kind of signed message."""
    c = corpus(alg)
    parts = list(cbor2.loads(c.messages[kind]).value)
    try:
        parts[2] = cbor.encode(value)
    except Exception:
        return
    message = resigned(cbor.encode(cbor2.CBORTag(cose.COSE_SIGN1_TAG, parts)),
                       signer_key_for(c, kind))  # fmt: skip
    check(targets(alg)[f"verify_{kind}"], message)


BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@fuzz_settings()
@given(
    prefix=st.sampled_from([BASE45_PREFIX, BASE64URL_PREFIX, "", "oc1:", "\ufeff" + BASE45_PREFIX]),
    body=st.text(BASE45, max_size=80) | st.text(BASE64URL, max_size=80) | st.text(max_size=40),
    noise=st.sampled_from(["", " ", "\n", "\r\n\t", "\u00a0", "\x00", "=="]),
)
def test_text_forms(prefix: str, body: str, noise: str) -> None:
    """Text in (and near) either alphabet, with whitespace and stray characters."""
    for text in (prefix + body, noise + prefix + body + noise, prefix + noise + body):
        try:
            data = decode_text(text)
        except OffcashError:
            continue
        assert data
    check(targets()["content"], (prefix + body).encode("utf-8", "surrogatepass"))


@fuzz_settings()
@given(data=st.data())
def test_frame_sets(data: st.DataObject) -> None:
    """Frames of two messages, dropped, repeated, reordered, mixed and mutated."""
    one = encode_frames(corpus().messages["payment"], budget=data.draw(st.integers(8, 600)))
    two = encode_frames(corpus().messages["report"], budget=data.draw(st.integers(8, 600)))
    pool = one + two[: data.draw(st.integers(0, len(two)))]
    frames = data.draw(st.lists(st.sampled_from(pool), max_size=len(one) + 3))
    if frames and data.draw(st.booleans()):
        i = data.draw(st.integers(0, len(frames) - 1))
        frame = bytearray(frames[i])
        j = data.draw(st.integers(0, len(frame) - 1))
        frame[j] = data.draw(st.integers(0, 255))
        frames[i] = bytes(frame)
    try:
        message = decode_frames(frames)
    except OffcashError:
        return
    assert message in (corpus().messages["payment"], corpus().messages["report"])
    check(targets()["frames"], b"".join(len(f).to_bytes(2, "big") + f for f in frames))
    assert split_frames(b"".join(len(f).to_bytes(2, "big") + f for f in frames)) == frames


def test_request_target_reaches_payment_rules() -> None:
    """The ``request`` target verifies the corpus payment against the decoded request, so a
    mutated request meets the nonce, payee, amount and currency rules."""
    c = corpus()
    req = m.parse_request(c.messages["request"])
    targets()["request"](c.messages["request"])
    changed = m.PaymentRequest(req.payee, req.amount + 1, req.currency, req.nonce, req.time)
    with pytest.raises(OffcashError):
        targets()["request"](changed.encode())
