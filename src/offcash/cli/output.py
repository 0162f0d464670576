"""How the CLI talks to people and scripts: rich tables on stdout, JSON, one-line errors.

Theory of operation: commands compute a plain ``dict`` result and hand it to ``emit``, which
prints it as JSON (``--json``) or lets the command render it for people with rich. Errors
never reach this module as tracebacks: ``main`` turns them into ``error`` on stderr: one line
``offcash: CODE: message``, or with ``--json`` anywhere on the command line a JSON object
``{"error": {"code": CODE, "message": message}}`` (``json_errors`` is set by ``main``).
Slow steps show a rich spinner on stderr (``progress``), on terminals only.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def emit(result: dict[str, Any], as_json: bool, render: Callable[[dict[str, Any]], None]) -> None:
    """Print ``result`` as JSON on stdout, or call ``render`` for people."""
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2, sort_keys=False) + "\n")
        sys.stdout.flush()
    else:
        render(result)


def log_entries(count: int) -> str:
    """``count`` log entries, in words: "1 log entry", "3 log entries"."""
    return f"{count} log entr{'y' if count == 1 else 'ies'}"


def utc_text(epoch: int) -> str:
    """Seconds since the epoch as people read them: ``2026-12-05 13:56:42Z``."""
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def say(text: str, *, stderr: bool = False) -> None:
    """Print one line of prose (rich markup allowed), never broken inside an amount: the
    terminal wraps long lines, rich does not insert line breaks."""
    (err_console if stderr else console).print(text, soft_wrap=True)


_PASSWORD = re.compile(r"(://[^:/@\s]*):[^@\s/]+@")

#: Errors as JSON objects on stderr (``--json`` was given); ``main`` sets it for each run.
json_errors = False


def error(code: str, message: str) -> None:
    """Print an error on stderr: ``offcash: CODE: message`` on one line (no markup
    interpretation), or ``{"error": {"code": ..., "message": ...}}`` when ``json_errors``."""
    text = _PASSWORD.sub(r"\1:***@", " ".join(message.split()))  # a URL's password, if any
    if json_errors:
        sys.stderr.write(json.dumps({"error": {"code": code, "message": text}}) + "\n")
    else:
        sys.stderr.write(f"offcash: {code}: {text}\n")
    sys.stderr.flush()


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> Table:
    """A rich table; right-justifies columns whose name says they hold amounts, and never cuts
    or wraps an id (``Wallet id``...: people copy it into ``--to``) on a narrow terminal."""
    t = Table(title=title, title_justify="left")
    for index, col in enumerate(columns):
        money = any(w in col.lower() for w in ("balance", "amount", "value", "position", "loss"))
        if col.lower().endswith(" id"):
            widest = max((len(str(row[index])) for row in rows), default=0)
            t.add_column(col, no_wrap=True, min_width=max(widest, len(col)))
        else:
            t.add_column(col, justify="right" if money else "left")
    for row in rows:
        t.add_row(*(str(c) for c in row))
    return t


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print a rich table on stdout."""
    console.print(table(title, columns, rows))


_busy = False


@contextmanager
def progress(text: str) -> Iterator[None]:
    """A spinner with ``text`` on stderr while something slow (settlement, HTTP, key
    generation) runs; shown only on a terminal, so ``--json`` output and pipes stay clean.
    Nested calls keep the outer spinner (rich allows one live display at a time)."""
    global _busy  # noqa: PLW0603
    if _busy:
        yield
        return
    _busy = True
    try:
        with err_console.status(text):
            yield
    finally:
        _busy = False
