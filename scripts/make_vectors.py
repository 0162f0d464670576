"""Generate the test vectors in tests/vectors/ from fixed keys, serials, time and nonces.

Usage: ``python scripts/make_vectors.py [name ...]`` (writes tests/vectors/<name>.json:
payment-<alg>, cases-<alg>, transports, sealed; all of them without a name).
The v1 conformance cases are built by scripts/vector_cases.py; docs/PROTOCOL.md section 10
specifies every file.

Each vector holds the keys, the certificate chain, a payment request, the payment answering it
(its protected header, payload, to-be-signed bytes, signature and full encoding), the payee's
receipt, and negative cases with the ``Rejection`` a verifier must give. Another implementation
(a JavaCard applet, a Kotlin wallet) checks itself against these files.

Reproducibility: Ed25519 signatures are deterministic, so an Ed25519 vector is reproduced byte
for byte, certificates included. ECDSA (P-256) signatures are randomized, so a P-256 vector
keeps its certificates and signatures as data: what is reproduced byte for byte is every
encoding the signer chooses (request, protected header, payload, to-be-signed bytes, the digest
that names the payment and the receipt's payload), and the stored signatures must verify.
tests/test_vectors.py checks both.

Signatures are canonical: a P-256 signature has a low ``s`` (``s <= n/2``), and the negative
case ``malleated_signature`` is the twin anyone can make without the key (P-256 ``n - s``,
Ed25519 ``S + L``), which a verifier must refuse. A message's ``digest`` is SHA-256 of its
``to_be_signed`` bytes: what was signed, not the signature.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import cbor2
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa

from offcash.crypto import pki
from offcash.crypto.algorithms import PrivateKey, SignatureAlgorithm
from offcash.domain.ids import WalletId
from offcash.domain.limits import DEFAULT_LIMITS
from offcash.domain.network import NetworkParams
from offcash.encoding import cbor, cose
from offcash.protocol import messages as m

VECTORS = Path(__file__).resolve().parent.parent / "tests" / "vectors"
TIME = 1_790_000_000
PAYER = WalletId(bytes.fromhex("0102030405060708090a0b0c"))
PAYEE = WalletId(bytes.fromhex("a1a2a3a4a5a6a7a8a9aaabac"))
OTHER = WalletId(bytes.fromhex("b1b2b3b4b5b6b7b8b9babbbc"))
NONCE = bytes(range(16))
AMOUNT = 1250
REFERENCE = "vector-1"
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
ED25519_L = 2**252 + 27742317777372353535851937790883648493


def key_for(alg: SignatureAlgorithm, label: str) -> PrivateKey:
    """A fixed private key: the SHA-256 of ``offcash vector <label>`` as scalar or seed."""
    seed = hashlib.sha256(f"offcash vector {label}".encode()).digest()
    if alg is SignatureAlgorithm.P256:
        scalar = int.from_bytes(seed, "big") % (P256_ORDER - 1) + 1
        return ec.derive_private_key(scalar, ec.SECP256R1())
    if alg is SignatureAlgorithm.ML_DSA_44:
        return mldsa.MLDSA44PrivateKey.from_seed_bytes(seed)
    if alg is SignatureAlgorithm.ML_DSA_65:
        return mldsa.MLDSA65PrivateKey.from_seed_bytes(seed)
    return ed25519.Ed25519PrivateKey.from_private_bytes(seed)


def private_hex(key: PrivateKey) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return f"{key.private_numbers().private_value:064x}"
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    ).hex()


@contextmanager
def fixed_serials() -> Iterator[None]:
    """Certificate serial numbers 1001, 1002, ... in order of issuance."""
    counter = itertools.count(1001)
    with mock.patch.object(pki, "_serial", lambda: next(counter)):
        yield


def certificates(alg: SignatureAlgorithm) -> dict[str, bytes]:
    """Root, bank, payer and payee certificates (deterministic for Ed25519)."""
    root_key, bank_key = key_for(alg, "root"), key_for(alg, "bank")
    with fixed_serials():
        root = pki.issue_root(root_key, "offcash Vector Root", TIME - 86400)
        bank = pki.issue_bank(
            root_key, root, bank_key.public_key(), "offcash Vector Bank", TIME - 86400
        )
        wallets = {
            name: pki.issue_wallet(
                bank_key,
                bank,
                key_for(alg, name).public_key(),
                wid,
                DEFAULT_LIMITS,
                0,
                TIME - 3600,
            )
            for name, wid in (("payer", PAYER), ("payee", PAYEE))
        }
    return {"root": pki.der(root), "bank": pki.der(bank)} | {
        k: pki.der(v) for k, v in wallets.items()
    }


def kem_payee(public: bytes) -> dict[str, str]:
    """The Ed25519 vector payee's CSR carrying the KEM public key ``public`` (EncryptionKey)
    and the certificate its bank issues from it, binding the key's SHA-256
    (EncryptionKeyDigest): what a one-way payer checks a directory's key against."""
    alg = SignatureAlgorithm.ED25519
    root_key, bank_key = key_for(alg, "root"), key_for(alg, "bank")
    csr = pki.make_csr(key_for(alg, "payee"), encryption_key=public)
    with fixed_serials():
        root = pki.issue_root(root_key, "offcash Vector Root", TIME - 86400)
        bank = pki.issue_bank(
            root_key, root, bank_key.public_key(), "offcash Vector Bank", TIME - 86400
        )
        cert = pki.issue_wallet(
            bank_key,
            bank,
            pki.csr_public_key(csr),
            PAYEE,
            DEFAULT_LIMITS,
            0,
            TIME - 3600,
            encryption_key=pki.csr_encryption_key(csr),
        )
    return {"payee_csr": csr.hex(), "payee_certificate": pki.der(cert).hex()}


def _signed(data: bytes) -> dict[str, str]:
    env = cose.decode_sign1(data)
    return {
        "protected": env.protected.hex(),
        "payload": env.payload.hex(),
        "to_be_signed": env.to_be_signed().hex(),
        "signature": env.signature.hex(),
        "encoded": data.hex(),
        "digest": m.digest(data).hex(),
    }


def build(alg: SignatureAlgorithm, certs: dict[str, bytes] | None = None) -> dict[str, Any]:
    """The vector for ``alg``; ``certs`` reuses stored certificates (for P-256)."""
    certs = certs or certificates(alg)
    payer_key, payee_key = key_for(alg, "payer"), key_for(alg, "payee")
    params = NetworkParams("EUR", alg)
    request = m.PaymentRequest(PAYEE, AMOUNT, "EUR", NONCE, TIME, REFERENCE, "Vector Shop")
    fields = {
        "payee": PAYEE,
        "amount": AMOUNT,
        "currency": "EUR",
        "counter": 1,
        "time": TIME + 10,
        "nonce": NONCE,
        "reference": REFERENCE,
    }
    payment = m.sign_payment(payer_key, certs["payer"], **fields)
    receipt = m.sign_receipt(payee_key, certs["payee"], payment=m.digest(payment), time=TIME + 20)

    parts = cose.decode_sign1(payment)
    tampered_payload = cbor.decode(parts.payload) | {2: AMOUNT * 100}
    tampered = cbor.encode(
        cbor2.CBORTag(
            cose.COSE_SIGN1_TAG,
            [parts.protected, {}, cbor.encode(tampered_payload), parts.signature],
        )
    )
    flipped = bytearray(payment)
    flipped[-1] ^= 0x01
    sig = parts.signature
    if alg is SignatureAlgorithm.P256:
        twin_sig = sig[:32] + (P256_ORDER - int.from_bytes(sig[32:], "big")).to_bytes(32, "big")
    elif alg.post_quantum:  # another encoding of ML-DSA's hints, which FIPS 204 refuses
        twin_sig = sig[:-1] + bytes([sig[-1] ^ 1])
    else:
        twin_sig = sig[:32] + (int.from_bytes(sig[32:], "little") + ED25519_L).to_bytes(
            32, "little"
        )
    malleated = cbor.encode(
        cbor2.CBORTag(cose.COSE_SIGN1_TAG, [parts.protected, {}, parts.payload, twin_sig])
    )
    redirected = m.sign_payment(
        payer_key, certs["payer"], **(fields | {"payee": OTHER, "counter": 2, "nonce": None})
    )
    negative = [
        {
            "name": "tampered_amount",
            "encoded": tampered.hex(),
            "verify_at": TIME + 30,
            "rejection": "BAD_SIGNATURE",
        },
        {
            "name": "flipped_signature_bit",
            "encoded": bytes(flipped).hex(),
            "verify_at": TIME + 30,
            "rejection": "BAD_SIGNATURE",
        },
        {
            "name": "malleated_signature",
            "encoded": malleated.hex(),
            "verify_at": TIME + 30,
            "rejection": (
                "NON_CANONICAL_SIGNATURE" if alg is SignatureAlgorithm.P256 else "BAD_SIGNATURE"
            ),
        },
        {
            "name": "addressed_to_another_wallet",
            "encoded": redirected.hex(),
            "verify_at": TIME + 30,
            "rejection": "WRONG_PAYEE",
        },
        {
            "name": "too_old",
            "encoded": payment.hex(),
            "verify_at": TIME + 10 + params.max_payment_age + 1,
            "rejection": "TOO_OLD",
        },
        {
            "name": "from_the_future",
            "encoded": payment.hex(),
            "verify_at": TIME + 10 - params.clock_skew - 1,
            "rejection": "FROM_THE_FUTURE",
        },
    ]
    return {
        "description": f"offcash payment vector, {alg.short}; see scripts/make_vectors.py",
        "algorithm": alg.short,
        "cose_alg": alg.cose_id,
        "network": {
            "currency": "EUR",
            "max_payment_age": params.max_payment_age,
            "clock_skew": params.clock_skew,
        },
        "keys": {
            name: private_hex(key_for(alg, name)) for name in ("root", "bank", "payer", "payee")
        },
        "certificates": {k: v.hex() for k, v in certs.items()},
        "payer": str(PAYER),
        "payee": str(PAYEE),
        "request": {
            "fields": {
                "payee": str(PAYEE),
                "amount": AMOUNT,
                "currency": "EUR",
                "nonce": NONCE.hex(),
                "time": TIME,
                "reference": REFERENCE,
                "payee_name": "Vector Shop",
            },
            "encoded": request.encode().hex(),
        },
        "payment": {
            "fields": {
                "payee": str(PAYEE),
                "amount": AMOUNT,
                "currency": "EUR",
                "counter": 1,
                "time": TIME + 10,
                "nonce": NONCE.hex(),
                "reference": REFERENCE,
            },
            "verify_at": TIME + 30,
            **_signed(payment),
        },
        "receipt": {
            "fields": {"payment": m.digest(payment).hex(), "time": TIME + 20},
            **_signed(receipt),
        },
        "negative": negative,
    }


def dump(vector: dict[str, Any]) -> str:
    return json.dumps(vector, indent=2, sort_keys=True) + "\n"


def main(names: list[str]) -> int:
    """Write the vector files named (``payment-p256``, ``cases-ed25519``, ``transports``...),
    or all of them. P-256 and ML-DSA signatures are randomized: regenerating those files
    changes their signatures (and the P-256 certificates)."""
    import vector_cases
    import vector_migration

    def wanted(name: str) -> bool:
        return not names or name in names

    VECTORS.mkdir(parents=True, exist_ok=True)
    for alg in SignatureAlgorithm:
        if not wanted(f"payment-{alg.short}"):
            continue
        path = VECTORS / f"payment-{alg.short}.json"
        path.write_text(dump(build(alg)))
        print(f"wrote {path}")
    for alg in SignatureAlgorithm:
        if not wanted(f"cases-{alg.short}"):
            continue
        path = VECTORS / f"cases-{alg.short}.json"
        path.write_text(dump(vector_cases.build_cases(alg, key_for, certificates(alg))))
        print(f"wrote {path}")
    small = bytes.fromhex(
        json.loads((VECTORS / "payment-ed25519.json").read_text())["payment"]["encoded"]
    )
    large = bytes.fromhex(
        json.loads((VECTORS / "payment-ml-dsa-44.json").read_text())["payment"]["encoded"]
    )
    builders = {
        "transports": lambda: vector_cases.build_transports(small, large),
        "sealed": lambda: vector_cases.build_sealed(small, kem_payee),
        "migration": lambda: vector_migration.build_migration(key_for),
    }
    for name, build_vector in builders.items():
        if not wanted(name):
            continue
        vector = build_vector()
        path = VECTORS / f"{name}.json"
        path.write_text(dump(vector))
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
