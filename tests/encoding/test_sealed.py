"""Sealed messages: COSE_Encrypt0 with HPKE, opened only by the recipient's key.

An independent HPKE implementation (pyhpke) opens what offcash seals, with the Enc_structure
rebuilt here from RFC 9052; every alteration fails to open; every malformed structure is a
``DecodeError`` naming the part.
"""

from __future__ import annotations

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import x25519

from offcash.encoding import cbor, sealed
from offcash.encoding.sealed import KemKey, KemSuite
from offcash.errors import CannotDecrypt, DecodeError

MESSAGE = b"a signed payment, say" * 20


@pytest.fixture(params=list(KemSuite), ids=lambda s: s.short)
def key(request: pytest.FixtureRequest) -> KemKey:
    return KemKey.generate(request.param)


def _parts(data: bytes) -> list[object]:
    tagged = cbor2.loads(data)
    assert tagged.tag == 16
    return list(tagged.value)


def _join(parts: list[object]) -> bytes:
    return cbor.encode(cbor2.CBORTag(16, parts))


def test_round_trip_and_layout(key: KemKey) -> None:
    data = sealed.seal(MESSAGE, key.public())
    assert sealed.is_sealed(data) and key.open(data) == MESSAGE
    protected, unprotected, ciphertext = _parts(data)
    assert cbor2.loads(protected) == {1: key.suite.cose_id}  # no kid: it would name the payee
    assert list(unprotected) == [-4] and len(unprotected[-4]) == key.suite.ek_size
    assert len(ciphertext) == len(MESSAGE) + 16
    assert sealed.seal(MESSAGE, key.public()) != data  # a fresh encapsulation every time


def test_an_independent_hpke_opens_it() -> None:
    """pyhpke (HPKE-3: X25519, HKDF-SHA256, AES-128-GCM) opens offcash's sealed message, with
    the Enc_structure as HPKE info (offcash's documented deviation from the draft's aad)."""
    from pyhpke import AEADId, CipherSuite, KDFId, KEMId, KEMKey

    key = KemKey.generate(KemSuite.X25519)
    data = sealed.seal(MESSAGE, key.public())
    protected, unprotected, ciphertext = _parts(data)
    suite = CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.AES128_GCM)
    private = KEMKey.from_pyca_cryptography_key(
        x25519.X25519PrivateKey.from_private_bytes(key.secret)
    )
    info = cbor2.dumps(["Encrypt0", protected, b""])
    context = suite.create_recipient_context(unprotected[-4], private, info=info)  # type: ignore[index]
    assert context.open(ciphertext) == MESSAGE  # type: ignore[arg-type]


def test_only_the_recipient_opens_it(key: KemKey) -> None:
    data = sealed.seal(MESSAGE, key.public())
    with pytest.raises(CannotDecrypt):
        KemKey.generate(key.suite).open(data)
    other = next(s for s in KemSuite if s is not key.suite)
    with pytest.raises(CannotDecrypt, match="sealed with"):
        KemKey.generate(other).open(data)


def test_every_alteration_fails_to_open(key: KemKey) -> None:
    protected, unprotected, ciphertext = _parts(sealed.seal(MESSAGE, key.public()))
    assert isinstance(unprotected, dict) and isinstance(ciphertext, bytes)
    ek = unprotected[-4]
    flipped_ek = bytes([ek[0] ^ 1]) + ek[1:]
    flipped_ct = ciphertext[:-1] + bytes([ciphertext[-1] ^ 1])
    for parts in (
        [protected, {-4: flipped_ek}, ciphertext],
        [protected, unprotected, flipped_ct],
        [protected, unprotected, ciphertext[:-1]],
    ):
        with pytest.raises(CannotDecrypt):
            key.open(_join(parts))


def test_malformed_sealed_messages_are_decode_errors(key: KemKey) -> None:
    protected, unprotected, ciphertext = _parts(sealed.seal(MESSAGE, key.public()))
    assert isinstance(unprotected, dict)
    ek = unprotected[-4]
    cases: list[tuple[bytes, str]] = [
        (b"\x01", "tag 16"),
        (cbor.encode(cbor2.CBORTag(18, [protected, unprotected, ciphertext])), "tag 16"),
        (_join([protected, unprotected]), "array of 3"),
        (_join([cbor.encode({1: key.suite.cose_id, 4: b"bob"}), unprotected, ciphertext]), "alg"),
        (_join([cbor.encode({1: 35}), unprotected, ciphertext]), "unknown HPKE suite"),
        (_join([protected, {-4: ek, 4: b"payee"}, ciphertext]), "ek"),
        (_join([protected, {-4: ek[:-1]}, ciphertext]), "ek"),
        (_join([protected, unprotected, b"short"]), "ciphertext"),
        (cbor.encode(cbor2.CBORTag(16, [protected, unprotected, ciphertext]))[:-1], "sealed"),
    ]
    for data, fragment in cases:
        with pytest.raises(DecodeError, match=fragment):
            key.open(data)


def test_seal_refuses_bad_arguments() -> None:
    key = KemKey.generate(KemSuite.X25519)
    for plaintext in (b"", b"x" * (sealed.MAX_PLAINTEXT + 1)):
        with pytest.raises(ValueError, match="plaintext"):
            sealed.seal(plaintext, key.public())
    with pytest.raises(ValueError, match="no KEM public key"):
        sealed.seal(MESSAGE, bytes(33))
