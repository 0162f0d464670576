"""placeholder"""

from __future__ import annotations


def serve() -> None:
    """Run the HTTP API."""
