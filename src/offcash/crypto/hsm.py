"""CA keys in a PKCS#11 token (an HSM; SoftHSM2 in tests and pilots).

Theory of operation: a key is generated inside the token (``CKA_TOKEN``, ``CKA_SENSITIVE``, not
``CKA_EXTRACTABLE``), so it never exists outside it; what the ledger stores is a ``KeyRef``, an
RFC 7512 PKCS#11 URI naming the module, the token label, the key label and its random id (and,
optionally, ``pin-source``: the path of a file holding the user PIN, never the PIN itself).
``HsmSigner`` implements ``offcash.crypto.signer.Signer``: P-256 signs with ``CKM_ECDSA`` over a
SHA-256 digest computed on the host, and the ``r || s`` the token returns is normalised to low S
(``s <= n/2``), as ``algorithms.sign`` does; Ed25519 signs with ``CKM_EDDSA``. ML-DSA is refused:
PKCS#11 v2.40 tokens (SoftHSM2 included) have no ML-DSA mechanism.

The PIN comes, in this order, from ``OFFCASH_HSM_PIN``, from the file named by
``OFFCASH_HSM_PIN_FILE``, or from the URI's ``pin-source``. One session per token and process is
opened at first use and shared, under a lock (PKCS#11 sessions are not for concurrent use).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
import threading
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pkcs11
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.types import SignMixin
from pkcs11.util.ec import encode_named_curve_parameters

from offcash.crypto import algorithms
from offcash.crypto.algorithms import PublicKey, SignatureAlgorithm
from offcash.errors import LocalError

PIN_ENV = "OFFCASH_HSM_PIN"
PIN_FILE_ENV = "OFFCASH_HSM_PIN_FILE"
URI_PREFIX = "pkcs11:"

#: Order of the P-256 group, for low-S normalisation (as ``algorithms.sign`` does).
P256_ORDER = algorithms.P256_ORDER
_COORD = 32
_CURVES = {
    SignatureAlgorithm.P256: (KeyType.EC, "secp256r1", Mechanism.EC_KEY_PAIR_GEN),
    SignatureAlgorithm.ED25519: (
        KeyType.EC_EDWARDS,
        "1.3.101.112",
        Mechanism.EC_EDWARDS_KEY_PAIR_GEN,
    ),
}
#: The process's PKCS#11 libraries and logged-in tokens (see ``Token.open``).
_LIBS: dict[str, Any] = {}
_OPEN: dict[tuple[str, str], Token] = {}
_GUARD = threading.Lock()


class HsmError(LocalError):
    """The HSM cannot be used: module, token, PIN, key or algorithm."""

    code = "hsm-error"


def low_s(signature: bytes) -> bytes:
    """A P-256 ``r || s`` with ``s`` replaced by ``n - s`` when ``s > n/2``."""
    r, s = signature[:_COORD], int.from_bytes(signature[_COORD:], "big")
    if s > P256_ORDER // 2:
        s = P256_ORDER - s
    return r + s.to_bytes(_COORD, "big")


@dataclass(frozen=True)
class KeyRef:
    """Where a key lives: PKCS#11 module, token label, key label and id (RFC 7512 URI)."""

    module: str
    token: str
    label: str
    key_id: bytes
    pin_source: str | None = None

    def uri(self) -> str:
        """The RFC 7512 URI, e.g. ``pkcs11:token=t;object=k;id=%01?module-path=/lib.so``."""
        q = urllib.parse.quote
        path = f"token={q(self.token, safe='')};object={q(self.label, safe='')};id=" + "".join(
            f"%{b:02X}" for b in self.key_id
        )
        query = f"module-path={q(self.module, safe='/')}"
        if self.pin_source is not None:
            query += f"&pin-source={q('file:' + self.pin_source, safe='/:')}"
        return f"{URI_PREFIX}{path}?{query}"

    @classmethod
    def parse(cls, uri: str) -> KeyRef:
        """The reference in ``uri``; ``HsmError`` if it is not one offcash wrote."""
        if not uri.startswith(URI_PREFIX):
            raise HsmError(f"not a PKCS#11 URI: {uri[:40]!r}")
        path, _, query = uri[len(URI_PREFIX) :].partition("?")
        attrs = dict(_pair(p, "path") for p in path.split(";") if p)
        params = dict(_pair(p, "query") for p in query.split("&") if p)
        try:
            pin_source = params.get("pin-source")
            if pin_source is not None and not pin_source.startswith("file:"):
                raise HsmError("pin-source must be a file: URI")
            return cls(
                module=params["module-path"],
                token=attrs["token"],
                label=attrs["object"],
                key_id=urllib.parse.unquote_to_bytes(attrs["id"]),
                pin_source=pin_source[5:] if pin_source else None,
            )
        except KeyError as missing:
            raise HsmError(f"PKCS#11 URI lacks {missing}") from None


def _pair(part: str, where: str) -> tuple[str, str]:
    name, eq, value = part.partition("=")
    if not eq:
        raise HsmError(f"malformed PKCS#11 URI {where} attribute {part!r}")
    return name, value if name == "id" else urllib.parse.unquote(value)


def read_pin(pin_file: str | None = None) -> str:
    """The user PIN: ``OFFCASH_HSM_PIN``, else ``OFFCASH_HSM_PIN_FILE``, else ``pin_file``."""
    if os.environ.get(PIN_ENV):
        return os.environ[PIN_ENV]
    path = os.environ.get(PIN_FILE_ENV) or pin_file
    if not path:
        raise HsmError(
            f"the CA keys are in an HSM: set {PIN_ENV} or {PIN_FILE_ENV} (a file holding the PIN)"
        )
    try:
        pin = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise HsmError(f"cannot read the HSM PIN file {path}: {exc.strerror}") from None
    if not pin:
        raise HsmError(f"the HSM PIN file {path} is empty")
    return pin


def check_module(module: str) -> None:
    """Refuse a PKCS#11 module that anyone but root or this user could have written: the
    module path comes from the ledger database, and loading a library runs its code, so write
    access to the database must not become code execution in the ledger process."""
    path = Path(module)
    if not path.is_absolute():
        raise HsmError(f"the PKCS#11 module path must be absolute: {module}")
    real = path.resolve()
    try:
        target = real.stat()
        folders = [p.stat() for p in real.parents]
    except OSError:
        raise HsmError(f"no PKCS#11 module at {module}") from None
    if not stat.S_ISREG(target.st_mode):
        raise HsmError(f"the PKCS#11 module {module} is not a regular file")
    for st in [target, *folders]:
        others_write = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not st.st_mode & stat.S_ISVTX
        if st.st_uid not in (0, os.getuid()) or others_write:
            raise HsmError(
                f"the PKCS#11 module {module} or a folder above it is writable by others"
            )


class Token:
    """One logged-in session on a token (shared per process: see ``Token.open``)."""

    def __init__(self, module: str, label: str, session: pkcs11.Session) -> None:
        self.module = module
        self.label = label
        self.session = session
        self.lock = threading.Lock()

    @classmethod
    def open(cls, module: str, label: str, pin: str) -> Token:
        """The process's session on token ``label`` of PKCS#11 library ``module``."""
        with _GUARD:
            if (module, label) in _OPEN:
                return _OPEN[(module, label)]
            check_module(module)
            try:
                lib = _LIBS.get(module) or pkcs11.lib(module)
                _LIBS[module] = lib
                token = lib.get_token(token_label=label)
                session = token.open(user_pin=pin, rw=True)
            except pkcs11.exceptions.NoSuchToken:
                raise HsmError(f"no PKCS#11 token labelled {label!r} in {module}") from None
            except (pkcs11.exceptions.PinIncorrect, pkcs11.exceptions.PinLenRange):
                raise HsmError(f"wrong PIN for the PKCS#11 token {label!r}") from None
            except pkcs11.exceptions.PinLocked:
                raise HsmError(f"the PKCS#11 token {label!r} is locked (PIN)") from None
            except (OSError, RuntimeError, pkcs11.PKCS11Error) as exc:
                raise HsmError(f"cannot open PKCS#11 module {module}: {exc!r}") from None
            _OPEN[(module, label)] = done = cls(module, label, session)
            return done

    def generate(
        self, algorithm: SignatureAlgorithm, label: str, pin_source: str | None = None
    ) -> HsmSigner:
        """A new non-extractable signing key in this token."""
        if algorithm not in _CURVES:
            raise HsmError(
                f"{algorithm.short} keys cannot be kept in a PKCS#11 token (no mechanism for it "
                "in PKCS#11 v2.40 or SoftHSM2); use p256 or ed25519 with --hsm"
            )
        key_type, curve, mechanism = _CURVES[algorithm]
        key_id = secrets.token_bytes(8)
        with self.lock:
            params = self.session.create_domain_parameters(
                key_type, {Attribute.EC_PARAMS: encode_named_curve_parameters(curve)}, local=True
            )
            params.generate_keypair(
                store=True,
                label=label,
                id=key_id,
                mechanism=mechanism,
                private_template={
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.PRIVATE: True,
                    Attribute.SIGN: True,
                },
            )
        return self.signer(KeyRef(self.module, self.label, label, key_id, pin_source), algorithm)

    def signer(self, ref: KeyRef, algorithm: SignatureAlgorithm | None = None) -> HsmSigner:
        """The signer for the key ``ref`` names (its algorithm read from the token)."""
        with self.lock:
            try:
                priv = self.session.get_key(
                    object_class=ObjectClass.PRIVATE_KEY, label=ref.label, id=ref.key_id
                )
                pub = self.session.get_key(
                    object_class=ObjectClass.PUBLIC_KEY, label=ref.label, id=ref.key_id
                )
            except (pkcs11.exceptions.NoSuchKey, pkcs11.exceptions.MultipleObjectsReturned):
                raise HsmError(f"no unique key {ref.label!r} in token {ref.token!r}") from None
            point = _octets(pub[Attribute.EC_POINT])
        if not isinstance(priv, SignMixin):
            raise HsmError(f"key {ref.label!r} in token {ref.token!r} cannot sign")
        found = (
            SignatureAlgorithm.ED25519
            if priv.key_type == KeyType.EC_EDWARDS
            else SignatureAlgorithm.P256
        )
        if algorithm is not None and algorithm is not found:
            raise HsmError(f"key {ref.label!r} is {found.short}, not {algorithm.short}")
        public: PublicKey
        if found is SignatureAlgorithm.ED25519:
            public = ed25519.Ed25519PublicKey.from_public_bytes(point)
        else:
            public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        return HsmSigner(self, ref, found, public, priv)


def _octets(ec_point: bytes) -> bytes:
    """``CKA_EC_POINT`` is a DER OCTET STRING around the point (some tokens give it bare)."""
    if len(ec_point) > 2 and ec_point[0] == 0x04 and ec_point[1] == len(ec_point) - 2:
        return ec_point[2:]
    return ec_point


class HsmSigner:
    """A ``Signer`` whose private key stays in a PKCS#11 token."""

    def __init__(
        self,
        token: Token,
        ref: KeyRef,
        algorithm: SignatureAlgorithm,
        public: PublicKey,
        private: SignMixin,
    ) -> None:
        self.token = token
        self.ref = ref
        self._algorithm = algorithm
        self._public = public
        self._private = private

    @property
    def algorithm(self) -> SignatureAlgorithm:
        """The key's signature algorithm."""
        return self._algorithm

    def public_key(self) -> PublicKey:
        """The key's public half (read from the token)."""
        return self._public

    def sign(self, data: bytes) -> bytes:
        """Sign ``data`` in the token; COSE form (P-256 as low-S ``r || s``)."""
        with self.token.lock:
            if self._algorithm is SignatureAlgorithm.P256:
                raw = self._private.sign(hashlib.sha256(data).digest(), mechanism=Mechanism.ECDSA)
                return low_s(bytes(raw))
            return bytes(self._private.sign(data, mechanism=Mechanism.EDDSA))

    def new_key(self, label: str) -> HsmSigner:
        """A new key of this algorithm in the same token (same PIN source)."""
        return self.token.generate(self._algorithm, label, self.ref.pin_source)

    def __repr__(self) -> str:
        return f"HsmSigner({self.ref.uri()!r})"


def open_token(module: str, label: str, pin_file: str | None = None) -> Token:
    """Log in to token ``label`` of ``module`` with the PIN from ``read_pin(pin_file)``."""
    return Token.open(module, label, read_pin(pin_file))


def signer_for(uri: str) -> HsmSigner:
    """The signer for a stored reference (logging in to its token if not yet done)."""
    ref = KeyRef.parse(uri)
    return open_token(ref.module, ref.token, ref.pin_source).signer(ref)
