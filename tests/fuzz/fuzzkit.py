"""The fuzzing kit shared by tests/fuzz (hypothesis) and fuzz/atheris_decoders.py (atheris).

Theory of operation: ``TARGETS`` names every decoder of untrusted bytes in offcash, each as a
function of ``bytes``; the property is that only ``OffcashError`` escapes any of them
(``check``). ``corpus()`` holds, per target, valid inputs made by a real pilot network (a
payment from a secure element, its receipt, a bank's voucher and acknowledgement, a secure
element's state file, a terminal's state, certificates, CRLs, text and QR forms), so that
mutations start from inputs that pass the decoder and reach the checks behind it.
``mutate_value`` and ``resigned`` are the structure-aware mutators: they change one node of the
decoded CBOR tree (a field's value or type, a missing or extra field, a boundary integer),
re-encode it deterministically so the strict decoder accepts the encoding, and re-sign a
COSE_Sign1 with the key that signed it, so the mutated field reaches verification.

``OFFCASH_FUZZ_EXAMPLES`` scales every hypothesis fuzz test (default: small, for ``pytest -q``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from offcash.crypto import pki
from offcash.crypto.algorithms import PrivateKey, SignatureAlgorithm, algorithm_of, sign
from offcash.crypto.trust import TrustStore
from offcash.domain.ids import WalletId
from offcash.domain.limits import DEFAULT_LIMITS
from offcash.encoding import cbor, cose
from offcash.errors import OffcashError
from offcash.protocol import messages as m
from offcash.se.log import Entry
from offcash.se.software import SoftwareSecureElement
from offcash.transports import decode_content, decode_frames, decode_image, decode_text
from offcash.transports.qr import encode_frames, parse_frame, render_png
from offcash.transports.text import encode_text
from offcash.verification import (
    verify_ack,
    verify_payment,
    verify_receipt,
    verify_report,
    verify_unload,
    verify_voucher,
)
from offcash.wallet.terminal import ReceiveOnlyTerminal

from factories import make_signer, network_for
from harness import T0

#: Examples per hypothesis fuzz test; raise it for a long run (e.g. 5000).
EXAMPLES = int(os.environ.get("OFFCASH_FUZZ_EXAMPLES", "40"))
#: The default run is derandomized (the same examples every time, so CI is stable); a run with
#: ``OFFCASH_FUZZ_EXAMPLES`` set draws new examples each time.
LONG_RUN = "OFFCASH_FUZZ_EXAMPLES" in os.environ


def fuzz_settings(weight: float = 1.0) -> settings:
    """Hypothesis settings for one fuzz test: ``weight`` times ``EXAMPLES`` examples."""
    return settings(
        max_examples=max(1, int(EXAMPLES * weight)),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
        derandomize=not LONG_RUN,
    )


class Capture:
    """A ``StateStore`` that keeps the last state saved (to read a secure element's state)."""

    state: bytes = b""

    def save(self, state: bytes) -> None:
        self.state = state


@dataclass(frozen=True)
class Corpus:
    """Valid inputs from a pilot network of one algorithm, and what verifying them needs."""

    alg: SignatureAlgorithm
    trust: TrustStore
    payee: WalletId
    wallet_key: PrivateKey
    bank_key: PrivateKey
    bank: str
    messages: dict[str, bytes]  # kind -> a valid signed (or plain, for "request") message
    seeds: dict[str, list[bytes]]  # target name -> valid inputs


def corpus(alg: SignatureAlgorithm = SignatureAlgorithm.P256) -> Corpus:
    """The corpus for ``alg``, built once per process."""
    return _corpus(alg)


@functools.cache
def _corpus(alg: SignatureAlgorithm) -> Corpus:
    net = network_for(alg)
    bank = net.banks[0]
    payee = net.wallet(0)  # an enrolled SE: its requests, receipts and state are real
    payee_id = payee.status(T0).wallet_id
    assert payee_id is not None
    signer = make_signer(net)
    req = payee.request(250, T0, reference="invoice 7", payee_name="Bob")
    payment = m.sign_payment(
        signer.key,
        signer.cert,
        payee=payee_id,
        amount=250,
        currency="EUR",
        counter=1,
        time=T0,
        nonce=m.parse_request(req).nonce,
        reference="invoice 7",
    )
    store = Capture()
    payer_se = _stored(net.wallet(5_000), store)
    one_way = payer_se.pay_to(payee_id, 100, T0, reference="coffee")
    received = payee.receive(one_way, T0)
    assert received.receipt is not None
    unload = payer_se.unload(10, T0)
    upload = payer_se.sync_upload(T0)
    report = m.parse_report(upload.report)
    payer_id = payer_se.status(T0).wallet_id
    assert payer_id is not None
    ack = bank.acknowledge(report, payer_id, T0)
    voucher = bank.voucher(payee_id, 1_000, "EUR", T0)
    messages = {
        "request": req,
        "payment": payment,
        "receipt": received.receipt,
        "voucher": voucher,
        "unload": unload,
        "report": upload.report,
        "ack": ack,
    }
    trust = TrustStore.create(net.central_bank.certificate_der, net.bank_ders)
    terminal = ReceiveOnlyTerminal(WalletId.random(), net.params, trust)
    terminal.request(300, T0)
    terminal.receive(
        m.sign_payment(
            signer.key,
            signer.cert,
            payee=terminal.wallet_id,
            amount=5,
            currency="EUR",
            counter=2,
            time=T0,
            nonce=None,
            reference=None,
        ),
        T0,
    )
    crl = bank.crl([(12345, T0)], 1, T0)
    policy = (
        x509.load_der_x509_certificate(signer.cert)
        .extensions.get_extension_for_oid(pki.WALLET_POLICY_OID)
        .value.value
    )  # type: ignore[attr-defined]
    entries = [e.encode() for e in upload.entries]
    signed = list(messages.values())[1:]
    frames = encode_frames(payment, budget=64)
    seeds: dict[str, list[bytes]] = {
        "cbor": [*messages.values(), *entries, policy, store.state],
        "cose": signed,
        **{k: [v] for k, v in messages.items()},
        "entry": entries,
        "policy": [policy],
        "trust_root": [net.central_bank.certificate_der],
        "trust_bank": net.bank_ders,
        "trust_crl": [crl],
        "wallet_cert": [signer.cert, cose.decode_sign1(received.receipt).certificate_der],
        "verify_payment": [payment, one_way],
        "verify_receipt": [received.receipt],
        "verify_unload": [unload],
        "verify_report": [upload.report],
        "verify_voucher": [voucher],
        "verify_ack": [ack],
        "se_state": [store.state],
        "terminal": [terminal.encode()],
        "text": [encode_text(payment).encode(), encode_text(payment, "base64url").encode()],
        "frame": frames,
        "frames": [b"".join(len(f).to_bytes(2, "big") + f for f in frames)],
        "content": [encode_text(payment).encode(), payment],
        "image": [render_png(req, scale=2)],
    }
    return Corpus(alg, trust, payee_id, signer.key, bank.key, bank.name, messages, seeds)


def _stored(se: SoftwareSecureElement, store: Capture) -> SoftwareSecureElement:
    """``se`` persisting into ``store`` from now on (its next operation writes the state)."""
    se._store = store  # the harness makes SEs without a store; the corpus wants the file
    return se


# --- the targets ----------------------------------------------------------------------------


def split_frames(data: bytes) -> list[bytes]:
    """Frames from ``len(2 bytes) || frame`` records (how the ``frames`` target reads bytes)."""
    out, i = [], 0
    while i + 2 <= len(data):
        n = int.from_bytes(data[i : i + 2], "big")
        out.append(data[i + 2 : i + 2 + n])
        i += 2 + n
    return out


def _targets(c: Corpus) -> dict[str, Callable[[bytes], Any]]:
    net = network_for(c.alg)
    params, trust = net.params, c.trust
    root, banks = net.central_bank.certificate_der, net.bank_ders
    payment = m.parse_payment(c.seeds["verify_payment"][1])  # the one the receipt is for
    payer = m.parse_report(c.messages["report"])  # its certificate names the syncing wallet
    payer_id = trust.wallet_certificate(payer.envelope.certificate_der, None).wallet_id

    def request(b: bytes) -> Any:
        req = m.parse_request(b)
        return verify_payment(
            c.messages["payment"], trust=trust, params=params, now=T0, payee=c.payee, request=req
        )

    return {
        "cbor": cbor.decode,
        "cose": cose.decode_sign1,
        "request": request,
        "payment": m.parse_payment,
        "receipt": m.parse_receipt,
        "voucher": m.parse_voucher,
        "unload": m.parse_unload,
        "report": m.parse_report,
        "ack": m.parse_ack,
        "entry": Entry.decode,
        "policy": pki.decode_policy,
        "trust_root": TrustStore.create,
        "trust_bank": lambda b: TrustStore.create(root, [b]),
        "trust_crl": lambda b: TrustStore.create(root, banks).add_crl(b),
        "wallet_cert": lambda b: trust.wallet_certificate(b, T0),
        "verify_payment": lambda b: verify_payment(
            b, trust=trust, params=params, now=T0, payee=c.payee
        ),
        "verify_receipt": lambda b: verify_receipt(b, trust=trust, params=params, payment=payment),
        "verify_unload": lambda b: verify_unload(b, trust=trust, params=params),
        "verify_report": lambda b: verify_report(b, trust=trust, params=params),
        "verify_voucher": lambda b: verify_voucher(
            b, trust=trust, params=params, wallet=c.payee, bank=c.bank, now=T0
        ),
        "verify_ack": lambda b: verify_ack(
            b, trust=trust, params=params, wallet=payer_id, bank=c.bank
        ),
        "se_state": SoftwareSecureElement,
        "terminal": ReceiveOnlyTerminal.decode,
        "text": lambda b: decode_text(b.decode("utf-8", "replace")),
        "frame": parse_frame,
        "frames": lambda b: decode_frames(split_frames(b)),
        "content": decode_content,
        "image": decode_image,
    }


def targets(alg: SignatureAlgorithm = SignatureAlgorithm.P256) -> dict[str, Callable[[bytes], Any]]:
    """Every decoder, by name, as a function of bytes."""
    return _cached_targets(alg)


@functools.cache
def _cached_targets(alg: SignatureAlgorithm) -> dict[str, Callable[[bytes], Any]]:
    return _targets(corpus(alg))


#: Targets whose inputs are CBOR (the tree mutator applies to their seeds).
CBOR_TARGETS = (
    "cbor", "cose", "request", "payment", "receipt", "voucher", "unload", "report", "ack",
    "entry", "policy", "verify_payment", "verify_receipt", "verify_unload", "verify_report",
    "verify_voucher", "verify_ack", "se_state", "terminal",
)  # fmt: skip


def check(target: Callable[[bytes], Any], data: bytes) -> None:
    """Run ``target``; an ``OffcashError`` is a refusal (fine), anything else propagates."""
    with contextlib.suppress(OffcashError):
        target(data)


# --- structure-aware mutation -----------------------------------------------------------------

BOUNDARY_INTS = [0, 1, -1, 23, 24, 255, 256, 2**31, 2**32, 2**40, 2**40 + 1, 2**63 - 1, 2**63,
                 2**64 - 1, -(2**63), -(2**64)]  # fmt: skip

LEAVES = (
    st.none()
    | st.booleans()
    | st.sampled_from(BOUNDARY_INTS)
    | st.integers()
    | st.floats()
    | st.binary(max_size=48)
    | st.text(max_size=24)
    | st.sampled_from(["EUR", "USD", "XXX", "", "p256", "ed25519", "eur"])
    | st.sampled_from([bytes(12), bytes(16), bytes(32), b"\xff" * 12])
)

CBOR_VALUES = st.recursive(
    LEAVES,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.integers(-3, 10) | st.text(max_size=3), children, max_size=6)
        | st.builds(cbor2.CBORTag, st.sampled_from([18, 24, 2, 3, 1, 55799]), children)
    ),
    max_leaves=12,
)


def _nodes(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into ``value`` (list indices, map keys, ``"tag"`` for a tag's content)."""
    out = [path]
    if isinstance(value, list):
        for i, v in enumerate(value):
            out += _nodes(v, (*path, i))
    elif isinstance(value, dict):
        for k, v in value.items():
            out += _nodes(v, (*path, ("key", k)))
    elif isinstance(value, cbor2.CBORTag):
        out += _nodes(value.value, (*path, "tag"))
    return out


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        if step == "tag":
            value = value.value
        elif isinstance(step, tuple):
            value = value[step[1]]
        else:
            value = value[step]
    return value


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    """A copy of ``value`` with the node at ``path`` replaced (``_DELETE`` removes it)."""
    if not path:
        return new
    step, rest = path[0], path[1:]
    if step == "tag":
        child = _replace(value.value, rest, new)
        return cbor2.CBORTag(value.tag, None if child is _DELETE else child)
    if isinstance(step, tuple):
        out = dict(value)
        child = _replace(value[step[1]], rest, new)
        if child is _DELETE:
            del out[step[1]]
        else:
            out[step[1]] = child
        return out
    items = list(value)
    child = _replace(items[step], rest, new)
    if child is _DELETE:
        del items[step]
    else:
        items[step] = child
    return items


_DELETE = object()
MUTATIONS = ["replace", "delete", "insert", "retype", "bytes_in_bstr", "boundary"]


def mutate_value(data: st.DataObject, value: Any) -> Any:
    """``value`` with one node changed: replaced, deleted, an item or key inserted, its type
    changed, a CBOR-encoded byte string mutated inside, or an integer set to a boundary."""
    path = data.draw(st.sampled_from(_nodes(value)), label="node")
    node = _get(value, path)
    op = data.draw(st.sampled_from(MUTATIONS), label="mutation")
    if op == "delete" and path:
        return _replace(value, path, _DELETE)
    if op == "insert" and isinstance(node, list):
        i = data.draw(st.integers(0, len(node)))
        return _replace(value, path, [*node[:i], data.draw(CBOR_VALUES), *node[i:]])
    if op == "insert" and isinstance(node, dict):
        key = data.draw(st.integers(-70000, 20) | st.text(max_size=3))
        return _replace(value, path, {**node, key: data.draw(CBOR_VALUES)})
    if op == "retype":
        new = {int: str, str: lambda s: s.encode(), bytes: list, list: tuple}.get(type(node))
        if new is not None:
            return _replace(value, path, new(node) if new is not tuple else {0: node})
    if op == "bytes_in_bstr" and isinstance(node, bytes) and node:
        try:
            inner = cbor2.loads(node)
        except Exception:
            inner = None
        if inner is not None:  # a bstr wrapping CBOR (protected header, payload, log entry)
            mutated = mutate_value(data, inner)
            with contextlib.suppress(Exception):
                return _replace(value, path, cbor.encode(mutated))
            return value
        i = data.draw(st.integers(0, len(node) - 1))
        flipped = node[:i] + bytes([node[i] ^ data.draw(st.integers(1, 255))]) + node[i + 1 :]
        return _replace(value, path, flipped)
    if op == "boundary" and type(node) is int:
        return _replace(value, path, data.draw(st.sampled_from(BOUNDARY_INTS)))
    return _replace(value, path, data.draw(CBOR_VALUES))


def encode_any(data: st.DataObject, value: Any) -> bytes:
    """Deterministic CBOR when it can be made (so the strict decoder passes), else cbor2's."""
    try:
        if data.draw(st.integers(0, 9), label="canonical") > 0:
            return cbor.encode(value)
    except Exception:
        pass
    try:
        return bytes(cbor2.dumps(value))
    except Exception:
        return b"\xa0"


def signer_key_for(c: Corpus, kind: str) -> PrivateKey:
    """The key that signed the corpus message of ``kind`` (wallet or bank)."""
    return c.bank_key if kind in ("voucher", "ack") else c.wallet_key


def resigned(message: bytes, key: PrivateKey) -> bytes:
    """``message`` (a COSE_Sign1 whose parts may be mutated) with a fresh valid signature over
    its protected header and payload, when both are still byte strings."""
    try:
        item = cbor2.loads(message)
        protected, unprotected, payload, _ = item.value
        if not isinstance(protected, bytes) or not isinstance(payload, bytes):
            return message
        sig = sign(key, cose.sig_structure(protected, payload))
        return cbor.encode(cbor2.CBORTag(item.tag, [protected, unprotected, payload, sig]))
    except Exception:
        return message


# --- forged certificates: valid signatures over hostile contents -------------------------------


@functools.cache
def _other_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


def forged_wallet_cert(data: st.DataObject, c: Corpus) -> tuple[bytes, PrivateKey]:
    """A certificate signed by the bank's real key whose every field the fuzzer chooses: the
    subject, the validity, the extensions (present, absent, critical or not), the policy (any
    CBOR) and the key (the network's algorithm, or a curve offcash does not use)."""
    net = network_for(c.alg)
    bank = net.banks[0]
    key: Any = data.draw(
        st.sampled_from([c.wallet_key, net.params.algorithm.generate(), _other_key()]),
        label="key",
    )
    subject = data.draw(
        st.sampled_from([str(WalletId.random()), "offcash wallet", "AAAA", "é" * 20])
        | st.text(min_size=1, max_size=30),
        label="subject",
    )
    start = data.draw(st.sampled_from([T0 - 10, T0 + 10, 0, 2**33]), label="not_before")
    days = data.draw(st.sampled_from([1, 7, 36500]), label="days")
    policy = (
        pki.encode_policy(DEFAULT_LIMITS, data.draw(st.integers(0, 2**63 - 1)))
        if data.draw(st.booleans(), label="valid_policy")
        else encode_any(data, data.draw(CBOR_VALUES))
    )
    b = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, subject)]))
        .issuer_name(bank.certificate.subject)
        .public_key(key.public_key())
        .serial_number(data.draw(st.integers(1, 2**159 - 1), label="serial"))
        .not_valid_before(dt.datetime.fromtimestamp(start, dt.UTC))
        .not_valid_after(dt.datetime.fromtimestamp(start + days * 86400, dt.UTC))
    )
    if data.draw(st.booleans(), label="basic_constraints"):
        b = b.add_extension(
            x509.BasicConstraints(ca=data.draw(st.booleans()), path_length=None), critical=True
        )
    if data.draw(st.booleans(), label="key_usage"):
        ds = data.draw(st.booleans())
        b = b.add_extension(
            x509.KeyUsage(ds, False, False, False, False, False, False, False, False),
            critical=True,
        )
    if data.draw(st.booleans(), label="policy"):
        b = b.add_extension(
            x509.UnrecognizedExtension(pki.WALLET_POLICY_OID, policy),
            critical=data.draw(st.booleans()),
        )
    cert = b.sign(bank.key, algorithm_of(bank.key).x509_hash())
    return pki.der(cert), key
