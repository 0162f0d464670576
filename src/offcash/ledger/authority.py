"""The certificate authorities the ledger operates: keys, wallet certificates, revocation, CRLs.

Theory of operation: the central bank's and each bank's CA key are stored in ``authorities``:
by default as unencrypted PKCS#8 DER (a pilot simplification); for a network made with an HSM
(``offcash.crypto.hsm``) the ``key_der`` column holds only the key's RFC 7512 PKCS#11 URI
(``pkcs11:token=...;object=...;id=...?module-path=...``), never key material nor the PIN, and
loading resolves it to a signer in the token. Every wallet certificate issued is recorded
(serial, expiry), so revoking a wallet revokes all its unexpired certificates at once: the
serials go into ``revocations`` with the bank's next CRL number, and the bank's CRL is re-signed
in the same transaction (the bank row is locked by the CRL-number increment, so concurrent
revocations serialise). A CRL lists only unexpired revoked certificates. ``crl_deliveries``
records which CRL number each wallet received at which sync, which decides whether a payee
"held a CRL revoking the payer" when it accepted a payment: an SE proves it only by its own
signed sync reports (the CRLs it states it holds; an answer sent may never be applied);
nothing unauthenticated records one.

After an algorithm migration (``migrate``) the old root and bank CAs stay, renamed
``<name>#<algorithm>`` (``retired_name``): they issue nothing more, but a bank's old CA re-signs
its CRL with the same list and number as its new CA at every revocation, so a wallet certified
under the old algorithm is revoked until its certificate expires. The root's OldWithNew and
NewWithOld certificates (RFC 4210 section 4.4) are kept in ``meta``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy.engine import Connection

from offcash.crypto import pki
from offcash.crypto.algorithms import PrivateKey, PublicKey, SignatureAlgorithm, algorithm_of, spki
from offcash.crypto.signer import KeySigner, SigningKey
from offcash.domain.ids import WalletId
from offcash.issuance import Bank, CentralBank
from offcash.ledger import schema as s
from offcash.ledger.errors import NotFound

#: How a stored key reference starts (a PKCS#8 DER key starts with a SEQUENCE tag, 0x30).
HSM_REFERENCE = b"pkcs11:"
#: What separates a retired CA's name from its algorithm (bank names may not contain it).
RETIRED = "#"


def retired_name(name: str, algorithm: str) -> str:
    """The name a CA is kept under once an algorithm migration retired it."""
    return f"{name}{RETIRED}{algorithm}"


def key_der(key: SigningKey) -> bytes:
    """What the database stores for a CA key: PKCS#8 DER of an in-memory key (unencrypted: see
    the module docstring), or the PKCS#11 URI of a key in an HSM."""
    if isinstance(key, KeySigner):
        key = key.key
    if isinstance(key, PrivateKey):
        return key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    from offcash.crypto import hsm  # only networks with an HSM need python-pkcs11

    if not isinstance(key, hsm.HsmSigner):
        raise TypeError(f"cannot store a {type(key).__name__} CA key")
    return key.ref.uri().encode()


def _key(der: bytes) -> SigningKey:
    if der.startswith(HSM_REFERENCE):
        from offcash.crypto import hsm

        return hsm.signer_for(der.decode())
    return serialization.load_der_private_key(der, None)  # type: ignore[return-value]


@dataclass(frozen=True)
class Authorities:
    """The CAs as loaded from the database (immutable; reload after adding a bank)."""

    central_bank: CentralBank
    banks: dict[str, Bank]
    #: After an algorithm migration: each bank's old CA, by bank name.
    legacy_banks: dict[str, Bank] = field(default_factory=dict)
    #: After an algorithm migration: the old root certified by the new (trusts old wallets).
    old_with_new: bytes | None = None
    #: After an algorithm migration: the new root certified by the old (for old devices).
    new_with_old: bytes | None = None

    @property
    def bank_ders(self) -> list[bytes]:
        """The bank CA certificates, DER, in name order; after a migration the OldWithNew
        certificate first and the old banks' CAs after the new ones."""
        link = [] if self.old_with_new is None else [self.old_with_new]
        new = [self.banks[n].certificate_der for n in sorted(self.banks)]
        return (
            link + new + [self.legacy_banks[n].certificate_der for n in sorted(self.legacy_banks)]
        )

    def bank(self, name: str) -> Bank:
        """The bank CA called ``name``."""
        try:
            return self.banks[name]
        except KeyError:
            raise NotFound(f"no bank {name!r}") from None


def store_root(conn: Connection, cb: CentralBank) -> None:
    """Record the central bank's root CA."""
    conn.execute(
        sa.insert(s.authorities).values(
            name=pki.common_name(cb.certificate.subject),
            is_root=True,
            key_der=key_der(cb.key),
            cert_der=cb.certificate_der,
        )
    )


def store_bank(conn: Connection, bank: Bank) -> None:
    """Record a bank CA (its CRL starts empty, number 0)."""
    conn.execute(
        sa.insert(s.authorities).values(
            name=bank.name, is_root=False, key_der=key_der(bank.key), cert_der=bank.certificate_der
        )
    )


def load(conn: Connection) -> Authorities:
    """Load the central bank and the bank CAs."""
    rows = conn.execute(sa.select(s.authorities)).all()
    root = [r for r in rows if r.is_root and RETIRED not in r.name]
    if not root:
        raise NotFound("the ledger has no central bank yet")
    cb = CentralBank(_key(root[0].key_der), x509.load_der_x509_certificate(root[0].cert_der))
    banks, legacy = {}, {}
    for r in rows:
        if r.is_root:
            continue
        bank = Bank(_key(r.key_der), x509.load_der_x509_certificate(r.cert_der))
        if RETIRED in r.name:
            legacy[r.name.split(RETIRED)[0]] = bank
        else:
            banks[r.name] = bank
    links = dict(
        conn.execute(
            sa.select(s.meta.c.key, s.meta.c.value).where(
                s.meta.c.key.in_(["old_with_new", "new_with_old"])
            )
        ).all()
    )
    old_with_new, new_with_old = (
        base64.b64decode(links[k]) if k in links else None for k in ("old_with_new", "new_with_old")
    )
    return Authorities(cb, banks, legacy, old_with_new, new_with_old)


def migrate(
    conn: Connection,
    auth: Authorities,
    central_bank: CentralBank,
    banks: Iterable[Bank],
    links: tuple[bytes, bytes],
    algorithm: str,
) -> None:
    """Retire the CAs (renamed ``retired_name``) and record the new root and bank CAs of an
    algorithm migration, with the root's ``(new_with_old, old_with_new)`` certificates. A
    new bank CA continues its bank's CRL numbers."""
    a = s.authorities
    numbers = crl_numbers(conn)
    for name in [pki.common_name(auth.central_bank.certificate.subject), *auth.banks]:
        conn.execute(
            sa.update(a).where(a.c.name == name).values(name=retired_name(name, algorithm))
        )
    store_root(conn, central_bank)
    for bank in banks:
        store_bank(conn, bank)
        conn.execute(
            sa.update(a).where(a.c.name == bank.name).values(crl_number=numbers[bank.name])
        )
    new_with_old, old_with_new = links
    conn.execute(
        sa.insert(s.meta),
        [
            {"key": "new_with_old", "value": base64.b64encode(new_with_old).decode()},
            {"key": "old_with_new", "value": base64.b64encode(old_with_new).decode()},
        ],
    )


def record_certificate(
    conn: Connection, wallet: WalletId, cert_der: bytes, bank: str, key: PublicKey
) -> None:
    """Remember an issued wallet certificate so that revocation can find it, with the key it
    certifies (``key``: its SPKI digest and algorithm, for ``certified_keys``)."""
    cert = x509.load_der_x509_certificate(cert_der)
    conn.execute(
        _CERTIFICATE,
        {
            "wallet": wallet.raw,
            "serial": cert.serial_number,
            "bank": bank,
            "not_after": int(cert.not_valid_after_utc.timestamp()),
            "spki_digest": spki_digest(key),
            "algorithm": algorithm_of(key).short,
        },
    )


def spki_digest(key: PublicKey) -> bytes:
    """SHA-256 of a key's DER SubjectPublicKeyInfo: how ``certificates`` names a key."""
    return hashlib.sha256(spki(key)).digest()


def certified_keys(
    conn: Connection, wallet: WalletId, algorithm: SignatureAlgorithm
) -> frozenset[bytes]:
    """The SPKI digests of the ``algorithm`` keys the ledger certified for ``wallet`` (recorded
    since migration 0006_certified_keys; an older row, whose key is unknown, is not among
    them). The caller holds the wallet's row lock, so no sync of it records another meanwhile."""
    rows = conn.execute(_CERTIFIED, {"wallet": wallet.raw, "algorithm": algorithm.short})
    return frozenset(bytes(r[0]) for r in rows)


def current_crls(conn: Connection) -> list[bytes]:
    """Each bank's latest CRL (banks that never revoked anything have none)."""
    return [bytes(r[0]) for r in conn.execute(_CRLS).all()]


# built once (SQLAlchemy then reuses their compiled form): every sync runs them
_CERTIFICATE = sa.insert(s.certificates)
_CERTIFIED = sa.select(s.certificates.c.spki_digest).where(
    s.certificates.c.wallet == sa.bindparam("wallet"),
    s.certificates.c.algorithm == sa.bindparam("algorithm"),
    s.certificates.c.spki_digest.is_not(None),
)
_CRLS = (
    sa.select(s.authorities.c.crl_der)
    .where(s.authorities.c.crl_der.is_not(None))
    .order_by(s.authorities.c.name)
)


def crl_numbers(conn: Connection) -> dict[str, int]:
    """Each bank's current CRL number (0: no CRL yet)."""
    rows = conn.execute(_CRL_NUMBERS).all()
    return {r[0]: int(r[1]) for r in rows if RETIRED not in r[0]}


_CRL_NUMBERS = sa.select(s.authorities.c.name, s.authorities.c.crl_number).where(
    s.authorities.c.is_root.is_(False)
)


def record_delivery(conn: Connection, wallet: WalletId, now: int) -> None:
    """Record that ``wallet`` (a receive-only terminal, given the material by the operator's
    call) received every current CRL at ``now`` (first delivery wins). An SE's deliveries are
    recorded only from its own signed sync reports (``record_held``)."""
    d = s.crl_deliveries
    for bank, number in crl_numbers(conn).items():
        if number == 0:
            continue
        key = {"wallet": wallet.raw, "bank": bank, "crl_number": number}
        if conn.execute(sa.select(d.c.wallet).filter_by(**key)).first() is None:
            conn.execute(sa.insert(d).values(**key, delivered_at=now, pending_seq=None))


def record_held(
    conn: Connection, wallet: WalletId, held: list[tuple[str, int]] | None, at: int
) -> None:
    """``wallet``'s SE states in its signed sync report (time ``at``) that it holds these
    ``(bank, crl_number)`` CRLs: record each it was not recorded as holding as delivered at
    ``at`` (an earlier delivery stands). A number its bank never issued is ignored."""
    if not held:
        return
    numbers = crl_numbers(conn)
    issued = sorted({(b, n) for b, n in held if 0 < n <= numbers.get(b, 0)})
    if not issued:
        return
    recorded = {
        (str(b), int(n))
        for b, n in conn.execute(_DELIVERED, {"wallet": wallet.raw, "pairs": issued})
    }
    new = [
        {"wallet": wallet.raw, "bank": b, "crl_number": n, "delivered_at": at, "pending_seq": None}
        for b, n in issued
        if (b, n) not in recorded
    ]
    if new:
        conn.execute(_DELIVERY, new)


_DELIVERED = sa.select(s.crl_deliveries.c.bank, s.crl_deliveries.c.crl_number).where(
    s.crl_deliveries.c.wallet == sa.bindparam("wallet"),
    sa.tuple_(s.crl_deliveries.c.bank, s.crl_deliveries.c.crl_number).in_(
        sa.bindparam("pairs", expanding=True)
    ),
)
_DELIVERY = sa.insert(s.crl_deliveries)


def revocations_known_to(
    conn: Connection, payers: Iterable[bytes], payee: WalletId
) -> dict[bytes, int]:
    """For each of ``payers`` revoked by a CRL that ``payee`` received (and, for an SE, proved it
    applied): when it first received one, so a payment from that payer accepted at ``at`` was
    accepted knowing the revocation iff ``at >= result[payer]``. One query per 500 payers: what
    a sync or a batch of a terminal's redemption needs."""
    wanted = sorted(set(payers))
    out: dict[bytes, int] = {}
    for i in range(0, len(wanted), 500):
        rows = conn.execute(_KNOWN, {"payee": payee.raw, "payers": wanted[i : i + 500]})
        out.update((bytes(w), int(t)) for w, t in rows)
    return out


_r, _d = s.revocations, s.crl_deliveries
_KNOWN = (
    sa.select(_r.c.wallet, sa.func.min(_d.c.delivered_at))
    .select_from(_r.join(_d, sa.and_(_d.c.bank == _r.c.bank, _d.c.crl_number >= _r.c.crl_number)))
    .where(
        _d.c.wallet == sa.bindparam("payee"),
        _d.c.pending_seq.is_(None),
        _r.c.wallet.in_(sa.bindparam("payers", expanding=True)),
    )
    .group_by(_r.c.wallet)
)


def revoke(conn: Connection, auth: Authorities, wallet: WalletId, bank: str, now: int) -> bytes:
    """Revoke every unexpired certificate of ``wallet`` and re-sign ``bank``'s CRL; returns it."""
    a = s.authorities
    number = conn.execute(
        sa.update(a)
        .where(a.c.name == bank)
        .values(crl_number=a.c.crl_number + 1)
        .returning(a.c.crl_number)
    ).scalar_one()
    revoked = {
        r[0]
        for r in conn.execute(
            sa.select(s.revocations.c.serial).where(s.revocations.c.wallet == wallet.raw)
        )
    }
    certs = conn.execute(
        sa.select(s.certificates.c.serial, s.certificates.c.not_after).where(
            s.certificates.c.wallet == wallet.raw, s.certificates.c.not_after >= now
        )
    ).all()
    new = [
        {
            "bank": bank,
            "serial": serial,
            "wallet": wallet.raw,
            "revoked_at": now,
            "not_after": not_after,
            "crl_number": number,
        }
        for serial, not_after in certs
        if serial not in revoked
    ]
    if new:
        conn.execute(sa.insert(s.revocations), new)
    listed = conn.execute(
        sa.select(s.revocations.c.serial, s.revocations.c.revoked_at)
        .where(s.revocations.c.bank == bank, s.revocations.c.not_after >= now)
        .order_by(s.revocations.c.serial)
    ).all()
    pairs = [(int(x), int(t)) for x, t in listed]
    crl = auth.bank(bank).crl(pairs, int(number), now)
    conn.execute(sa.update(a).where(a.c.name == bank).values(crl_der=crl))
    old = auth.legacy_banks.get(bank)
    if old is not None:  # the old CA's certificates may still be valid: the same list, signed
        retired = retired_name(bank, algorithm_of(old.certificate.public_key()).short)  # type: ignore[arg-type]
        conn.execute(
            sa.update(a)
            .where(a.c.name == retired)
            .values(crl_number=number, crl_der=old.crl(pairs, int(number), now))
        )
    return crl
