"""Atomic file writes shared by the QR and file transports.

Theory of operation: a message file is either absent, or complete with the old content, or
complete with the new content; never half written. The bytes go to a temporary file in the
destination directory (same file system, so the rename is atomic), are flushed and fsync'ed,
then ``os.replace`` puts the file in place. The temporary file is created with mode 0600 by
``tempfile.mkstemp`` and keeps it: a message names payer and payee, so it is not world-readable.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def atomic_write(path: str | os.PathLike[str], content: bytes) -> None:
    """Write ``content`` to ``path`` atomically; ``OSError`` propagates (a local failure)."""
    target = Path(path)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
