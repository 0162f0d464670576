"""The point-of-sale web app: the page, its assets, and a small JSON API over a ``Till``.

Theory of operation: a FastAPI app serving ``static/index.html`` (with this process's CSRF
token written in), the page's script and styles and the vendored QR decoder from the package,
and the API the page calls. Every route is a thin adapter over ``offcash.pos.till.Till``: the
page never holds a key and never decides whether a payment is valid. ``Guard``
(``offcash.pos.security``) runs before every route. A refusal (any ``OffcashError``: a payment
that does not verify, an unreadable QR code, a bad amount, a ledger that cannot be reached) is
a 422 whose JSON carries the CLI's code and one-line message; anything else is a 500 that says
"internal error" without a trace. Request bodies are size-limited before they are read whole.

Routes: ``GET /`` the page; ``GET /api/info``; ``POST /api/request`` {amount, reference};
``POST /api/receive`` (the body is the payment: an image, text or raw bytes);
``POST /api/scan`` {codes: [base64 of each QR code the camera saw]}; ``GET /api/history``;
``POST /api/sync``.
"""

from __future__ import annotations

import base64
import binascii
import html
import logging
import secrets
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from offcash.errors import DecodeError, OffcashError
from offcash.pos import scan
from offcash.pos.security import Guard
from offcash.pos.till import MAX_UPLOAD, Till, refusal

log = logging.getLogger("offcash.pos")
STATIC = Path(str(resources.files("offcash.pos") / "static"))


class SaleRequest(BaseModel):
    """The amount (decimal text, parsed exactly by the server) and an optional reference."""

    amount: str = Field(max_length=32)
    reference: str | None = Field(default=None, max_length=140)


class Scan(BaseModel):
    """The raw content (base64) of every distinct QR code the camera has seen."""

    codes: list[Annotated[str, Field(max_length=4 * scan.MAX_CODE_BYTES // 3 + 4)]] = Field(
        max_length=scan.MAX_CODES
    )


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"accepted": False, "code": code, "rejection": None, "message": message},
        status_code=status,
    )


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refused (typed) beyond ``limit`` bytes without reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise DecodeError("body", f"larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise DecodeError("body", f"larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(till: Till, hosts: frozenset[str], token: str | None = None) -> FastAPI:
    """The app serving ``till`` to the hosts ``hosts`` (``security.allowed_hosts``)."""
    token = token or secrets.token_urlsafe(32)
    app = FastAPI(title="offcash point of sale", docs_url=None, redoc_url=None, openapi_url=None)
    app.middleware("http")(Guard(hosts, token))
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    page = page.replace("{{csrf}}", html.escape(token)).replace("{{till}}", html.escape(till.name))

    @app.exception_handler(OffcashError)
    async def _refused(_: Request, exc: OffcashError) -> JSONResponse:
        return JSONResponse(refusal(till.net, exc), status_code=422)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        where = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors()
        )
        return _error(400, DecodeError.code, f"{DecodeError.code}: {where}"[:500])

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, "http-error", str(exc.detail))

    @app.exception_handler(Exception)
    async def _bug(_: Request, exc: Exception) -> JSONResponse:
        log.error("internal error", exc_info=exc)  # the trace goes to the server's log only
        return _error(500, "internal-error", f"internal error ({type(exc).__name__})")

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/api/info")
    def info() -> dict[str, Any]:
        return till.info()

    @app.post("/api/request")
    def request(body: SaleRequest) -> dict[str, Any]:
        return till.request(body.amount, body.reference)

    @app.post("/api/receive")
    async def receive(request: Request) -> dict[str, Any]:
        content = await _body(request, MAX_UPLOAD)
        return await _in_thread(till.receive, content)

    @app.post("/api/scan")
    async def scanned(body: Scan) -> dict[str, Any]:
        try:
            codes = [base64.b64decode(c, validate=True) for c in body.codes]
        except (binascii.Error, ValueError):
            raise DecodeError("codes", "not base64") from None
        got = scan.assemble(codes)
        if isinstance(got, scan.Progress):
            return {"scanning": True, "seen": got.seen, "total": got.total}
        return await _in_thread(till.receive_message, got)

    @app.get("/api/history")
    def history() -> dict[str, Any]:
        return till.history()

    @app.post("/api/sync")
    def sync() -> dict[str, Any]:
        return till.sync()

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


async def _in_thread(fn: Callable[[bytes], dict[str, Any]], arg: bytes) -> dict[str, Any]:
    """Run the blocking ``fn(arg)`` (signatures, file writes) off the event loop."""
    from starlette.concurrency import run_in_threadpool

    result: dict[str, Any] = await run_in_threadpool(fn, arg)
    return result
