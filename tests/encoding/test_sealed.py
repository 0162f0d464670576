"""Sealed messages: COSE_Encrypt0 with HPKE, opened only by the recipient's key.

An independent HPKE implementation (pyhpke) opens what offcash seals, with the Enc_structure
rebuilt here from RFC 9052 and the padding unwrapped here (docs/PROTOCOL.md section 9); every
alteration fails to open; every malformed structure, and a plaintext not padded exactly as the
protocol says, is a ``DecodeError`` naming the part.
"""

from __future__ import annotations

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite

from offcash.encoding import cbor, sealed
from offcash.encoding.sealed import KemKey, KemSuite
from offcash.errors import CannotDecrypt, DecodeError

MESSAGE = b"a signed payment, say" * 20
#: The padded plaintext's smallest and next sizes per suite, as docs/PROTOCOL.md section 9
#: states them: those that make the sealed message 2,000 then 9,000 bytes (``hpke-3`` adds 62
#: bytes; its 3,000 would hold less than its 2,000 does, so it has none), 3,000 then 9,000
#: (the hybrid adds 1,154: its ek alone is 1,120).
SEALED = {KemSuite.X25519: 2_000, KemSuite.MLKEM768_X25519: 3_000}
SMALLEST = {KemSuite.X25519: 1_938, KemSuite.MLKEM768_X25519: 1_846}
NEXT = {KemSuite.X25519: 8_938, KemSuite.MLKEM768_X25519: 7_846}


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
    assert len(ciphertext) == SMALLEST[key.suite] + 16  # the padded plaintext, then the tag
    assert len(data) == SEALED[key.suite]
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
    padded = context.open(ciphertext)  # type: ignore[arg-type]
    assert len(padded) == 1_938
    payment, padding = cbor2.loads(padded)  # [payment, zeros], deterministic CBOR
    assert payment == MESSAGE and padding == bytes(len(padding))
    assert cbor2.dumps([payment, padding], canonical=True) == padded


def test_padding_hides_the_plaintext_size(key: KemKey) -> None:
    """Plaintexts from 1 byte to the smallest size less its CBOR heads seal to one size; one
    byte more goes to the next size (a payment never does: section 9 gives the ranges)."""
    block = SMALLEST[key.suite]
    fits = block - 1 - 3 - 1  # the array head, a 3-byte bstr head, an empty padding's head
    sizes = {len(sealed.seal(b"p" * n, key.public())) for n in (1, 23, 24, 255, 256, 476, fits)}
    assert len(sizes) == 1
    assert (
        len(sealed.seal(b"p" * (fits + 1), key.public())) == sizes.pop() - block + NEXT[key.suite]
    )
    for n in (1, 24, 256, fits, fits + 1, sealed.MAX_PLAINTEXT):  # and every size opens
        assert key.open(sealed.seal(b"q" * n, key.public())) == b"q" * n


def _seal_raw(padded: bytes, key: KemKey) -> bytes:
    """A message sealed for ``key`` with ``padded`` as its exact HPKE plaintext: what a sealer
    that pads wrongly sends (the RFC 9052 Enc_structure as info, built here)."""
    hpke_suite = Suite(
        KEM.X25519 if key.suite is KemSuite.X25519 else KEM.MLKEM768_X25519,
        KDF.HKDF_SHA256,
        AEAD.AES_128_GCM,
    )
    protected = cbor2.dumps({1: key.suite.cose_id})
    info = cbor2.dumps(["Encrypt0", protected, b""])
    out = hpke_suite.encrypt(padded, sealed._public_key(key.suite, key.public()), info=info)
    ek, ciphertext = out[: key.suite.ek_size], out[key.suite.ek_size :]
    return _join([protected, {-4: ek}, ciphertext])


def _padded(payment: bytes, padding: bytes, trailing: bytes = b"") -> bytes:
    return cbor2.dumps([payment, padding]) + trailing


def test_a_plaintext_not_padded_exactly_is_refused(key: KemKey) -> None:
    """A sealer that pads wrongly is refused whole: the right size with non-zero padding, too
    much padding (the next size), trailing bytes, no padding at all, not the array."""
    block = SMALLEST[key.suite]
    right = sealed._pad(MESSAGE, key.suite)  # checked against the independent rule just below
    head = 1 + 3 + len(MESSAGE) + 3  # array, bstr(420), the padding's 3-byte head
    assert right == _padded(MESSAGE, bytes(block - head)) and len(right) == block
    assert key.open(_seal_raw(right, key)) == MESSAGE
    nonzero = _padded(MESSAGE, bytes(block - head - 1) + b"\x01")
    cases: list[tuple[bytes, str]] = [
        (nonzero, "sealed.plaintext.padding"),
        (_padded(MESSAGE, bytes(NEXT[key.suite] - head)), "sealed.plaintext.padding"),
        (_padded(MESSAGE, bytes(block - head - 1), b"\x00"), "sealed.plaintext"),
        (cbor2.dumps({1: MESSAGE, 2: bytes(block - head - 2)}), "sealed.plaintext"),
    ]
    for padded, path in cases:
        assert len(padded) in (block, NEXT[key.suite]), path  # the ciphertext's size is right
        with pytest.raises(DecodeError) as info:
            key.open(_seal_raw(padded, key))
        assert info.value.path == path
    with pytest.raises(DecodeError) as info:  # the bare payment: a length of no block
        key.open(_seal_raw(MESSAGE, key))
    assert info.value.path == "sealed.ciphertext"


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
        (_join([protected, unprotected, ciphertext + b"\0"]), "multiple of"),
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


def test_a_header_label_that_is_not_an_integer_is_refused(key: KemKey) -> None:
    """Header labels are integers (RFC 9052 section 3): a float label equal to one (-4.0 for
    ``ek``, 1.0 for ``alg``) is another map, however Python compares it. Such an unprotected
    header is not bound by the AEAD, so a relay could re-encode a sealed message into another
    that still opened (of a size no sealer makes); it is refused before decrypting."""
    data = sealed.seal(MESSAGE, key.public())
    protected, unprotected, ciphertext = _parts(data)
    assert isinstance(unprotected, dict)
    # encoded by hand: a float64 label (fb ...), as a relay would write it
    float_ek = cbor2.dumps(cbor2.CBORTag(16, [protected, {-4.0: unprotected[-4]}, ciphertext]))
    assert len(float_ek) != len(data)
    with pytest.raises(DecodeError) as refused:
        key.open(float_ek)
    assert refused.value.path == "sealed"  # offcash's CBOR carries no floats at all
    float_alg = cbor2.dumps({1.0: key.suite.cose_id})
    with pytest.raises(DecodeError) as refused:
        key.open(cbor2.dumps(cbor2.CBORTag(16, [float_alg, unprotected, ciphertext])))
    assert refused.value.path == "sealed.protected"
