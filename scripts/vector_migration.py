"""The algorithm migration vectors (``tests/vectors/migration.json``; docs/PROTOCOL.md,
"Algorithm migration" and section 10): an Ed25519 network that moved to ML-DSA-44.

The certificates are the old root and bank (Ed25519), the new root and bank (ML-DSA-44, their
names qualified by the algorithm), the root's OldWithNew and NewWithOld certificates, and
wallet certificates of both algorithms; the cases are ``cases-<alg>.json`` cases (same keys,
run by ``vector_cases.check_case``) on the migrated network, and ``key_rollover`` holds the
CSRs of a re-key (with the KeyRollover handover, and one whose handover another key made).
ML-DSA signatures are randomized: regenerating changes them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from vector_cases import (
    NOW,
    PAYEE,
    PAYER,
    TIME,
    KeyFor,
    accept,
    check_case,
    network_of,
    reject,
)

from offcash.crypto import pki
from offcash.crypto.algorithms import SignatureAlgorithm, spki
from offcash.domain.limits import DEFAULT_LIMITS
from offcash.domain.network import NetworkParams
from offcash.protocol import messages as m

OLD, NEW = SignatureAlgorithm.ED25519, SignatureAlgorithm.ML_DSA_44
ROOT_NAME, BANK_NAME = "offcash Vector Root", "offcash Vector Bank"
#: The migration time; the old wallet certificate was issued an hour before the vector time.
MIGRATED_AT = TIME - 1800
_ISSUED = TIME - 3600
_WEEK = dt.timedelta(days=7)


def _certificates(key_for: KeyFor) -> dict[str, bytes]:
    old_root_key, old_bank_key = key_for(OLD, "root"), key_for(OLD, "bank")
    root_key, bank_key = key_for(NEW, "root"), key_for(NEW, "bank")
    old_root = pki.issue_root(old_root_key, ROOT_NAME, TIME - 86400)
    old_bank = pki.issue_bank(
        old_root_key, old_root, old_bank_key.public_key(), BANK_NAME, TIME - 86400
    )
    root = pki.issue_root(root_key, ROOT_NAME, MIGRATED_AT, NEW.short)
    bank = pki.issue_bank(root_key, root, bank_key.public_key(), BANK_NAME, MIGRATED_AT, NEW.short)
    # offline for two weeks, so that rule 13 does not decide the cases at legacy_until
    limits = dataclasses.replace(DEFAULT_LIMITS, max_offline_seconds=14 * 86400)

    def wallet(issuer_key: Any, issuer: Any, alg: SignatureAlgorithm, at: int) -> bytes:
        key = key_for(alg, "payer").public_key()
        return pki.der(pki.issue_wallet(issuer_key, issuer, key, PAYER, limits, 0, at, _WEEK))

    return {
        "old_root": pki.der(old_root),
        "old_bank": pki.der(old_bank),
        "root": pki.der(root),
        "bank": pki.der(bank),
        "old_with_new": pki.der(pki.cross_certify(root_key, root, old_root, MIGRATED_AT)),
        "new_with_old": pki.der(pki.cross_certify(old_root_key, old_root, root, MIGRATED_AT)),
        "payer_old": wallet(old_bank_key, old_bank, OLD, _ISSUED),
        # made with the old bank's key after the migration: it outlives legacy_until
        "payer_old_after_migration": wallet(old_bank_key, old_bank, OLD, MIGRATED_AT + 600),
        "payer_new": wallet(bank_key, bank, NEW, MIGRATED_AT),
    }


def build_migration(key_for: KeyFor) -> dict[str, Any]:
    """The ``migration.json`` vector (checked against the code before it is returned)."""
    certs = _certificates(key_for)
    legacy_until = _ISSUED + int(_WEEK.total_seconds())  # the old certificate's not_after
    params = NetworkParams("EUR", OLD).migrate(NEW, legacy_until)

    def payment(alg: SignatureAlgorithm, cert: str, time: int) -> bytes:
        return m.sign_payment(
            key_for(alg, "payer"),
            certs[cert],
            payee=PAYEE,
            amount=1250,
            currency="EUR",
            counter=1,
            time=time,
            nonce=None,
            reference=None,
        )

    trust = {"root": "root", "banks": ["old_with_new", "bank", "old_bank"], "crls": []}

    def case(
        name: str, data: bytes, expect: dict[str, str], now: int = NOW, **kw: Any
    ) -> dict[str, Any]:
        return {
            "name": name,
            "rule": kw.pop("rule", "2"),
            "function": kw.pop("function", "verify_payment"),
            "input": data.hex(),
            "trust": kw.pop("trust", trust),
            "network": network_of(kw.pop("network", params)),
            "now": now,
            "payee": str(PAYEE),
            "request": None,
            "expect": expect,
        }

    last = legacy_until
    cases = [
        case("legacy_payment_accepted", payment(OLD, "payer_old", TIME), accept()),
        case("new_payment_accepted", payment(NEW, "payer_new", TIME), accept()),
        case("legacy_payment_at_legacy_until", payment(OLD, "payer_old", last), accept(), last),
        case(
            "legacy_payment_after_legacy_until",
            payment(OLD, "payer_old", last + 1),
            reject("ALGORITHM_NOT_ALLOWED"),
            last + 1,
        ),
        case(
            "legacy_certificate_outliving_legacy_until",
            payment(OLD, "payer_old_after_migration", TIME),
            reject("ALGORITHM_NOT_ALLOWED"),
            rule="8",
        ),
        case(
            "legacy_payment_on_a_network_that_never_migrated",
            payment(OLD, "payer_old", TIME),
            reject("ALGORITHM_NOT_ALLOWED"),
            network=NetworkParams("EUR", NEW),
        ),
        case(
            "old_bank_without_old_with_new",
            b"",
            reject("UNKNOWN_ISSUER"),
            rule="trust",
            function="trust_store",
            trust={"root": "root", "banks": ["bank", "old_bank"], "crls": []},
        ),
        case(
            "old_with_new_listed_last",
            b"",
            accept(),
            rule="trust",
            function="trust_store",
            trust={"root": "root", "banks": ["old_bank", "bank", "old_with_new"], "crls": []},
        ),
    ]
    new_key = key_for(NEW, "payer")
    vector: dict[str, Any] = {
        "description": "offcash v1 algorithm migration, ed25519 to ml-dsa-44; docs/PROTOCOL.md",
        "network": network_of(params),
        "certificates": {k: v.hex() for k, v in certs.items()},
        "crls": {},
        "messages": {},
        "cases": cases,
        "key_rollover": {
            "context": pki.ROLLOVER_CONTEXT.hex(),
            "extension_oid": pki.KEY_ROLLOVER_OID.dotted_string,
            "previous_certificate": "payer_old",
            "new_spki": spki(new_key.public_key()).hex(),
            "csr": pki.make_csr(new_key, previous=key_for(OLD, "payer")).hex(),
            "csr_handed_over_by_another_key": pki.make_csr(
                new_key, previous=key_for(OLD, "payee")
            ).hex(),
        },
    }
    wrong = [(c["name"], got) for c in cases if (got := check_case(c, vector)) != c["expect"]]
    if wrong:
        raise AssertionError(f"the code disagrees with these migration cases: {wrong}")
    return vector
