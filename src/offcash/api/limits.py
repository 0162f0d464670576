"""Bounds on what one request may carry: body bytes per route, items per list, text per field.

Theory of operation: a request body is read by the service only through ``BodyLimit``, an ASGI
middleware that knows each route's limit (by its template, ``ROUTE_LIMITS``, else
``DEFAULT_BODY_BYTES``). A declared ``Content-Length`` over the limit is refused before one byte
is read; a body streamed without one is counted as it arrives and refused as soon as it passes
the limit, so the service never holds more than a route's limit of any body. Both answer 413
with a problem document. The limits derive from the protocol's own bounds:

- a signed message (COSE_Sign1) is at most ``MAX_SIGNED_BYTES``: the certificate in its header
  (``x5chain``, at most 16 KiB), the signature (at most 8 KiB) and 2 KiB for the payload, the
  protected header and the CBOR framing (a payment's longest payload, with a 140-character
  reference and a 64-character payee name, is under 1 KiB);
- a log entry adds its type, time and amount (``MAX_ENTRY_BYTES``), and a sync carries at most
  ``MAX_LOG_ENTRIES`` (1024, the SE's log capacity) of them plus its report and CSR, each as
  base64url text (4/3 of the bytes): about 36 MB, the largest body of the API;
- a redemption carries at most ``MAX_REDEEM_PAYMENTS`` payments (a terminal with more sends
  several batches): about 9 MB;
- every other route carries at most one signed message or a few names: 64 KiB.

The counts and text lengths are also checked field by field (``Upload``, ``Payments`` in
``offcash.api.app``), so a body within its byte limit cannot hold more items than the ledger
takes in one call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from starlette.exceptions import HTTPException
from starlette.routing import Match, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from offcash.api.problems import problem
from offcash.se.state import MAX_LOG_ENTRIES

#: Upper bounds the COSE decoder puts on a signed message's certificate and signature.
MAX_CERTIFICATE_BYTES: Final = 16 * 1024
MAX_SIGNATURE_BYTES: Final = 8 * 1024
#: The largest signed message a wallet or terminal can produce.
MAX_SIGNED_BYTES: Final = MAX_CERTIFICATE_BYTES + MAX_SIGNATURE_BYTES + 2 * 1024
#: The largest log entry: ``[type, time, amount, message]``.
MAX_ENTRY_BYTES: Final = MAX_SIGNED_BYTES + 32
#: Payments in one redemption.
MAX_REDEEM_PAYMENTS: Final = 256
#: Every text field of a JSON body (names, ids).
MAX_NAME_CHARS: Final = 200
#: The JSON framing of a list item (quotes, comma).
_ITEM_OVERHEAD: Final = 4


def b64_chars(n: int) -> int:
    """The length of unpadded base64url text for ``n`` bytes."""
    return -(-n * 4 // 3)


MAX_SIGNED_B64: Final = b64_chars(MAX_SIGNED_BYTES)
MAX_ENTRY_B64: Final = b64_chars(MAX_ENTRY_BYTES)
DEFAULT_BODY_BYTES: Final = 64 * 1024
SYNC_BODY_BYTES: Final = (
    MAX_LOG_ENTRIES * (MAX_ENTRY_B64 + _ITEM_OVERHEAD) + 2 * MAX_SIGNED_B64 + 1024
)
REDEEM_BODY_BYTES: Final = MAX_REDEEM_PAYMENTS * (MAX_SIGNED_B64 + _ITEM_OVERHEAD) + 1024
#: The limit of each route that takes more than ``DEFAULT_BODY_BYTES``, by route template.
ROUTE_LIMITS: Final[Mapping[str, int]] = {
    "/v1/sync": SYNC_BODY_BYTES,
    "/v1/terminals/{terminal}/redeem": REDEEM_BODY_BYTES,
}


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimit:
    """ASGI middleware refusing (413) a body over its route's limit, while it streams."""

    def __init__(self, app: ASGIApp, router: Router) -> None:
        self.app, self.router = app, router

    def limit_for(self, scope: Scope) -> int:
        """The body limit of the route ``scope`` is for (by its template); the route is noted
        in ``scope`` as the router would, for the latency metric of a refused request."""
        for route in self.router.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                scope.setdefault("route", route)
                return ROUTE_LIMITS.get(getattr(route, "path", ""), DEFAULT_BODY_BYTES)
        return DEFAULT_BODY_BYTES

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            response = problem(413, "body-too-large", _too_large(limit), {"Connection": "close"})
            await response(scope, receive, send)
            return
        received = 0

        async def bounded() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, _too_large(limit), {"Connection": "close"})
            return message

        await self.app(scope, bounded, send)


def _too_large(limit: int) -> str:
    return f"the body of this route is limited to {limit} bytes"
