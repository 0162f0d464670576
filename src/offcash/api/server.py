"""Starting the HTTP service: ``serve(db_url, host, port, token)`` (uvicorn)."""

from __future__ import annotations

import uvicorn

from offcash.api.app import create_app
from offcash.ledger.service import LedgerService


def serve(db_url: str, host: str = "127.0.0.1", port: int = 8080, token: str = "") -> None:
    """Open (and migrate) the ledger at ``db_url`` and serve its API until interrupted."""
    if not token:
        raise ValueError("an operator token is required")
    uvicorn.run(create_app(LedgerService.open(db_url), token), host=host, port=port)
