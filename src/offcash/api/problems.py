"""RFC 9457 problem documents: every error the settlement API answers is one.

Theory of operation: a problem has a ``type`` URI (``https://offcash.dev/problems/<code>``, the
``code`` of the ``OffcashError`` or of the HTTP-level refusal), a human ``title`` that is the
same for every problem of that type (the code's title below, else the status's reason phrase:
never a Python class name), the ``status``, a ``detail`` about this occurrence, the ``code`` and,
for input that failed validation, ``errors``: one ``{pointer, message}`` per failed field, where
``pointer`` is an RFC 6901 JSON pointer into the request (``/body/entries/3``,
``/path/bank``, ``/query/wallet``, ``/header/idempotency-key``). The exception handlers that
build them are installed by ``install``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

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

PROBLEM_BASE = "https://offcash.dev/problems/"
MEDIA_TYPE = "application/problem+json"

#: The title of each problem type (by code); other codes take the status's reason phrase.
TITLES: dict[str, str] = {
    "decode-error": "Malformed input",
    "verification-failed": "Signed message refused",
    "remote-error": "Input refused",
    "incomplete-log": "Incomplete wallet log",
    "local-error": "Refused",
    "limit-exceeded": "Limit exceeded",
    "insufficient-funds": "Insufficient funds",
    "invalid-money": "Invalid amount",
    "ledger-error": "Refused by the ledger",
    "not-found": "Not found",
    "insufficient-balance": "Insufficient balance",
    "limit-reached": "Limit reached",
    "wallet-revoked": "Wallet revoked",
    "claim-not-ready": "Claim window still open",
    "unauthorized": "Operator credential required",
    "conflict": "Conflict with the ledger's state",
    "method-not-allowed": "Method not allowed",
    "body-too-large": "Request body too large",
    "not-ready": "Service not ready",
    "service-unavailable": "Ledger database unreachable",
    "internal-error": "Internal server error",
}


class FieldError(BaseModel):
    """One input field that failed validation."""

    pointer: str
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem document, as every error response carries."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[FieldError] | None = None


def title_of(code: str, status: int) -> str:
    """The human title of a problem type (its code's, else the status's reason phrase)."""
    if code in TITLES:
        return TITLES[code]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem(
    status: int,
    code: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
    errors: Sequence[FieldError] | None = None,
    members: Mapping[str, Any] | None = None,
) -> JSONResponse:
    """An RFC 9457 problem response (``members``: extension members, see ``members_of``)."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + code,
        "title": title_of(code, status),
        "status": status,
        "detail": detail,
        "code": code,
        **(members or {}),
    }
    if errors is not None:
        body["errors"] = [e.model_dump() for e in errors]
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


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


#: The WWW-Authenticate challenge of a 401 (RFC 6750).
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="offcash operator"'}


def _pointer(loc: Iterable[Any]) -> str:
    """An RFC 6901 pointer from a pydantic error location (``("body", "entries", 3)``)."""
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in loc]
    return "/" + "/".join(parts)


def field_errors(exc: RequestValidationError, limit: int = 20) -> list[FieldError]:
    """The first ``limit`` validation failures as ``{pointer, message}`` (no input echoed)."""
    return [
        FieldError(pointer=_pointer(e.get("loc", ())), message=str(e.get("msg", "invalid")))
        for e in exc.errors()[:limit]
    ]


def install(app: FastAPI) -> None:
    """Make every error ``app`` answers a problem document."""

    @app.exception_handler(OffcashError)
    async def _offcash(_: Request, exc: OffcashError) -> JSONResponse:
        status = status_of(exc)
        challenge = CHALLENGE if status == 401 else None
        return problem(status, exc.code, str(exc), challenge, members=members_of(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = field_errors(exc)
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            return problem(400, DecodeError.code, "the body is not valid JSON", errors=errors)
        detail = "; ".join(f"{e.pointer}: {e.message}" for e in errors)[:1000]
        return problem(422, DecodeError.code, detail, errors=errors)

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        code = {
            401: Unauthorized.code,
            404: NotFound.code,
            405: "method-not-allowed",
            413: "body-too-large",
        }.get(exc.status_code, "http-error")
        return problem(exc.status_code, code, str(exc.detail), exc.headers)

    @app.exception_handler(Exception)
    async def _bug(_: Request, exc: Exception) -> JSONResponse:  # still a bug: the fuzz tests fail
        return problem(500, "internal-error", "an internal error; it was logged")
