"""Starting the HTTP service: ``serve(db_url, host, port, token, workers=N)`` (uvicorn).

Theory of operation: one worker serves the app built here, in this process. With ``workers``
above 1, uvicorn's supervisor starts that many processes (``spawn``) on one listening socket;
each rebuilds the app with ``worker_app``, from the settings this process put in its
environment (``OFFCASH_SERVE_*``, and the operator token), and opens its own connections to the
shared database. Every ledger operation is one database transaction that is safe against a
second process (docs/SETTLEMENT.md, Concurrency), so the workers need no other coordination;
on SQLite they queue for the one writer (``offcash.ledger.writer_lock``) instead of polling the
database lock, and each process's concurrent syncs share transactions
(``offcash.ledger.group``, see ``open_ledger``).
"""

from __future__ import annotations

import os
from typing import Any

import uvicorn
from fastapi import FastAPI

from offcash.api.app import create_app
from offcash.ledger.group import GroupCommit
from offcash.ledger.service import DEFAULT_CLAIM_WINDOW, LedgerService

_DB, _WINDOW, _TOKEN = "OFFCASH_SERVE_DB", "OFFCASH_SERVE_CLAIM_WINDOW", "OFFCASH_SERVE_TOKEN"


def open_ledger(db_url: str, claim_window: int = DEFAULT_CLAIM_WINDOW) -> LedgerService:
    """Open (and migrate) the ledger and load its CA and parameters now (the service reads
    them inside its own transactions, where a first, uncached read would open a second one).
    On SQLite, concurrent syncs share transactions (``offcash.ledger.group``): there is one
    writer at a time anyway. Not on PostgreSQL, which runs writers side by side: there each
    sync keeps its own transaction, which locks all its wallets at once in id order; units
    sharing a transaction would lock theirs one unit after the other, and two groups in two
    processes could then wait on each other in a cycle."""
    ledger = LedgerService.open(db_url, claim_window=claim_window)
    _ = ledger.authorities, ledger.params
    if ledger.engine.dialect.name == "sqlite":
        ledger.group = GroupCommit(ledger.engine)
    return ledger


def worker_app() -> FastAPI:
    """The app of one worker process, from the settings ``serve`` left in the environment."""
    ledger = open_ledger(os.environ[_DB], int(os.environ[_WINDOW]))
    return create_app(ledger, os.environ[_TOKEN])


def serve(
    db_url: str,
    host: str = "127.0.0.1",
    port: int = 8080,
    token: str = "",
    *,
    workers: int = 1,
    claim_window: int = DEFAULT_CLAIM_WINDOW,
    log_config: dict[str, Any] | None = None,
) -> None:
    """Open (and migrate) the ledger at ``db_url`` and serve its API with ``workers``
    processes until interrupted."""
    if not token:
        raise ValueError("an operator token is required")
    if workers < 1:
        raise ValueError("workers must be at least 1")
    ledger = open_ledger(db_url, claim_window)  # migrate once, before any worker starts
    kw: dict[str, Any] = {"host": host, "port": port}
    if log_config is not None:
        kw["log_config"] = log_config
    if workers == 1:
        uvicorn.run(create_app(ledger, token), **kw)
        return
    ledger.close()
    os.environ.update({_DB: db_url, _WINDOW: str(claim_window), _TOKEN: token})
    uvicorn.run(f"{__name__}:worker_app", factory=True, workers=workers, **kw)
