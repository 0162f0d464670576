"""Idempotent operator requests: a retried issue, distribution, account opening, enrolment or
terminal registration takes effect once.

Theory of operation: the caller names a request with a key (over HTTP, the ``Idempotency-Key``
header of draft-ietf-httpapi-idempotency-key-header). Inside the operation's own transaction,
``once`` first inserts the key's row in ``idempotent_requests`` (``ON CONFLICT DO NOTHING``), then
does the work and stores its answer in that row. The row therefore exists exactly when the work
was done and committed: a retry, or a concurrent duplicate that waited for the first one's
commit, finds the row and returns the stored answer without doing the work again. If the work
fails, the transaction rolls back with the row, and a retry does it afresh. The same key sent with
another request (another operation or other arguments) is a ``Conflict``, never a silent replay.

Funding has its own key, the voucher id (``LedgerService.fund``); sync, unload, lost-device
reports and refunds are idempotent by what they carry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from offcash.encoding import cbor
from offcash.ledger import db
from offcash.ledger import schema as s
from offcash.ledger.errors import Conflict

#: Longest key accepted (the HTTP header is bounded the same way).
MAX_KEY_LENGTH = 255


def once(
    conn: Connection, key: str | None, request: list[object], work: Callable[[], bytes]
) -> bytes:
    """``work()``'s answer, done at most once per ``key`` (always, when ``key`` is None).

    ``request`` is the operation's name and arguments; a key already used for another request
    is a ``Conflict``."""
    if key is None:
        return work()
    if type(key) is not str or not 0 < len(key) <= MAX_KEY_LENGTH:
        raise Conflict(f"an idempotency key is 1 to {MAX_KEY_LENGTH} characters")
    t = s.idempotent_requests
    digest = hashlib.sha256(key.encode()).digest()
    asked = cbor.encode(request)
    claimed = conn.execute(
        db.insert(conn, t)
        .values(key=digest, request=asked)
        .on_conflict_do_nothing()
        .returning(t.c.key)
    ).first()
    if claimed is None:
        done = conn.execute(sa.select(t.c.request, t.c.result).where(t.c.key == digest)).one()
        if done.request != asked:
            raise Conflict("idempotency key already used for another request")
        return bytes(done.result)
    answer = work()
    conn.execute(sa.update(t).where(t.c.key == digest).values(result=answer))
    return answer
