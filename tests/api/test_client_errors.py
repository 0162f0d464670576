"""The client against a server that answers what the API does not promise (a real HTTP server
on a loopback port, not the offcash app): every such answer is an offcash error, never a
``KeyError`` or an httpx exception."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from offcash.api import Client
from offcash.domain.ids import WalletId
from offcash.errors import OffcashError, Rejection, RemoteError, VerificationError


class _Odd(BaseHTTPRequestHandler):
    """Answers by path: a JSON object missing every member, text that is not JSON, or a
    problem document with a typed error's members."""

    def _answer(self) -> None:
        if self.path.startswith("/v1/network"):
            status, body, kind = 200, b"not json at all", "text/plain"
        elif self.path.startswith("/v1/unload"):
            problem = {
                "type": "https://offcash.dev/problems/verification-failed",
                "title": "VerificationError",
                "status": 422,
                "detail": f"{Rejection.REPLAYED.value}: counter 7",
                "code": "verification-failed",
                "rejection": "REPLAYED",
            }
            status, body, kind = 422, json.dumps(problem).encode(), "application/problem+json"
        else:
            status, body, kind = 200, b'{"unexpected": [1]}', "application/json"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def odd_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Odd)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_unexpected_answers_are_remote_errors(odd_server: str) -> None:
    with Client(odd_server, "token") as client:
        calls = [
            client.network,
            lambda: client.balance("c-1"),
            client.audit,
            lambda: client.fund(WalletId.random(), 100, 0),
            lambda: client.sync(b"report", [], b"csr", 0),
            lambda: client.evidence(WalletId.random()),
        ]
        for call in calls:
            with pytest.raises(RemoteError):
                call()


def test_a_problem_document_is_the_typed_error_with_its_members(odd_server: str) -> None:
    with Client(odd_server) as client, pytest.raises(VerificationError) as refused:
        client.unload(b"request", 0)
    assert refused.value.rejection is Rejection.REPLAYED
    assert refused.value.detail == "counter 7"
    assert isinstance(refused.value, OffcashError)
