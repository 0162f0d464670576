"""Migration 0004_digests renames stored spends by their signed content (issue 9, finding 1): a
ledger that settled a payment before the upgrade recognises the payer's copy uploaded after it
as the same spend, on both backends."""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from ledgerkit import migrate

from offcash.ledger import db
from offcash.protocol import messages as m

from factories import make_signer, malleated
from harness import T0, PilotNetwork


def _row(payer: bytes, counter: int, digest: bytes, message: bytes) -> dict[str, object]:
    return {
        "payer": payer,
        "counter": counter,
        "digest": digest,
        "kind": "payment",
        "payee": bytes(12),
        "amount": 100,
        "time": T0,
        "state": "held",
        "message": message,
        "settled_at": T0,
    }


def test_stored_spends_are_renamed_by_their_signed_content(
    db_target: tuple[str, str | None], p256: PilotNetwork
) -> None:
    url, schema = db_target
    engine = db.open_engine(url, schema, migrate=False)
    try:
        migrate(engine, "0003")
        signer = make_signer(p256)
        payee = make_signer(p256).wallet_id
        pay = signer.payment(payee)
        other = signer.payment(payee, counter=2)
        twin = malleated(other)
        payer = signer.wallet_id.raw
        legacy = [hashlib.sha256(x).digest() for x in (pay, other, twin)]
        spends = sa.table("spends", *(sa.column(c) for c in _row(b"", 0, b"", b"")))
        conflicts = sa.table("conflicts", *(sa.column(c) for c in _row(b"", 0, b"", b"")))
        with engine.begin() as conn:
            conn.execute(sa.insert(spends), [_row(payer, 1, legacy[0], pay)])
            conn.execute(
                sa.insert(conflicts),
                [
                    _row(payer, 2, legacy[1], other),
                    _row(payer, 2, legacy[2], twin),  # a twin flagged before the upgrade
                    _row(payer, 3, b"\x01" * 32, b""),  # no message: left as it is
                ],
            )
        migrate(engine, "head")
        with engine.connect() as conn:
            assert conn.execute(sa.select(spends.c.digest)).scalars().all() == [m.digest(pay)]
            got = conn.execute(
                sa.select(conflicts.c.counter, conflicts.c.digest).order_by(conflicts.c.counter)
            ).all()
        assert [(c, bytes(d)) for c, d in got] == [(2, m.digest(other)), (3, b"\x01" * 32)]
    finally:
        engine.dispose()
