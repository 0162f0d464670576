"""``python -m offcash.api [--db URL] [--host H] [--port P]``: run the settlement service.

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
    a = p.parse_args()
    serve(a.db, a.host, a.port, os.environ["OFFCASH_TOKEN"])


if __name__ == "__main__":
    main()
