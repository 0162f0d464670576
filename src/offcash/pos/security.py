"""Who may talk to the till: this machine's page only (Host, Origin and a CSRF token).

Theory of operation: ``offcash pos`` binds 127.0.0.1 by default, but a page of any web site
the till's browser visits can still send requests to 127.0.0.1, and DNS rebinding can make
such a page same-origin with a name the attacker controls. So every request is checked here
before any route runs:

1. ``Host`` must be one this server was started for (``127.0.0.1:PORT``, ``localhost:PORT``,
   ``[::1]:PORT``, or the ``--host`` given): a rebound name is refused (421).
2. A request that changes something (any method but GET/HEAD/OPTIONS) must carry an
   ``Origin`` naming one of those hosts over http, and must not be marked cross-site by the
   browser (``Sec-Fetch-Site``); reads of the API refuse a foreign ``Origin`` too (403).
3. It must also carry ``X-CSRF-Token`` equal to the random token of this process, which is
   written only into the page this server serves (a page of another origin cannot read it).

No CORS header is ever sent, so browsers give other origins no access to the answers. The
responses carry a strict Content-Security-Policy: scripts, styles and images from this server
only (WebAssembly compilation allowed for the QR decoder), no framing, no referrer.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Iterable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "x-csrf-token"
CSP = (
    "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; "
    "img-src 'self' data: blob:; media-src 'self' blob: mediastream:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=()",
}


def allowed_hosts(host: str, port: int) -> frozenset[str]:
    """The ``Host`` values a server bound to ``host:port`` answers."""
    names = {"127.0.0.1", "localhost", "[::1]", f"[{host}]" if ":" in host else host}
    return frozenset(f"{name}:{port}" for name in names)


def _refuse(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"accepted": False, "code": code, "rejection": None, "message": message},
        status_code=status,
        headers=HEADERS,
    )


class Guard:
    """The checks above, as a Starlette HTTP middleware (``app.middleware("http")(guard)``)."""

    def __init__(self, hosts: Iterable[str], token: str) -> None:
        self.hosts = frozenset(h.lower() for h in hosts)
        self.origins = frozenset(f"http://{h}" for h in self.hosts)
        self.token = token

    def check(self, request: Request) -> JSONResponse | None:
        """A refusal for ``request``, or ``None`` if it may go on."""
        host = request.headers.get("host", "").lower()
        if host not in self.hosts:
            return _refuse(421, "pos-bad-host", f"this till answers only {sorted(self.hosts)}")
        origin = request.headers.get("origin")
        site = request.headers.get("sec-fetch-site")
        api = request.url.path.startswith("/api/")
        if request.method in SAFE_METHODS:
            if api and origin is not None and origin.lower() not in self.origins:
                return _refuse(403, "pos-bad-origin", f"requests from {origin} are refused")
            return None
        if origin is None:
            return _refuse(403, "pos-bad-origin", "a request without an Origin is refused")
        if origin.lower() not in self.origins:
            return _refuse(403, "pos-bad-origin", f"requests from {origin} are refused")
        if site is not None and site not in ("same-origin", "none"):
            return _refuse(403, "pos-bad-origin", f"a {site} request is refused")
        given = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return _refuse(403, "pos-csrf", "missing or wrong CSRF token: reload the page")
        return None

    async def __call__(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        """Refuse or run the request; add the security headers to every answer."""
        refused = self.check(request)
        if refused is not None:
            return refused
        response = await call_next(request)
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if request.url.path.startswith("/api/") or request.url.path == "/":
            response.headers["Cache-Control"] = "no-store"
        return response
