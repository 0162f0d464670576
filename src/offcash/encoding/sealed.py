"""COSE_Encrypt0 with HPKE: a message only its recipient can read.

Theory of operation: a payee holds a KEM key pair (``KemKey``) and gives its public key in its
payment request; a payer who has it seals the signed payment for that key, so that a relay,
a chat server or a shared folder that carries it learns nothing but its size. Sealing is HPKE
(RFC 9180) single-shot in base mode, written as the integrated-encryption COSE_Encrypt0 of
draft-ietf-cose-hpke (section 3.2): ``16([protected, unprotected, ciphertext])`` with the
protected header ``{1: alg}`` and the unprotected ``{-4: ek}`` (HPKE's encapsulated key). There
is no ``kid``: it would name the payee. Two suites:

- ``HPKE-3``: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM; COSE alg 41, the value the
  draft assumes (not yet assigned by IANA);
- ``MLKEM768-X25519``: the hybrid post-quantum KEM of draft-ietf-hpke-pq with HKDF-SHA256 and
  AES-128-GCM; the COSE-HPKE draft registers no suite for it yet, so offcash uses the private-use
  alg -65600 until one exists.

One deviation from the draft, documented in docs/PROTOCOL.md: ``cryptography``'s single-shot
HPKE takes no associated data, so the RFC 9052 ``Enc_structure`` (``["Encrypt0", protected,
h'']``) is bound through HPKE's ``info`` instead of its ``aad``. Both enter the key schedule or
the tag, so tampering with the protected header fails decryption either way. Decoding is strict
(deterministic CBOR, exactly these headers, sizes bounded); a well-formed message that does not
open with the key is ``CannotDecrypt``.

Padding: what is encrypted is not the payment itself but the deterministic CBOR
``[payment, padding]``, ``padding`` a bstr of zeros making the sealed message exactly the first
of ``SEALED_SIZES`` that holds it with any suite (``_CAPACITY``: so a payment's size does not
depend on the payee's suite). The sizes are whole numbers of ``QUANTUM`` bytes (1,000: the
QR transport's default frame budget, so a sealed payment fills whole frames), and each holds
every payment of one class of payer algorithm with room to spare, whatever its amount, counter,
time, nonce, reference (up to the longest) and payer certificate (any bank): 2,000 bytes for a
classical payment (Ed25519, P-256) to an ``hpke-3`` payee, 3,000 to a hybrid one (its ``ek``
alone is 1,120 bytes), 9,000 for ML-DSA-44, 12,000 for ML-DSA-65. A relay learns the payer's
algorithm class, which the network's algorithm already tells (docs/PROTOCOL.md section 9).
A message that opens to anything but exactly this form (not an array of two bstrs, non-zero
padding, a size not the one the payment pads to) is a ``DecodeError`` at ``sealed.plaintext``
(``sealed.plaintext.padding`` for the padding's bytes or length): only someone holding the
recipient's public key can have made it, and it is refused whole. A ciphertext of no padded
size is refused before decrypting (``sealed.ciphertext``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import cbor2
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from offcash.encoding import cbor
from offcash.encoding.fields import bstr
from offcash.errors import CannotDecrypt, DecodeError

COSE_ENCRYPT0_TAG = 16
HEADER_ALG = 1
#: The "ek" (encapsulated key) header parameter of draft-ietf-cose-hpke.
HEADER_EK = -4
#: Why a well-formed sealed message does not open (``CannotDecrypt``): nothing tells which.
NOT_FOR_THIS_KEY = "the message is not sealed for this key, or was altered"
#: A sealed message is a whole multiple of this many bytes (the QR transport's default frame
#: budget, ``offcash.transports.qr.FRAME_BUDGET``: a sealed payment fills whole frames).
QUANTUM = 1_000
#: The largest sealed message (61 quanta, under 64 KiB).
MAX_SEALED = 61 * QUANTUM
#: The sizes a sealed message may have: one per class of payment (classical payments, 496 to
#: 1,103 bytes, in the first that a suite can use; ML-DSA-44 payments, 6.5 to 7.1 KB, in 9,000;
#: ML-DSA-65 ones, 8.9 to 9.6 KB, in 12,000: each with 600 bytes or more to spare for a
#: longer certificate), then every multiple of ``QUANTUM`` for larger plaintexts.
SEALED_SIZES = (2_000, 3_000, 9_000, 12_000, *range(13_000, MAX_SEALED + 1, QUANTUM))
#: A bound on every suite's padded plaintext (each is ``MAX_SEALED`` less the suite's overhead).
MAX_PADDED = MAX_SEALED
#: The largest plaintext sealed (a signed payment with an ML-DSA-65 certificate and a long
#: reference is under 11 KB); every plaintext up to it pads to one of its suite's sizes.
MAX_PLAINTEXT = 56 * 1_024
_AEAD_TAG = 16
#: The smallest padded size a suite uses: more than any classical payment, so that all of them
#: seal to one size (the hybrid suite's 1,154 bytes of overhead leave 846 of 2,000: too few).
_MIN_PADDED = 1_800
_X25519_PUBLIC = 32
_MLKEM768_PUBLIC = 1184
_MLKEM768_SEED = 64


def _overhead(cose_id: int, ek_size: int) -> int:
    """The bytes a sealed message of this suite has beyond its padded plaintext (every padded
    size takes a 3-byte bstr head, as the probe's does)."""
    probe = 1_000
    protected = cbor.encode({HEADER_ALG: cose_id})
    body = [protected, {HEADER_EK: bytes(ek_size)}, bytes(probe + _AEAD_TAG)]
    return len(cbor.encode(cbor2.CBORTag(COSE_ENCRYPT0_TAG, body))) - probe


class KemSuite(enum.Enum):
    """An HPKE suite: its name, COSE alg, the sizes of its public key and ``ek``, and the
    sizes its padded plaintexts may have."""

    X25519 = ("hpke-3", 41, _X25519_PUBLIC, 32)
    MLKEM768_X25519 = ("mlkem768-x25519", -65600, _MLKEM768_PUBLIC + _X25519_PUBLIC, 1120)

    #: The sizes a padded plaintext may have, smallest first (``_padded_sizes``).
    padded_sizes: tuple[int, ...]

    def __init__(self, short: str, cose_id: int, public_size: int, ek_size: int) -> None:
        self.short = short
        self.cose_id = cose_id
        #: The size of a raw public key (ML-KEM-768's, then X25519's, for the hybrid).
        self.public_size = public_size
        #: The size of HPKE's encapsulated key.
        self.ek_size = ek_size
        #: What a sealed message adds to its padded plaintext: the COSE structure, ``ek`` and
        #: the AEAD tag (62 bytes for ``hpke-3``, 1,154 for the hybrid).
        self.overhead = _overhead(cose_id, ek_size)

    def hpke(self) -> hpke.Suite:
        """The ``cryptography`` HPKE suite."""
        kem = hpke.KEM.X25519 if self is KemSuite.X25519 else hpke.KEM.MLKEM768_X25519
        return hpke.Suite(kem, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_128_GCM)

    @classmethod
    def from_cose(cls, cose_id: int) -> KemSuite | None:
        """The suite with this COSE alg, or None."""
        return next((s for s in cls if s.cose_id == cose_id), None)


#: What a padded plaintext may hold to seal to each size, whatever the suite: the padded size
#: of the suite with the most overhead among those that can use it (the hybrid's from 3,000
#: bytes on; only ``hpke-3`` fits 2,000). So a payment's size class does not depend on the
#: payee's suite: were ``hpke-3``'s own 62 bytes of overhead to count, its 9,000 would hold
#: up to 8,934 bytes of payment, some ML-DSA-65 payments (a short bank name, no reference),
#: whose others take 12,000. ``hpke-3`` still pads to its own padded size of that message.
_CAPACITY = {
    size: min(size - s.overhead for s in KemSuite if size - s.overhead >= _MIN_PADDED)
    for size in SEALED_SIZES
}


def _padded_sizes(suite: KemSuite) -> tuple[int, ...]:
    """The sizes ``suite``'s padded plaintexts may have: those that make the sealed message
    one of ``SEALED_SIZES``, from ``_MIN_PADDED`` on, leaving out a size whose capacity is
    no more than a smaller one's (``hpke-3``'s 3,000: the 2,000 holds more)."""
    sizes, held = [], 0
    for size in SEALED_SIZES:
        if size - suite.overhead >= _MIN_PADDED and _CAPACITY[size] > held:
            sizes.append(size - suite.overhead)
            held = _CAPACITY[size]
    return tuple(sizes)


for _suite in KemSuite:
    _suite.padded_sizes = _padded_sizes(_suite)


@dataclass(frozen=True, slots=True)
class KemKey:
    """A recipient's KEM private key, kept as its raw secret: X25519's 32 bytes, or the
    ML-KEM-768 seed (64 bytes) then the X25519 key for the hybrid."""

    suite: KemSuite
    secret: bytes

    @classmethod
    def generate(cls, suite: KemSuite) -> KemKey:
        """A new key pair of ``suite``."""
        x = x25519.X25519PrivateKey.generate().private_bytes_raw()
        if suite is KemSuite.X25519:
            return cls(suite, x)
        seed = mlkem.MLKEM768PrivateKey.generate().private_bytes_raw()
        return cls(suite, seed + x)

    def _private(self) -> Any:
        if self.suite is KemSuite.X25519:
            return x25519.X25519PrivateKey.from_private_bytes(self.secret)
        seed, x = self.secret[:_MLKEM768_SEED], self.secret[_MLKEM768_SEED:]
        return hpke.MLKEM768X25519PrivateKey(
            mlkem.MLKEM768PrivateKey.from_seed_bytes(seed),
            x25519.X25519PrivateKey.from_private_bytes(x),
        )

    def public(self) -> bytes:
        """The raw public key a payee gives payers."""
        if self.suite is KemSuite.X25519:
            return (
                x25519.X25519PrivateKey.from_private_bytes(self.secret)
                .public_key()
                .public_bytes_raw()
            )
        seed, x = self.secret[:_MLKEM768_SEED], self.secret[_MLKEM768_SEED:]
        return (
            mlkem.MLKEM768PrivateKey.from_seed_bytes(seed).public_key().public_bytes_raw()
            + x25519.X25519PrivateKey.from_private_bytes(x).public_key().public_bytes_raw()
        )

    def open(self, data: bytes) -> bytes:
        """The plaintext of a message sealed for this key. ``DecodeError`` if it is not a
        well-formed sealed message of this key's suite; ``CannotDecrypt`` if it does not open."""
        suite, protected, ek, ciphertext = _decode(data)
        if suite is not self.suite:
            raise CannotDecrypt(f"sealed with {suite.short}, this key is {self.suite.short}")
        try:
            padded = suite.hpke().decrypt(
                ek + ciphertext, self._private(), info=_enc_structure(protected)
            )
        except InvalidTag:
            raise CannotDecrypt(NOT_FOR_THIS_KEY) from None
        return _unpad(padded, suite)


def _public_key(suite: KemSuite, raw: bytes) -> Any:
    if len(raw) != suite.public_size:
        raise ValueError(
            f"a {suite.short} public key has {suite.public_size} bytes, not {len(raw)}"
        )
    if suite is KemSuite.X25519:
        return x25519.X25519PublicKey.from_public_bytes(raw)
    return hpke.MLKEM768X25519PublicKey(
        mlkem.MLKEM768PublicKey.from_public_bytes(raw[:_MLKEM768_PUBLIC]),
        x25519.X25519PublicKey.from_public_bytes(raw[_MLKEM768_PUBLIC:]),
    )


def suite_of_public_key(raw: bytes) -> KemSuite:
    """The suite a raw public key belongs to, by its size; ``ValueError`` if none."""
    for suite in KemSuite:
        if len(raw) == suite.public_size:
            return suite
    raise ValueError(f"no KEM public key has {len(raw)} bytes")


#: Public keys ``check_public_key`` accepted, by their exact bytes (cleared when full).
_CHECKED: dict[bytes, KemSuite] = {}
_CHECKED_MAX = 1024


def check_public_key(raw: bytes) -> KemSuite:
    """The suite of the raw public key ``raw`` once a message can be sealed for it (a trial
    encapsulation: an X25519 key of low order, such as all zeros, gives no shared secret);
    ``ValueError`` if none can. A payer's device checks a request's key with it before it
    signs or debits anything.

    Whether a key is usable depends on its bytes alone, so a key accepted once is accepted
    again without a second trial (the last ``_CHECKED_MAX`` distinct keys are remembered; a
    refused key is tried again each time)."""
    held = _CHECKED.get(raw)
    if held is not None:
        return held
    suite = suite_of_public_key(raw)
    try:
        suite.hpke().encrypt(b"\x00", _public_key(suite, raw), info=b"")
    except ValueError as exc:
        raise ValueError(f"not a usable {suite.short} public key: {exc}") from None
    if len(_CHECKED) >= _CHECKED_MAX:
        _CHECKED.clear()
    _CHECKED[bytes(raw)] = suite
    return suite


def _enc_structure(protected: bytes) -> bytes:
    return cbor.encode(["Encrypt0", protected, b""])


def seal(plaintext: bytes, public_key: bytes) -> bytes:
    """Seal ``plaintext`` for the holder of the raw ``public_key`` (its suite is known by its
    size). ``ValueError`` for a public key of no suite or an invalid one."""
    if type(plaintext) is not bytes or not 1 <= len(plaintext) <= MAX_PLAINTEXT:
        raise ValueError(f"plaintext must be 1 to {MAX_PLAINTEXT} bytes")
    suite = suite_of_public_key(public_key)
    protected = cbor.encode({HEADER_ALG: suite.cose_id})
    out = suite.hpke().encrypt(
        _pad(plaintext, suite), _public_key(suite, public_key), info=_enc_structure(protected)
    )
    ek, ciphertext = out[: suite.ek_size], out[suite.ek_size :]
    return cbor.encode(cbor2.CBORTag(COSE_ENCRYPT0_TAG, [protected, {HEADER_EK: ek}, ciphertext]))


def _bstr_head(length: int) -> int:
    return 1 if length < 24 else 2 if length < 256 else 3 if length < 65_536 else 5


def _padding_length(plaintext_length: int, suite: KemSuite) -> int:
    """The length of the zero padding: ``[plaintext, padding]`` is then the padded size of
    the first sealed size whose capacity (``_CAPACITY``) holds it (a size whose bstr heads
    cannot add up exactly, a byte or two past a head boundary, moves to the next one)."""
    used = 1 + _bstr_head(plaintext_length) + plaintext_length
    for size in suite.padded_sizes:
        if used + 1 > _CAPACITY[size + suite.overhead]:  # even an empty padding's head
            continue
        rest = size - used
        for head in (1, 2, 3):
            if rest - head >= 0 and _bstr_head(rest - head) == head:
                return rest - head
    raise ValueError(f"a plaintext of {plaintext_length} bytes pads to no size")


def _pad(plaintext: bytes, suite: KemSuite) -> bytes:
    return cbor.encode([plaintext, bytes(_padding_length(len(plaintext), suite))])


def _unpad(padded: bytes, suite: KemSuite) -> bytes:
    item: Any = cbor.decode(padded, path="sealed.plaintext", max_bytes=MAX_PADDED)
    if type(item) is not list or len(item) != 2 or any(type(x) is not bytes for x in item):
        raise DecodeError("sealed.plaintext", "expected [payment: bstr, padding: bstr]")
    plaintext: bytes = item[0]
    padding: bytes = item[1]
    if not 1 <= len(plaintext) <= MAX_PLAINTEXT:
        raise DecodeError("sealed.plaintext", f"the payment must be 1 to {MAX_PLAINTEXT} bytes")
    if padding.count(0) != len(padding):
        raise DecodeError("sealed.plaintext.padding", "the padding must be all zeros")
    if len(padding) != _padding_length(len(plaintext), suite):
        raise DecodeError(
            "sealed.plaintext.padding",
            f"{len(padded)} bytes is not the size a {len(plaintext)}-byte payment pads to",
        )
    return plaintext


def is_sealed(data: bytes) -> bool:
    """Whether ``data`` starts like a sealed message (CBOR tag 16), not a signed one (tag 18)."""
    return data[:1] == b"\xd0"


def _labels_are(header: Any, label: int) -> bool:
    """Whether ``header`` is a map of exactly the integer label ``label`` (a float or bool
    key that Python finds equal to it, such as -4.0, is another label)."""
    return type(header) is dict and [(type(k), k) for k in header] == [(int, label)]


def _decode(data: bytes) -> tuple[KemSuite, bytes, bytes, bytes]:
    limit = MAX_PADDED + 4096
    item: Any = cbor.decode(data, path="sealed", max_bytes=limit)
    if not isinstance(item, cbor2.CBORTag) or item.tag != COSE_ENCRYPT0_TAG:
        raise DecodeError("sealed", "expected a COSE_Encrypt0 (CBOR tag 16)")
    body = item.value
    if type(body) is not list or len(body) != 3:
        raise DecodeError("sealed", "COSE_Encrypt0 must be an array of 3 items")
    protected_raw, unprotected, ciphertext = body
    protected_raw = bstr(1, 16)(protected_raw, "sealed.protected")
    protected = cbor.decode(protected_raw, path="sealed.protected")
    if not _labels_are(protected, HEADER_ALG):
        raise DecodeError("sealed.protected", "expected exactly {1: alg}")
    alg = protected[HEADER_ALG]
    suite = KemSuite.from_cose(alg) if type(alg) is int else None
    if suite is None:
        raise DecodeError("sealed.protected.alg", f"unknown HPKE suite {alg!r}")
    if not _labels_are(unprotected, HEADER_EK):
        raise DecodeError("sealed.unprotected", "expected exactly {-4: ek}")
    ek = bstr(suite.ek_size, suite.ek_size)(unprotected[HEADER_EK], "sealed.unprotected.ek")
    ciphertext = bstr(suite.padded_sizes[0] + _AEAD_TAG, MAX_PADDED + _AEAD_TAG)(
        ciphertext, "sealed.ciphertext"
    )
    if len(ciphertext) - _AEAD_TAG not in suite.padded_sizes:
        raise DecodeError(
            "sealed.ciphertext",
            f"a sealed message must be one of {SEALED_SIZES[:4]} bytes or a multiple of {QUANTUM}",
        )
    return suite, protected_raw, ek, ciphertext
