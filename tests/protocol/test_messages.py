"""Strict decoding of every message kind, and hypothesis round trips.

One table describes each message's map (key -> field name and an example value); the same
tests run over all of them: unknown, missing and mistyped fields, trailing bytes, non-canonical
encodings and oversize input each give a ``DecodeError`` whose ``path`` names the field.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offcash.crypto import pki
from offcash.crypto.algorithms import SignatureAlgorithm, verify
from offcash.domain.ids import WalletId
from offcash.domain.limits import Limits
from offcash.domain.money import _MINOR_DIGITS
from offcash.encoding import cbor, cose
from offcash.encoding.cose import Kind
from offcash.errors import DecodeError
from offcash.protocol import messages as m
from offcash.se.log import Entry, EntryType

from factories import (
    cose_join,
    cose_parts,
    encoded_pairs,
    head,
    protected_map,
    raw_map,
    signer_for,
)
from harness import T0

WID = bytes(range(12))
NONCE = bytes(range(16))
DIGEST = bytes(range(32))
MAX = cbor.MAX_MESSAGE_BYTES


@dataclass(frozen=True)
class Spec:
    """A message map: how to wrap and parse it, where errors point, its fields and an example."""

    name: str
    parse: Callable[[bytes], Any]
    kind: Kind | None  # None: not a COSE_Sign1 (request, policy)
    fields: dict[int, tuple[str, str, Any]]  # key -> (name, type, example value)

    @property
    def root(self) -> str:
        return self.name

    @property
    def prefix(self) -> str:
        """Where field errors point: ``<name>.payload`` for signed messages."""
        return self.name if self.kind is None else f"{self.name}.payload"

    def example(self) -> dict[int, Any]:
        return {k: v for k, (_, _, v) in self.fields.items()}

    def wrap(self, payload: bytes) -> bytes:
        """The message bytes for these payload bytes (signed when the kind is signed)."""
        if self.kind is None:
            return payload
        s = signer_for(SignatureAlgorithm.ED25519)
        return cose.sign1(self.kind, payload, s.key, s.cert)

    def build(self, values: dict[int, Any]) -> bytes:
        return self.wrap(cbor.encode(values))


SPECS = [
    Spec(
        "request",
        m.parse_request,
        None,
        {
            0: ("kind", "kind", 1),
            1: ("version", "version", 1),
            2: ("payee", "wallet", WID),
            3: ("amount", "uint", 100),
            4: ("currency", "currency", "EUR"),
            5: ("nonce", "nonce", NONCE),
            6: ("time", "time", T0),
            7: ("reference", "text", "inv 7"),
            8: ("payee_name", "text", "Shop"),
        },
    ),
    Spec(
        "payment",
        m.parse_payment,
        Kind.PAYMENT,
        {
            1: ("payee", "wallet", WID),
            2: ("amount", "uint", 100),
            3: ("currency", "currency", "EUR"),
            4: ("counter", "uint", 1),
            5: ("time", "time", T0),
            6: ("nonce", "nonce", NONCE),
            7: ("reference", "text", "inv 7"),
        },
    ),
    Spec(
        "receipt",
        m.parse_receipt,
        Kind.RECEIPT,
        {
            1: ("payment", "digest", DIGEST),
            2: ("time", "time", T0),
        },
    ),
    Spec(
        "voucher",
        m.parse_voucher,
        Kind.LOAD_VOUCHER,
        {
            1: ("wallet", "wallet", WID),
            2: ("amount", "uint", 500),
            3: ("currency", "currency", "EUR"),
            4: ("voucher_id", "nonce", NONCE),
            5: ("time", "time", T0),
            6: ("expires", "time", T0 + 1),
        },
    ),
    Spec(
        "unload",
        m.parse_unload,
        Kind.UNLOAD_REQUEST,
        {
            1: ("amount", "uint", 100),
            2: ("currency", "currency", "EUR"),
            3: ("counter", "uint", 1),
            4: ("time", "time", T0),
        },
    ),
    Spec(
        "report",
        m.parse_report,
        Kind.SYNC_REPORT,
        {
            1: ("sync_seq", "uint", 0),
            2: ("counter", "uint", 3),
            3: ("balance", "uint", 700),
            4: ("currency", "currency", "EUR"),
            5: ("entries", "uint", 2),
            6: ("log_digest", "digest", DIGEST),
            7: ("time", "time", T0),
        },
    ),
    Spec(
        "ack",
        m.parse_ack,
        Kind.SYNC_ACK,
        {
            1: ("wallet", "wallet", WID),
            2: ("sync_seq", "uint", 0),
            3: ("entries", "uint", 2),
            4: ("log_digest", "digest", DIGEST),
            5: ("time", "time", T0),
        },
    ),
    Spec(
        "policy",
        pki.decode_policy,
        None,
        {
            1: ("max_balance", "uint", 30000),
            2: ("max_payment", "uint", 10000),
            3: ("max_offline_payments", "uint", 50),
            4: ("max_offline_value", "uint", 50000),
            5: ("max_offline_seconds", "uint", 604800),
            6: ("counter_base", "uint", 0),
        },
    ),
]
OPTIONAL = {("request", 7), ("request", 8), ("payment", 6), ("payment", 7)}

_COMMON_WRONG: list[Any] = [True, False, None, [], {}, cbor2.CBORTag(4000, 0)]
WRONG: dict[str, list[Any]] = {
    "uint": [-1, 2**63, "1", b"\x01", *_COMMON_WRONG],
    "time": [-1, 2**40 + 1, "1", b"\x01", *_COMMON_WRONG],
    "kind": [0, 2, "1", *_COMMON_WRONG],
    "version": [0, 2, *_COMMON_WRONG],
    "wallet": [b"", WID[:11], WID + b"\x00", "a" * 12, 12, *_COMMON_WRONG],
    "nonce": [b"", NONCE[:15], NONCE + b"\x00", "n" * 16, 16, *_COMMON_WRONG],
    "digest": [DIGEST[:31], DIGEST + b"\x00", "d" * 32, 32, *_COMMON_WRONG],
    "currency": ["eur", "XXX", "EURO", "", b"EUR", 978, *_COMMON_WRONG],
    "text": ["x" * 1000, b"text", 7, True, [], {}],
}


def _ids(specs: list[Spec]) -> list[str]:
    return [s.name for s in specs]


def _refused(spec: Spec, data: bytes) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        spec.parse(data)
    return info.value


@pytest.mark.parametrize("spec", SPECS, ids=_ids(SPECS))
def test_example_parses(spec: Spec) -> None:
    spec.parse(spec.build(spec.example()))


@pytest.mark.parametrize("spec", SPECS, ids=_ids(SPECS))
@pytest.mark.parametrize("key", [99, -1, "amount", b"\x01"], ids=repr)
def test_unknown_field(spec: Spec, key: Any) -> None:
    err = _refused(spec, spec.build(spec.example() | {key: 1}))
    assert err.path == f"{spec.prefix}.{key!r}"
    assert err.reason == "unknown field"


MISSING = [(s, k) for s in SPECS for k in s.fields if (s.name, k) not in OPTIONAL]


@pytest.mark.parametrize(
    ("spec", "key"), MISSING, ids=[f"{s.name}-{s.fields[k][0]}" for s, k in MISSING]
)
def test_missing_field(spec: Spec, key: int) -> None:
    values = spec.example()
    del values[key]
    err = _refused(spec, spec.build(values))
    assert err.path == f"{spec.prefix}.{spec.fields[key][0]}"
    assert err.reason == "missing field"


@pytest.mark.parametrize(
    ("spec", "key"),
    [(s, k) for s, k in OPTIONAL_PAIRS]
    if (OPTIONAL_PAIRS := [(s, k) for s in SPECS for k in s.fields if (s.name, k) in OPTIONAL])
    else [],
    ids=lambda v: v.name if isinstance(v, Spec) else str(v),
)
def test_optional_field_may_be_absent(spec: Spec, key: int) -> None:
    values = spec.example()
    del values[key]
    spec.parse(spec.build(values))


MISTYPED = [(s, k, v) for s in SPECS for k, (_, kind, _) in s.fields.items() for v in WRONG[kind]]


@pytest.mark.parametrize(
    ("spec", "key", "value"),
    MISTYPED,
    ids=[f"{s.name}-{s.fields[k][0]}-{v!r:.20}" for s, k, v in MISTYPED],
)
def test_mistyped_field(spec: Spec, key: int, value: Any) -> None:
    err = _refused(spec, spec.build(spec.example() | {key: value}))
    assert err.path == f"{spec.prefix}.{spec.fields[key][0]}"


@pytest.mark.parametrize("spec", SPECS, ids=_ids(SPECS))
def test_a_float_in_any_field_is_refused_as_cbor(spec: Spec) -> None:
    """No field is a float (section 2): one is refused by the CBOR decoding, at the message,
    before any field is read (cbor2 writes the float64 here: offcash's encoder writes none)."""
    for key in spec.fields:
        payload = cbor2.dumps(spec.example() | {key: 1.5}, canonical=True)
        err = _refused(spec, spec.wrap(payload))
        assert err.path == spec.prefix and "floating-point" in err.reason, err


@pytest.mark.parametrize("spec", SPECS, ids=_ids(SPECS))
def test_not_a_map(spec: Spec) -> None:
    for value in ([1, 2], 7, "x", b"x"):
        assert _refused(spec, spec.build(value)).path == spec.prefix  # type: ignore[arg-type]


@pytest.mark.parametrize("spec", SPECS, ids=_ids(SPECS))
def test_trailing_bytes(spec: Spec) -> None:
    good = spec.build(spec.example())
    assert _refused(spec, good + b"\x00").path == spec.root
    if spec.kind is not None:  # trailing bytes inside the signed payload
        inner = spec.wrap(cbor.encode(spec.example()) + b"\xf6")
        assert _refused(spec, inner).path == spec.prefix


def _non_canonical_payloads(spec: Spec) -> dict[str, bytes]:
    pairs = encoded_pairs(spec.example())
    out = {
        "unsorted_keys": raw_map(list(reversed(pairs))),
        "indefinite_map": raw_map(pairs, indefinite=True),
        "duplicate_key": raw_map([*pairs, pairs[-1]]),
        "duplicate_key_other_value": raw_map([pairs[0], *pairs]),
    }
    # a non-shortest integer: the first unsigned-integer value, written in 8 bytes
    for i, (k, v) in enumerate(pairs):
        value = cbor2.loads(v)
        if type(value) is int and value >= 0:
            widened = [*pairs]
            widened[i] = (k, head(0, value, 8))
            out["non_shortest_int"] = raw_map(widened)
            break
    widened_key = [*pairs]
    widened_key[0] = (head(0, cbor2.loads(pairs[0][0]), 1), pairs[0][1])
    out["non_shortest_key"] = raw_map(widened_key)
    # a non-shortest byte or text string length
    for i, (k, v) in enumerate(pairs):
        value = cbor2.loads(v)
        if type(value) in (bytes, str):
            major = 2 if type(value) is bytes else 3
            raw = value if type(value) is bytes else value.encode()
            widened = [*pairs]
            widened[i] = (k, head(major, len(raw), 2) + raw)
            out["non_shortest_length"] = raw_map(widened)
            indefinite = [*pairs]
            chunk = head(major, len(raw)) + raw
            indefinite[i] = (k, bytes([(major << 5) | 31]) + chunk + b"\xff")
            out["indefinite_string"] = raw_map(indefinite)
            break
    return out


NON_CANONICAL = [
    (s, name, data) for s in SPECS for name, data in _non_canonical_payloads(s).items()
]


@pytest.mark.parametrize(
    ("spec", "case", "payload"), NON_CANONICAL, ids=[f"{s.name}-{n}" for s, n, _ in NON_CANONICAL]
)
def test_non_canonical_encoding(spec: Spec, case: str, payload: bytes) -> None:
    assert payload != cbor.encode(spec.example())
    err = _refused(spec, spec.wrap(payload))
    assert err.path == spec.prefix


@pytest.mark.parametrize("spec", SPECS, ids=_ids(SPECS))
def test_oversize_input(spec: Spec) -> None:
    pad = "x" * MAX
    if spec.kind is None:
        err = _refused(spec, spec.build(spec.example() | {99: pad}))
        assert err.path == spec.root and "exceeds" in err.reason
    else:
        err = _refused(spec, spec.build(spec.example() | {99: pad}))
        assert err.path == spec.root and "exceeds" in err.reason


@pytest.mark.parametrize(
    "data", [b"", b"\xff", b"\x1f", b"\xa1", b"\x5a\xff\xff\xff\xff", 7], ids=repr
)
def test_malformed_cbor(data: Any) -> None:
    for spec in SPECS:
        assert _refused(spec, data).path == spec.root


# --- the COSE envelope -----------------------------------------------------------------------


SIGNED = [s for s in SPECS if s.kind is not None]


def _envelope_cases(spec: Spec) -> dict[str, tuple[bytes, str]]:
    good = spec.build(spec.example())
    parts = cose_parts(good)
    header = protected_map(good)
    r = spec.root

    def with_header(h: Any) -> bytes:
        return cose_join([cbor.encode(h), *parts[1:]])

    def without(key: int) -> dict[int, Any]:
        return {k: v for k, v in header.items() if k != key}

    other_kind = Kind.PAYMENT if spec.kind is not Kind.PAYMENT else Kind.RECEIPT
    return {
        "untagged": (cbor.encode(parts), r),
        "other_tag": (cbor.encode(cbor2.CBORTag(17, parts)), r),
        "non_shortest_tag": (b"\xd8\x12" + good[1:], r),
        "indefinite_array": (b"\xd2\x9f" + good[2:] + b"\xff", r),
        "three_items": (cose_join(parts[:3]), r),
        "five_items": (cose_join([*parts, b""]), r),
        "unprotected_header": (cose_join([parts[0], {4: b"kid"}, *parts[2:]]), f"{r}.unprotected"),
        "protected_not_bytes": (cose_join([header, *parts[1:]]), f"{r}.protected"),
        "empty_protected": (cose_join([b"", *parts[1:]]), f"{r}.protected"),
        "empty_payload": (cose_join([parts[0], {}, b"", parts[3]]), f"{r}.payload"),
        "payload_not_bytes": (cose_join([parts[0], {}, spec.example(), parts[3]]), f"{r}.payload"),
        "signature_not_bytes": (cose_join([*parts[:3], "sig"]), f"{r}.signature"),
        "empty_signature": (cose_join([*parts[:3], b""]), f"{r}.signature"),
        "huge_signature": (cose_join([*parts[:3], bytes(9000)]), f"{r}.signature"),
        "unknown_header": (with_header(header | {4: b"kid"}), f"{r}.protected.4"),
        "missing_alg": (with_header(without(cose.HEADER_ALG)), f"{r}.protected.alg"),
        "missing_x5chain": (with_header(without(cose.HEADER_X5CHAIN)), f"{r}.protected.x5chain"),
        "missing_kind": (with_header(without(cose.HEADER_KIND)), f"{r}.protected.kind"),
        "missing_version": (with_header(without(cose.HEADER_VERSION)), f"{r}.protected.version"),
        "unknown_alg": (with_header(header | {cose.HEADER_ALG: -35}), f"{r}.protected.alg"),
        "alg_as_text": (with_header(header | {cose.HEADER_ALG: "EdDSA"}), f"{r}.protected.alg"),
        "x5chain_array": (
            with_header(header | {cose.HEADER_X5CHAIN: [b"c"]}),
            f"{r}.protected.x5chain",
        ),
        "unknown_kind": (with_header(header | {cose.HEADER_KIND: 99}), f"{r}.protected.kind"),
        "other_kind": (
            with_header(header | {cose.HEADER_KIND: int(other_kind)}),
            f"{r}.protected.kind",
        ),
        "bool_kind": (with_header(header | {cose.HEADER_KIND: True}), f"{r}.protected.kind"),
        "version_2": (with_header(header | {cose.HEADER_VERSION: 2}), f"{r}.protected.version"),
        "unsorted_header": (
            cose_join([raw_map(list(reversed(encoded_pairs(header)))), *parts[1:]]),
            f"{r}.protected",
        ),
        # the exact layout sign1 writes is read in place: any other bytes take the general path
        "protected_length_not_shortest": (_layout(parts, wide=0), r),
        "payload_length_not_shortest": (_layout(parts, wide=2), r),
        "signature_length_not_shortest": (_layout(parts, wide=3), r),
        "trailing_byte": (good + b"\x00", r),
        "truncated": (good[:-1], r),
    }


def _layout(parts: list[Any], wide: int) -> bytes:
    """``sign1``'s layout with part ``wide`` given a longer length head than it needs."""
    out = b"\xd2\x84"
    for i, part in enumerate(parts):
        if i == 1:
            out += b"\xa0"
        elif i == wide:
            out += head(2, len(part), 4) + part
        else:
            out += cbor.encode(part)
    return out


ENVELOPE = [(s, n, d, p) for s in SIGNED for n, (d, p) in _envelope_cases(s).items()]


@pytest.mark.parametrize(
    ("spec", "case", "data", "path"), ENVELOPE, ids=[f"{s.name}-{n}" for s, n, _, _ in ENVELOPE]
)
def test_envelope_refusals(spec: Spec, case: str, data: bytes, path: str) -> None:
    assert _refused(spec, data).path == path


# --- log entries ---------------------------------------------------------------------------

ENTRY = [1, T0, 100, b"msg"]


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ([*ENTRY, 0], "entry"),
        (ENTRY[:3], "entry"),
        ({0: 1}, "entry"),
        ([5, *ENTRY[1:]], "entry.type"),
        ([True, *ENTRY[1:]], "entry.type"),
        ([1, -1, *ENTRY[2:]], "entry.time"),
        ([1, False, *ENTRY[2:]], "entry.time"),
        ([1, T0, "100", b"msg"], "entry.amount"),
        ([1, T0, True, b"msg"], "entry.amount"),
        ([1, T0, 100, b""], "entry.message"),
        ([1, T0, 100, "msg"], "entry.message"),
    ],
    ids=repr,
)
def test_entry_refusals(value: Any, path: str) -> None:
    with pytest.raises(DecodeError) as info:
        Entry.decode(cbor.encode(value))
    assert info.value.path == path


def test_entry_encoding_refusals() -> None:
    good = Entry(EntryType.SENT, T0, 100, b"msg").encode()
    assert Entry.decode(good) == Entry(EntryType.SENT, T0, 100, b"msg")
    for data in (
        good + b"\x00",
        b"\x9f" + good[1:] + b"\xff",
        b"\x98\x04" + good[1:],
        bytes(MAX + 1),
    ):
        with pytest.raises(DecodeError) as info:
            Entry.decode(data)
        assert info.value.path == "entry"


# --- hypothesis round trips -------------------------------------------------------------

ALGS = st.sampled_from(list(SignatureAlgorithm))
WALLETS = st.binary(min_size=12, max_size=12).map(WalletId)
UINT = st.integers(0, 2**63 - 1)
TIME = st.integers(0, 2**40)
CURRENCY = st.sampled_from(sorted(_MINOR_DIGITS))
NONCES = st.binary(min_size=16, max_size=16)
DIGESTS = st.binary(min_size=32, max_size=32)
REFERENCE = st.none() | st.text(max_size=140)
FAST = settings(max_examples=100, deadline=None)


def _check_envelope(parsed: Any, kind: Kind, alg: SignatureAlgorithm) -> None:
    s = signer_for(alg)
    env = parsed.envelope
    assert (env.kind, env.alg, env.version, env.certificate_der) == (kind, alg, 1, s.cert)
    assert verify(s.key.public_key(), env.signature, env.to_be_signed())


@FAST
@given(
    alg=ALGS,
    payee=WALLETS,
    amount=UINT,
    currency=CURRENCY,
    counter=UINT,
    time=TIME,
    nonce=st.none() | NONCES,
    reference=REFERENCE,
)
def test_payment_round_trip(alg: SignatureAlgorithm, **values: Any) -> None:
    s = signer_for(alg)
    data = m.sign_payment(s.key, s.cert, **values)
    p = m.parse_payment(data)
    assert {k: getattr(p, k) for k in values} == values
    assert p.encoded == data
    _check_envelope(p, Kind.PAYMENT, alg)


@FAST
@given(
    payee=WALLETS,
    amount=UINT,
    currency=CURRENCY,
    nonce=NONCES,
    time=TIME,
    reference=REFERENCE,
    payee_name=st.none() | st.text(max_size=64),
)
def test_request_round_trip(**values: Any) -> None:
    req = m.PaymentRequest(**values)
    data = req.encode()
    assert m.parse_request(data) == req
    assert cbor.decode(data) == cbor2.loads(data)


@FAST
@given(alg=ALGS, payment=DIGESTS, time=TIME)
def test_receipt_round_trip(alg: SignatureAlgorithm, **values: Any) -> None:
    s = signer_for(alg)
    r = m.parse_receipt(m.sign_receipt(s.key, s.cert, **values))
    assert (r.payment, r.time) == (values["payment"], values["time"])
    _check_envelope(r, Kind.RECEIPT, alg)


@FAST
@given(
    alg=ALGS,
    wallet=WALLETS,
    amount=UINT,
    currency=CURRENCY,
    voucher_id=NONCES,
    time=TIME,
    expires=TIME,
)
def test_voucher_round_trip(alg: SignatureAlgorithm, **values: Any) -> None:
    s = signer_for(alg)
    v = m.parse_voucher(m.sign_voucher(s.key, s.cert, **values))
    assert {k: getattr(v, k) for k in values} == values
    _check_envelope(v, Kind.LOAD_VOUCHER, alg)


@FAST
@given(alg=ALGS, amount=UINT, currency=CURRENCY, counter=UINT, time=TIME)
def test_unload_round_trip(alg: SignatureAlgorithm, **values: Any) -> None:
    s = signer_for(alg)
    u = m.parse_unload(m.sign_unload(s.key, s.cert, **values))
    assert {k: getattr(u, k) for k in values} == values
    _check_envelope(u, Kind.UNLOAD_REQUEST, alg)


@FAST
@given(
    alg=ALGS,
    sync_seq=UINT,
    counter=UINT,
    balance=UINT,
    currency=CURRENCY,
    entries=UINT,
    log_digest=DIGESTS,
    time=TIME,
)
def test_report_round_trip(alg: SignatureAlgorithm, **values: Any) -> None:
    s = signer_for(alg)
    r = m.parse_report(m.sign_report(s.key, s.cert, **values))
    assert {k: getattr(r, k) for k in values} == values
    _check_envelope(r, Kind.SYNC_REPORT, alg)


@FAST
@given(alg=ALGS, wallet=WALLETS, sync_seq=UINT, entries=UINT, log_digest=DIGESTS, time=TIME)
def test_ack_round_trip(alg: SignatureAlgorithm, **values: Any) -> None:
    s = signer_for(alg)
    a = m.parse_ack(m.sign_ack(s.key, s.cert, **(values | {"wallet": values["wallet"].raw})))
    assert {k: getattr(a, k) for k in values} == values
    _check_envelope(a, Kind.SYNC_ACK, alg)


@FAST
@given(
    entry=st.builds(
        Entry, st.sampled_from(list(EntryType)), TIME, UINT, st.binary(min_size=1, max_size=300)
    )
)
def test_entry_round_trip(entry: Entry) -> None:
    assert Entry.decode(entry.encode()) == entry


@FAST
@given(limits=st.builds(Limits, UINT, UINT, UINT, UINT, UINT), counter_base=UINT)
def test_policy_round_trip(limits: Limits, counter_base: int) -> None:
    assert pki.decode_policy(pki.encode_policy(limits, counter_base)) == (limits, counter_base)


def test_payment_size_is_small() -> None:
    """The issue's target: a P-256 payment of at most 600 bytes (with its certificate)."""
    s = signer_for(SignatureAlgorithm.P256)
    data = m.sign_payment(
        s.key,
        s.cert,
        payee=WalletId(WID),
        amount=10_000,
        currency="EUR",
        counter=50,
        time=T0,
        nonce=NONCE,
        reference=None,
    )
    assert len(data) <= 600
