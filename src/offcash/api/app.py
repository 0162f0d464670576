"""The settlement HTTP API (FastAPI; OpenAPI at ``/openapi.json``, docs at ``/docs``).

Theory of operation: a thin adapter over ``LedgerService``. Signed messages travel as base64url
strings in JSON. Wallet calls (sync, unload, redeem, trust) need no credential: the SE-signed
report, unload request and payments are the authentication, and value only ever goes to the
accounts the ledger already associates with the signer or the terminal. Operator calls need
``Authorization: Bearer <token>``. Every error is an RFC 9457 problem document
(``application/problem+json``) whose ``type`` is ``https://offcash.dev/problems/<code>``, the
``code`` of the ``OffcashError`` raised; malformed input is a 400, never a 500. The clock is
read here (``clock``); tests and replays may let the caller set ``X-Offcash-Time``.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from offcash.api import wire
from offcash.domain.ids import WalletId
from offcash.errors import (
    DecodeError,
    InsufficientFunds,
    LimitExceeded,
    LocalError,
    OffcashError,
    RemoteError,
    ServiceUnavailable,
    VerificationError,
)
from offcash.ledger.errors import Conflict, NotFound, Unauthorized
from offcash.ledger.service import LedgerService, voucher_id_of

PROBLEM_BASE = "https://offcash.dev/problems/"
#: Integers the ledger stores (SQL BIGINT); larger ones are malformed input, not a server error.
BIGINT = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
#: The clock a caller may set: the range of a message's time field.
TIME = Annotated[int | None, Header(ge=0, le=2**40)]
#: ``Idempotency-Key`` (draft-ietf-httpapi-idempotency-key-header) on every operator call that
#: creates or moves something (issue, open account, distribute, enroll, register a terminal,
#: fund): a retry with the same key and request gets the first answer and takes effect once; the
#: same key with another request is 409.
IDEMPOTENCY_KEY = Annotated[str | None, Header(min_length=1, max_length=255)]


def voucher_id(idempotency_key: str) -> bytes:
    """The voucher id an ``Idempotency-Key`` names (``LedgerService.fund`` derives it)."""
    return voucher_id_of(idempotency_key)


def status_of(exc: OffcashError) -> int:
    """The HTTP status for an offcash error."""
    if isinstance(exc, Unauthorized):
        return 401
    if isinstance(exc, ServiceUnavailable):
        return 503
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, DecodeError):
        return 400
    if isinstance(exc, RemoteError):
        return 422
    if isinstance(exc, Conflict | LocalError):
        return 409
    return 400


def members_of(exc: OffcashError) -> dict[str, Any]:
    """The typed members of an error, for its problem document (RFC 9457 extension members),
    so a client raises the same error: a rejection's name, a limit and its bound..."""
    if isinstance(exc, VerificationError):
        return {"rejection": exc.rejection.name}
    if isinstance(exc, LimitExceeded):
        return {"limit": exc.limit.name, "value": exc.value, "bound": exc.bound}
    if isinstance(exc, InsufficientFunds):
        return {"balance": exc.balance, "amount": exc.amount}
    return {}


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
    members: Mapping[str, Any] | None = None,
) -> JSONResponse:
    """An RFC 9457 problem response."""
    return JSONResponse(
        {
            "type": PROBLEM_BASE + code,
            "title": title,
            "status": status,
            "detail": detail,
            "code": code,
            **(members or {}),
        },
        status_code=status,
        media_type="application/problem+json",
        headers=headers,
    )


class Problem(BaseModel):
    """An RFC 9457 problem document, as every error response carries."""

    type: str
    title: str
    status: int
    detail: str
    code: str


#: Every route may answer with a problem document; the OpenAPI document says so.
PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {
        "description": description,
        "content": {"application/problem+json": {"schema": Problem.model_json_schema()}},
    }
    for status, description in [
        (400, "Malformed input"),
        (401, "Operator call without a valid bearer token"),
        (404, "Unknown wallet, account, bank or route"),
        (409, "Refused by the ledger's state"),
        (422, "A signed message broke a rule"),
        (503, "The ledger database cannot be reached now; retry later"),
    ]
}


class Amount(BaseModel):
    amount: BIGINT


class NewAccount(BaseModel):
    bank: str
    holder: str


class NewWallet(BaseModel):
    csr: str
    account: str


class NewTerminal(BaseModel):
    account: str


class Upload(BaseModel):
    report: str
    entries: list[str]
    csr: str


class Unload(BaseModel):
    request: str


class Payments(BaseModel):
    payments: list[str]


def create_app(
    ledger: LedgerService,
    token: str,
    clock: Callable[[], int] = lambda: int(time.time()),
    accept_client_time: bool = False,
) -> FastAPI:
    """The FastAPI app serving ``ledger``; ``token`` guards the operator calls."""
    app = FastAPI(title="offcash settlement", version="1", responses=PROBLEMS)

    @app.exception_handler(OffcashError)
    async def _offcash(_: Request, exc: OffcashError) -> JSONResponse:
        return problem(
            status_of(exc), exc.code, type(exc).__name__, str(exc), members=members_of(exc)
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return problem(400, DecodeError.code, "DecodeError", str(exc.errors())[:2000])

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        code = {404: NotFound.code, 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        return problem(exc.status_code, code, "HTTPException", str(exc.detail), exc.headers)

    @app.exception_handler(Exception)
    async def _bug(_: Request, exc: Exception) -> JSONResponse:  # still a bug: the fuzz tests fail
        return problem(500, "internal-error", "InternalError", type(exc).__name__)

    def now(x_offcash_time: TIME = None) -> int:
        return x_offcash_time if accept_client_time and x_offcash_time is not None else clock()

    def operator(authorization: Annotated[str | None, Header()] = None) -> None:
        given = (authorization or "").removeprefix("Bearer ").encode()
        if not authorization or not hmac.compare_digest(given, token.encode()):
            raise Unauthorized("operator call without a valid bearer token")

    Op = [Depends(operator)]

    @app.get("/v1/network")
    def network() -> dict[str, Any]:
        """The network parameters and trust anchors a new wallet needs (no credential)."""
        return wire.network(ledger.network())

    @app.get("/v1/trust")
    def trust(wallet: str | None = None, t: int = Depends(now)) -> dict[str, Any]:
        return wire.trust(ledger.trust_material(WalletId.parse(wallet) if wallet else None, t))

    @app.post("/v1/sync")
    def sync(body: Upload, t: int = Depends(now)) -> dict[str, Any]:
        entries = [wire.unb64(e, f"entries[{i}]") for i, e in enumerate(body.entries)]
        result = ledger.sync(
            wire.unb64(body.report, "report"), entries, wire.unb64(body.csr, "csr"), t
        )
        return wire.sync_result(result)

    @app.post("/v1/unload")
    def unload(body: Unload, t: int = Depends(now)) -> dict[str, int]:
        return {"amount": ledger.unload(wire.unb64(body.request, "request"), t)}

    @app.post("/v1/terminals/{terminal}/redeem")
    def redeem(terminal: str, body: Payments, t: int = Depends(now)) -> dict[str, Any]:
        payments = (wire.unb64(p, f"payments[{i}]") for i, p in enumerate(body.payments))
        return wire.redeem(ledger.redeem(WalletId.parse(terminal), payments, t))

    @app.post("/v1/banks/{bank}/issue", dependencies=Op)
    def issue(
        bank: str, body: Amount, t: int = Depends(now), idempotency_key: IDEMPOTENCY_KEY = None
    ) -> dict[str, bool]:
        ledger.issue(bank, body.amount, t, idempotency_key)
        return {"ok": True}

    @app.post("/v1/accounts", dependencies=Op)
    def open_account(body: NewAccount, idempotency_key: IDEMPOTENCY_KEY = None) -> dict[str, str]:
        return {"account": ledger.open_account(body.bank, body.holder, idempotency_key)}

    @app.post("/v1/accounts/{account}/distribute", dependencies=Op)
    def distribute(
        account: str, body: Amount, t: int = Depends(now), idempotency_key: IDEMPOTENCY_KEY = None
    ) -> dict[str, bool]:
        ledger.distribute(account, body.amount, t, idempotency_key)
        return {"ok": True}

    @app.get("/v1/accounts/{account}", dependencies=Op)
    def balance(account: str) -> dict[str, int]:
        return {"balance": ledger.balance(account)}

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
        wallet: str, body: Amount, t: int = Depends(now), idempotency_key: IDEMPOTENCY_KEY = None
    ) -> dict[str, str]:
        voucher = ledger.fund(WalletId.parse(wallet), body.amount, t, idempotency_key)
        return {"voucher": wire.b64(voucher)}

    @app.post("/v1/wallets/{wallet}/lost", dependencies=Op)
    def report_lost(wallet: str, t: int = Depends(now)) -> dict[str, bool]:
        ledger.report_lost(WalletId.parse(wallet), t)
        return {"ok": True}

    @app.post("/v1/wallets/{wallet}/refund", dependencies=Op)
    def refund_lost(wallet: str, t: int = Depends(now)) -> dict[str, int]:
        return {"amount": ledger.refund_lost(WalletId.parse(wallet), t)}

    @app.get("/v1/wallets/{wallet}/evidence", dependencies=Op)
    def evidence(wallet: str) -> list[dict[str, Any]]:
        return [
            {"counter": c, "messages": [wire.b64(m) for m in ms]}
            for c, ms in ledger.evidence(WalletId.parse(wallet))
        ]

    @app.post("/v1/release-torn", dependencies=Op)
    def release_torn(t: int = Depends(now)) -> dict[str, int]:
        return {"released": ledger.release_torn(t)}

    @app.get("/v1/audit", dependencies=Op)
    def audit() -> dict[str, Any]:
        return wire.audit(ledger.audit())

    @app.get("/v1/anomalies", dependencies=Op)
    def anomalies(wallet: str | None = None) -> list[dict[str, Any]]:
        w = WalletId.parse(wallet) if wallet else None
        return [wire.anomaly(a) for a in ledger.anomalies(w)]

    return app
