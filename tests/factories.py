"""Test building blocks shared by the core suite: signers outside any SE, message forgers and a
small raw-CBOR writer for non-canonical inputs.

Nothing here is a fixture: tests (and hypothesis strategies, which cannot take function-scoped
fixtures) call these directly.
"""

from __future__ import annotations

import datetime as dt
import functools
import struct
from dataclasses import dataclass
from typing import Any

import cbor2

from offcash.crypto import pki
from offcash.crypto.algorithms import PrivateKey, SignatureAlgorithm
from offcash.crypto.trust import TrustStore
from offcash.domain.ids import WalletId
from offcash.domain.limits import DEFAULT_LIMITS, Limits
from offcash.encoding import cbor, cose
from offcash.issuance import Bank
from offcash.protocol import messages as m

from harness import T0, PilotNetwork


@dataclass(frozen=True)
class Signer:
    """A wallet key and its certificate, issued by a bank of ``net``, with no secure element:
    lets a test sign any payment, including ones an SE would refuse to make."""

    key: PrivateKey
    cert: bytes
    wallet_id: WalletId

    def payment(self, payee: WalletId, **overrides: Any) -> bytes:
        """A payment to ``payee`` (amount 100, counter 1, time T0, one-way unless overridden)."""
        values: dict[str, Any] = {
            "payee": payee,
            "amount": 100,
            "currency": "EUR",
            "counter": 1,
            "time": T0,
            "nonce": None,
            "reference": None,
        }
        values.update(overrides)
        return m.sign_payment(self.key, self.cert, **values)

    def report(self, **overrides: Any) -> bytes:
        """A sync report (sync 0, counter 1, balance 1, empty log, time T0 unless overridden)."""
        values: dict[str, Any] = {
            "sync_seq": 0,
            "counter": 1,
            "balance": 1,
            "currency": "EUR",
            "entries": 0,
            "log_digest": bytes(32),
            "time": T0,
        }
        values.update(overrides)
        return m.sign_report(self.key, self.cert, **values)


def make_signer(
    net: PilotNetwork,
    *,
    bank: Bank | None = None,
    limits: Limits = DEFAULT_LIMITS,
    counter_base: int = 0,
    now: int = T0,
    validity: dt.timedelta = pki.DEFAULT_WALLET_VALIDITY,
    wallet_id: WalletId | None = None,
) -> Signer:
    """A fresh wallet key certified by ``bank`` (default: the network's first bank)."""
    bank = bank or net.banks[0]
    key = net.params.algorithm.generate()
    wid = wallet_id or WalletId.random()
    cert = bank.certify_wallet(pki.make_csr(key), wid, limits, counter_base, now, validity)
    return Signer(key, cert, wid)


def trust_of(net: PilotNetwork, crls: list[bytes] = ()) -> TrustStore:  # type: ignore[assignment]
    """What a payee of ``net`` holds: the root, both banks, and ``crls``."""
    return TrustStore.create(net.central_bank.certificate_der, net.bank_ders, crls)


@functools.cache
def network_for(alg: SignatureAlgorithm) -> PilotNetwork:
    """A pilot network per algorithm, built once per process (for hypothesis tests)."""
    return PilotNetwork.create(alg)


@functools.cache
def signer_for(alg: SignatureAlgorithm) -> Signer:
    """One signer per algorithm, built once per process (for hypothesis tests)."""
    return make_signer(network_for(alg))


# --- taking signed messages apart --------------------------------------------------------


def cose_parts(data: bytes) -> list[Any]:
    """``[protected, unprotected, payload, signature]`` of a COSE_Sign1."""
    item = cbor2.loads(data)
    assert item.tag == cose.COSE_SIGN1_TAG
    return list(item.value)


def cose_join(parts: list[Any]) -> bytes:
    """A COSE_Sign1 from its four parts (deterministic CBOR)."""
    return cbor.encode(cbor2.CBORTag(cose.COSE_SIGN1_TAG, parts))


def payload_map(data: bytes) -> dict[int, Any]:
    """The decoded payload map of a signed message."""
    return dict(cbor2.loads(cose_parts(data)[2]))


def with_payload(data: bytes, payload: bytes | dict[int, Any]) -> bytes:
    """``data`` with its payload replaced, keeping the old signature (so it no longer verifies)."""
    parts = cose_parts(data)
    parts[2] = payload if isinstance(payload, bytes) else cbor.encode(payload)
    return cose_join(parts)


#: The group orders, written out here (not taken from the code under test).
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
ED25519_L = 2**252 + 27742317777372353535851937790883648493


def malleated(data: bytes) -> bytes:
    """The twin of a signed message that anyone handling it can make without a key: the same
    protected header and payload with the other form of the signature (ECDSA ``s -> n - s``,
    which verifies; Ed25519 ``S -> S + L``, which a verifier must refuse)."""
    parts = cose_parts(data)
    sig = parts[3]
    alg = SignatureAlgorithm.from_cose(cbor2.loads(parts[0])[cose.HEADER_ALG])
    if alg is SignatureAlgorithm.P256:
        s = P256_N - int.from_bytes(sig[32:], "big")
        parts[3] = sig[:32] + s.to_bytes(32, "big")
    else:
        s = int.from_bytes(sig[32:], "little") + ED25519_L
        parts[3] = sig[:32] + s.to_bytes(32, "little")
    return cose_join(parts)


def with_protected(data: bytes, header: bytes | dict[int, Any]) -> bytes:
    """``data`` with its protected header replaced, keeping the old signature."""
    parts = cose_parts(data)
    parts[0] = header if isinstance(header, bytes) else cbor.encode(header)
    return cose_join(parts)


def protected_map(data: bytes) -> dict[int, Any]:
    """The decoded protected header of a signed message."""
    return dict(cbor2.loads(cose_parts(data)[0]))


def resign(
    data: bytes,
    key: PrivateKey,
    *,
    payload: dict[int, Any] | bytes | None = None,
    protected: dict[int, Any] | bytes | None = None,
) -> bytes:
    """``data`` with its payload and/or protected header replaced and signed again by ``key``."""
    from offcash.crypto.algorithms import sign

    parts = cose_parts(data)
    if protected is not None:
        parts[0] = protected if isinstance(protected, bytes) else cbor.encode(protected)
    if payload is not None:
        parts[2] = payload if isinstance(payload, bytes) else cbor.encode(payload)
    parts[3] = sign(key, cose.sig_structure(parts[0], parts[2]))
    return cose_join(parts)


# --- a raw CBOR writer, for encodings the deterministic encoder never makes ---------------


def head(major: int, value: int, width: int | None = None) -> bytes:
    """A CBOR item head; ``width`` (1, 2, 4, 8 bytes) forces a non-shortest argument."""
    if width is None:
        return _shortest_head(major, value)
    code = {1: 24, 2: 25, 4: 26, 8: 27}[width]
    fmt = {1: ">B", 2: ">H", 4: ">I", 8: ">Q"}[width]
    return bytes([(major << 5) | code]) + struct.pack(fmt, value)


def _shortest_head(major: int, value: int) -> bytes:
    if value < 24:
        return bytes([(major << 5) | value])
    for width in (1, 2, 4, 8):
        if value < 2 ** (8 * width):
            return head(major, value, width)
    raise ValueError(value)


def raw_map(pairs: list[tuple[bytes, bytes]], *, indefinite: bool = False) -> bytes:
    """A CBOR map from already-encoded (key, value) pairs, in the order given."""
    body = b"".join(k + v for k, v in pairs)
    if indefinite:
        return b"\xbf" + body + b"\xff"
    return _shortest_head(5, len(pairs)) + body


def encoded_pairs(value: dict[int, Any]) -> list[tuple[bytes, bytes]]:
    """The (key, value) encodings of a map, in deterministic order."""
    return sorted((cbor.encode(k), cbor.encode(v)) for k, v in value.items())
