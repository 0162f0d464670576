"""JSON shapes shared by the HTTP app and client: bytes travel as unpadded base64url.

Theory of operation: signed CBOR/COSE messages are opaque bytes to HTTP; each is a base64url
string field in a JSON body, and each result dataclass of the service has a ``to_json`` /
``from_json`` pair here so the app and the client agree by construction.
"""

from __future__ import annotations

import base64
from typing import Any

from offcash.crypto.algorithms import SignatureAlgorithm
from offcash.domain.ids import WalletId
from offcash.domain.network import NetworkParams
from offcash.errors import DecodeError
from offcash.ledger.books import Audit, BankPosition
from offcash.ledger.service import Anomaly, Enrollment, RedeemResult, TrustMaterial
from offcash.ledger.sync import Refusal, SyncResult
from offcash.wallet.settlement import NetworkInfo


def b64(data: bytes) -> str:
    """Unpadded base64url text of ``data``."""
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64(text: str, path: str = "body") -> bytes:
    """Bytes from unpadded base64url; ``DecodeError`` naming ``path`` if malformed."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise DecodeError(path, f"not base64url: {exc}") from None


def _refusals(items: list[Refusal]) -> list[dict[str, str]]:
    return [{"digest": b64(r.digest), "reason": r.reason} for r in items]


def _unrefusals(items: list[dict[str, str]]) -> list[Refusal]:
    return [Refusal(unb64(r["digest"]), r["reason"]) for r in items]


def sync_result(r: SyncResult) -> dict[str, Any]:
    """JSON of a sync result."""
    return {
        "ack": b64(r.ack) if r.ack else None,
        "certificate": b64(r.certificate) if r.certificate else None,
        "bank_certificates": [b64(c) for c in r.bank_certificates],
        "crls": [b64(c) for c in r.crls],
        "settled": r.settled,
        "refused": _refusals(r.refused),
        "anomalies": r.anomalies,
    }


def parse_sync_result(j: dict[str, Any]) -> SyncResult:
    """A sync result from JSON."""
    return SyncResult(
        unb64(j["ack"]) if j["ack"] else None,
        unb64(j["certificate"]) if j["certificate"] else None,
        [unb64(c) for c in j["bank_certificates"]],
        [unb64(c) for c in j["crls"]],
        j["settled"],
        _unrefusals(j["refused"]),
        list(j["anomalies"]),
    )


def enrollment(e: Enrollment) -> dict[str, Any]:
    """JSON of an enrolment."""
    return {
        "wallet_id": str(e.wallet_id),
        "certificate": b64(e.certificate),
        "bank_certificates": [b64(c) for c in e.bank_certificates],
        "crls": [b64(c) for c in e.crls],
    }


def parse_enrollment(j: dict[str, Any]) -> Enrollment:
    """An enrolment from JSON."""
    return Enrollment(
        WalletId.parse(j["wallet_id"]),
        unb64(j["certificate"]),
        [unb64(c) for c in j["bank_certificates"]],
        [unb64(c) for c in j["crls"]],
    )


def trust(t: TrustMaterial) -> dict[str, Any]:
    """JSON of trust material."""
    return {
        "root": b64(t.root),
        "bank_certificates": [b64(c) for c in t.bank_certificates],
        "crls": [b64(c) for c in t.crls],
    }


def parse_trust(j: dict[str, Any]) -> TrustMaterial:
    """Trust material from JSON."""
    return TrustMaterial(
        unb64(j["root"]), [unb64(c) for c in j["bank_certificates"]], [unb64(c) for c in j["crls"]]
    )


def redeem(r: RedeemResult) -> dict[str, Any]:
    """JSON of a redemption result."""
    return {
        "settled": r.settled,
        "amount": r.amount,
        "duplicates": r.duplicates,
        "refused": _refusals(r.refused),
    }


def parse_redeem(j: dict[str, Any]) -> RedeemResult:
    """A redemption result from JSON."""
    return RedeemResult(j["settled"], j["amount"], j["duplicates"], _unrefusals(j["refused"]))


def audit(a: Audit) -> dict[str, Any]:
    """JSON of an audit."""
    return {
        "issued": a.issued,
        "customers": a.customers,
        "reserves": a.reserves,
        "float": a.float,
        "suspense": a.suspense,
        "balanced": a.balanced,
        "journal_entries": a.journal_entries,
        "unbalanced_entries": a.unbalanced_entries,
        "banks": {b: vars(p) for b, p in a.banks.items()},
    }


def parse_audit(j: dict[str, Any]) -> Audit:
    """An audit from JSON."""
    return Audit(
        j["issued"],
        j["customers"],
        j["reserves"],
        j["float"],
        j["suspense"],
        {b: BankPosition(**p) for b, p in j["banks"].items()},
        j["journal_entries"],
        j["unbalanced_entries"],
    )


def anomaly(a: Anomaly) -> dict[str, Any]:
    """JSON of an anomaly."""
    return {
        "kind": a.kind,
        "wallet": str(a.wallet) if a.wallet else None,
        "bank": a.bank,
        "amount": a.amount,
        "time": a.time,
        "detail": a.detail,
        "evidence": b64(a.evidence) if a.evidence else None,
    }


def parse_anomaly(j: dict[str, Any]) -> Anomaly:
    """An anomaly from JSON."""
    return Anomaly(
        j["kind"],
        WalletId.parse(j["wallet"]) if j["wallet"] else None,
        j["bank"],
        j["amount"],
        j["time"],
        j["detail"],
        unb64(j["evidence"]) if j["evidence"] else None,
    )


def network(n: NetworkInfo) -> dict[str, Any]:
    """``GET /v1/network``: the parameters and trust anchors a new wallet needs."""
    p = n.params
    return {
        "currency": p.currency,
        "algorithm": p.algorithm.short,
        "max_payment_age": p.max_payment_age,
        "clock_skew": p.clock_skew,
        "root": b64(n.root),
        "bank_certificates": [b64(c) for c in n.bank_certificates],
    } | (
        {}  # after an algorithm migration: where it came from, and the old root's vouching
        if p.legacy is None or n.new_with_old is None
        else {
            "legacy_algorithm": p.legacy.short,
            "legacy_until": p.legacy_until,
            "new_with_old": b64(n.new_with_old),
        }
    )


def parse_network(j: dict[str, Any]) -> NetworkInfo:
    """The inverse of ``network``."""
    params = NetworkParams(
        str(j["currency"]),
        SignatureAlgorithm.from_name(str(j["algorithm"])),
        int(j["max_payment_age"]),
        int(j["clock_skew"]),
        SignatureAlgorithm.from_name(str(j["legacy_algorithm"]))
        if "legacy_algorithm" in j
        else None,
        int(j.get("legacy_until", 0)),
    )
    link = unb64(j["new_with_old"]) if "new_with_old" in j else None
    return NetworkInfo(params, unb64(j["root"]), [unb64(c) for c in j["bank_certificates"]], link)
