"""``python -m offcash.api [--db URL] [--host H] [--port P] [--workers N]``: run the settlement
service.

The operator token is read from ``OFFCASH_TOKEN`` (required)."""

from __future__ import annotations

import argparse
import os

from offcash.api.server import serve


def main() -> None:
    """Parse the command line and serve."""
    p = argparse.ArgumentParser(prog="python -m offcash.api")
    p.add_argument("--db", default="offcash-ledger.db", help="SQLite path or PostgreSQL URL")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--workers", type=int, default=1, help="server processes sharing the ledger")
    a = p.parse_args()
    serve(a.db, a.host, a.port, os.environ["OFFCASH_TOKEN"], workers=a.workers)


if __name__ == "__main__":
    main()
