"""The settlement HTTP API (FastAPI; OpenAPI at ``/openapi.json``, docs at ``/docs``).

Theory of operation: a thin adapter over ``LedgerService``. Signed messages travel as base64url
strings in JSON; amounts are integers of minor units of the network's currency (docs/API.md).
Wallet calls (sync, unload, redeem, trust) need no credential: the SE-signed report, unload
request and payments are the authentication, and value only ever goes to the accounts the
ledger already associates with the signer or the terminal. Operator calls need
``Authorization: Bearer <token>`` (nothing else is accepted; the token is compared in constant
time; a refusal is a 401 with ``WWW-Authenticate: Bearer``). ``/healthz``, ``/readyz`` and
``/metrics`` need no credential. Every error is an RFC 9457 problem document
(``offcash.api.problems``); malformed input is a 400 or 422, never a 500; every body, list and
text field is bounded (``offcash.api.limits``). The clock is read here (``clock``); tests and
replays may let the caller set ``X-Offcash-Time``.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import unicodedata
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Path, Query
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from offcash.api import docs, limits, monitoring, problems, wire
from offcash.api.problems import PROBLEM_BASE, Problem, problem, status_of
from offcash.domain.ids import WalletId
from offcash.errors import OffcashError
from offcash.ledger.errors import Unauthorized
from offcash.ledger.service import LedgerService, voucher_id_of
from offcash.se.state import MAX_LOG_ENTRIES

__all__ = ["PROBLEM_BASE", "Problem", "create_app", "problem", "status_of", "voucher_id"]

#: Integers the ledger stores (SQL BIGINT); larger ones are malformed input, not a server error.
BIGINT = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
#: The clock a caller may set: the range of a message's time field.
TIME = Annotated[int | None, Header(ge=0, le=2**40)]


def printable(text: str) -> str:
    """``text`` if it holds no control character (NUL included) and no lone surrogate: such
    text cannot be stored (PostgreSQL refuses NUL, neither backend encodes a surrogate)."""
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in text):
        raise ValueError("contains a control character or a lone surrogate")
    return text


#: A name or id given in a body, a path or a query: bounded, printable text.
Text = Annotated[
    str,
    StringConstraints(min_length=1, max_length=limits.MAX_NAME_CHARS),
    AfterValidator(printable),
]
#: ``Idempotency-Key`` (draft-ietf-httpapi-idempotency-key-header) on every operator call that
#: creates or moves something (issue, open account, distribute, enroll, register a terminal,
#: fund): a retry with the same key and request gets the first answer and takes effect once; the
#: same key with another request is 409.
IDEMPOTENCY_KEY = Annotated[
    str | None, Header(min_length=1, max_length=255), AfterValidator(lambda v: v and printable(v))
]
#: A signed message (or CSR) as base64url text, and a log entry.
Signed = Annotated[str, StringConstraints(max_length=limits.MAX_SIGNED_B64)]
EntryText = Annotated[str, StringConstraints(max_length=limits.MAX_ENTRY_B64)]
PathText = Annotated[Text, Path()]


def voucher_id(idempotency_key: str) -> bytes:
    """The voucher id an ``Idempotency-Key`` names (``LedgerService.fund`` derives it)."""
    return voucher_id_of(idempotency_key)


def _problems(*statuses: tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    return {
        status: {
            "description": description,
            "content": {problems.MEDIA_TYPE: {"schema": Problem.model_json_schema()}},
        }
        for status, description in statuses
    }


#: Every route may answer with a problem document; the OpenAPI document says so.
PROBLEMS = _problems(
    (400, "Malformed input (not JSON, not base64url, not a decodable message)"),
    (401, "Operator call without a valid bearer token"),
    (404, "Unknown wallet, account, bank or route"),
    (409, "Refused by the ledger's state"),
    (413, "Request body over the route's limit"),
    (422, "Input failing validation (see errors), or a signed message breaking a rule"),
    (503, "The ledger database cannot be reached now; retry later"),
)


class Amount(BaseModel):
    amount: BIGINT = Field(description="Integer of minor units of the network's currency")


class NewAccount(BaseModel):
    bank: Text
    holder: Text


class NewWallet(BaseModel):
    csr: Signed
    account: Text


class NewTerminal(BaseModel):
    account: Text


class Upload(BaseModel):
    report: Signed
    entries: list[EntryText] = Field(max_length=MAX_LOG_ENTRIES)
    csr: Signed


class Unload(BaseModel):
    request: Signed


class Payments(BaseModel):
    payments: list[Signed] = Field(max_length=limits.MAX_REDEEM_PAYMENTS)


def _same_token(given: str, token: str) -> bool:
    """``given == token`` in constant time: SHA-256 of both sides, so not even the length
    leaks."""
    return hmac.compare_digest(
        hashlib.sha256(given.encode()).digest(), hashlib.sha256(token.encode()).digest()
    )


def operator_guard(token: str) -> Callable[..., None]:
    """The dependency of operator routes: ``Authorization: Bearer <token>`` and nothing else
    (declared in the OpenAPI document as the ``HTTPBearer`` scheme), compared in constant time
    (``_same_token``); else ``Unauthorized`` (a 401 with ``WWW-Authenticate: Bearer``)."""
    bearer = Depends(HTTPBearer(auto_error=False, description="The operator token"))

    def operator(credentials: HTTPAuthorizationCredentials | None = bearer) -> None:
        if credentials is None or not _same_token(credentials.credentials, token):
            raise Unauthorized("operator call without a valid bearer token")

    return operator


def is_operator(authorization: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header is ``Bearer <token>`` (compared as
    ``operator_guard`` does), for a route open to all that does more for the operator."""
    scheme, _, given = (authorization or "").partition(" ")
    return _same_token(given, token) and scheme.lower() == "bearer"


def create_app(  # noqa: PLR0915 (one short route per endpoint)
    ledger: LedgerService,
    token: str,
    clock: Callable[[], int] = lambda: int(time.time()),
    accept_client_time: bool = False,
) -> FastAPI:
    """The FastAPI app serving ``ledger``; ``token`` guards the operator calls."""
    title = "offcash settlement"
    app = FastAPI(title=title, version="1", responses=PROBLEMS, docs_url=None, redoc_url=None)
    problems.install(app)
    docs.install(app, title)
    app.add_middleware(limits.BodyLimit, router=app.router)
    stats = monitoring.install(app, ledger)

    def now(x_offcash_time: TIME = None) -> int:
        return x_offcash_time if accept_client_time and x_offcash_time is not None else clock()

    Op = [Depends(operator_guard(token))]

    @app.get("/v1/network")
    def network() -> dict[str, Any]:
        """The network parameters and trust anchors a new wallet needs (no credential)."""
        return wire.network(ledger.network())

    @app.get("/v1/trust")
    def trust(
        wallet: Annotated[Text | None, Query()] = None,
        t: int = Depends(now),
        authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    ) -> dict[str, Any]:
        # anyone may fetch the material; only the operator may record that a terminal holds it
        # (an SE proves what it holds in its own signed sync report)
        wid = WalletId.parse(wallet) if wallet and is_operator(authorization, token) else None
        return wire.trust(ledger.trust_material(wid, t))

    @app.post("/v1/sync")
    def sync(body: Upload, t: int = Depends(now)) -> dict[str, Any]:
        try:
            entries = [wire.unb64(e, f"entries[{i}]") for i, e in enumerate(body.entries)]
            report, csr = wire.unb64(body.report, "report"), wire.unb64(body.csr, "csr")
            result = ledger.sync(report, entries, csr, t)
        except OffcashError as exc:
            stats.syncs.labels(exc.code).inc()
            raise
        stats.syncs.labels("revoked" if result.ack is None else "settled").inc()
        stats.settled.labels("sync").inc(result.settled)
        stats.refusals(result.refused)
        return wire.sync_result(result)

    @app.post("/v1/unload")
    def unload(body: Unload, t: int = Depends(now)) -> dict[str, Any]:
        amount = ledger.unload(wire.unb64(body.request, "request"), t)
        return {"amount": amount, "currency": ledger.params.currency}

    @app.post("/v1/terminals/{terminal}/redeem")
    def redeem(terminal: PathText, body: Payments, t: int = Depends(now)) -> dict[str, Any]:
        payments = (wire.unb64(p, f"payments[{i}]") for i, p in enumerate(body.payments))
        result = ledger.redeem(WalletId.parse(terminal), payments, t)
        stats.settled.labels("redeem").inc(result.settled)
        stats.refusals(result.refused)
        return {**wire.redeem(result), "currency": ledger.params.currency}

    @app.post("/v1/banks/{bank}/issue", dependencies=Op)
    def issue(
        bank: PathText, body: Amount, t: int = Depends(now), idempotency_key: IDEMPOTENCY_KEY = None
    ) -> dict[str, bool]:
        ledger.issue(bank, body.amount, t, idempotency_key)
        return {"ok": True}

    @app.post("/v1/accounts", dependencies=Op)
    def open_account(body: NewAccount, idempotency_key: IDEMPOTENCY_KEY = None) -> dict[str, str]:
        return {"account": ledger.open_account(body.bank, body.holder, idempotency_key)}

    @app.post("/v1/accounts/{account}/distribute", dependencies=Op)
    def distribute(
        account: PathText,
        body: Amount,
        t: int = Depends(now),
        idempotency_key: IDEMPOTENCY_KEY = None,
    ) -> dict[str, bool]:
        ledger.distribute(account, body.amount, t, idempotency_key)
        return {"ok": True}

    @app.get("/v1/accounts/{account}", dependencies=Op)
    def balance(account: PathText) -> dict[str, Any]:
        return {"balance": ledger.balance(account), "currency": ledger.params.currency}

    @app.post("/v1/wallets", dependencies=Op)
    def enroll(
        body: NewWallet, t: int = Depends(now), idempotency_key: IDEMPOTENCY_KEY = None
    ) -> dict[str, Any]:
        csr = wire.unb64(body.csr, "csr")
        return wire.enrollment(ledger.enroll(csr, body.account, t, idempotency_key=idempotency_key))

    @app.post("/v1/terminals", dependencies=Op)
    def register_terminal(
        body: NewTerminal, idempotency_key: IDEMPOTENCY_KEY = None
    ) -> dict[str, str]:
        return {"wallet_id": str(ledger.register_terminal(body.account, idempotency_key))}

    @app.post("/v1/wallets/{wallet}/fund", dependencies=Op)
    def fund(
        wallet: PathText,
        body: Amount,
        t: int = Depends(now),
        idempotency_key: IDEMPOTENCY_KEY = None,
    ) -> dict[str, str]:
        vid = None if idempotency_key is None else voucher_id(idempotency_key)
        return {"voucher": wire.b64(ledger.fund(WalletId.parse(wallet), body.amount, t, vid))}

    @app.post("/v1/wallets/{wallet}/lost", dependencies=Op)
    def report_lost(wallet: PathText, t: int = Depends(now)) -> dict[str, bool]:
        ledger.report_lost(WalletId.parse(wallet), t)
        return {"ok": True}

    @app.post("/v1/wallets/{wallet}/refund", dependencies=Op)
    def refund_lost(wallet: PathText, t: int = Depends(now)) -> dict[str, Any]:
        amount = ledger.refund_lost(WalletId.parse(wallet), t)
        return {"amount": amount, "currency": ledger.params.currency}

    @app.get("/v1/wallets/{wallet}/evidence", dependencies=Op)
    def evidence(wallet: PathText) -> list[dict[str, Any]]:
        return [
            {"counter": c, "messages": [wire.b64(m) for m in ms]}
            for c, ms in ledger.evidence(WalletId.parse(wallet))
        ]

    @app.post("/v1/release-torn", dependencies=Op)
    def release_torn(t: int = Depends(now)) -> dict[str, int]:
        return {"released": ledger.release_torn(t)}

    @app.get("/v1/audit", dependencies=Op)
    def audit() -> dict[str, Any]:
        return {**wire.audit(ledger.audit()), "currency": ledger.params.currency}

    @app.get("/v1/anomalies", dependencies=Op)
    def anomalies(wallet: Annotated[Text | None, Query()] = None) -> list[dict[str, Any]]:
        w = WalletId.parse(wallet) if wallet else None
        currency = ledger.params.currency
        return [{**wire.anomaly(a), "currency": currency} for a in ledger.anomalies(w)]

    return app
