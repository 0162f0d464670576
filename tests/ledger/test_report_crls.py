"""An SE states in its signed sync report which CRLs it holds (``SyncReport.crls``); the ledger
records that as the SE's own proof (issue 9, item 3), never an unauthenticated claim."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from ledgerkit import World

from offcash.encoding import cbor, cose
from offcash.encoding.cose import Kind
from offcash.errors import DecodeError
from offcash.ledger import schema as s
from offcash.protocol import messages as m

from factories import make_signer
from harness import T0, PilotNetwork


def test_the_report_states_the_crls_the_se_holds(world: World) -> None:
    se, wid, _ = world.wallet(5_000)
    assert m.parse_report(se.sync_upload(T0 + 1).report).crls == []
    world.ledger.report_lost(wid, T0 + 2)  # Bank A's CRL 1
    dave, _, _ = world.wallet(0, "Bank B", now=T0 + 3)  # enrolled with it
    assert m.parse_report(dave.sync_upload(T0 + 4).report).crls == [("Bank A", 1)]


def test_the_ledger_records_what_the_se_states_it_holds(world: World) -> None:
    _, wid, _ = world.wallet(5_000)
    dave, d_id, _ = world.wallet(0, "Bank B")  # enrolled before the revocation
    world.ledger.report_lost(wid, T0 + 2)  # Bank A's CRL 1
    assert world.sync(dave, T0 + 3).ack is not None  # the answer carries CRL 1 (pending)
    d = s.crl_deliveries
    with world.ledger.engine.begin() as conn:  # forget the answer: only his report tells
        conn.execute(sa.delete(d).where(d.c.wallet == d_id.raw))
    world.sync(dave, T0 + 10)  # his signed report states CRL 1
    with world.ledger.engine.begin() as conn:
        rows = conn.execute(
            sa.select(d.c.bank, d.c.crl_number, d.c.delivered_at, d.c.pending_seq).where(
                d.c.wallet == d_id.raw, d.c.pending_seq.is_(None)
            )
        ).all()
    assert [tuple(r) for r in rows] == [("Bank A", 1, T0 + 10, None)]


def test_a_malformed_crl_statement_is_a_decode_error(p256: PilotNetwork) -> None:
    signer = make_signer(p256)
    for bad in ([["Bank A", -1]], [["x" * 65, 1]], [["Bank A"]], [["Bank A", 1]] * 65):
        payload = cbor.encode({1: 0, 2: 1, 3: 1, 4: "EUR", 5: 0, 6: bytes(32), 7: T0, 8: bad})
        with pytest.raises(DecodeError):
            m.parse_report(cose.sign1(Kind.SYNC_REPORT, payload, signer.key, signer.cert))
    with pytest.raises(ValueError):  # and no SE signs one
        signer.report(crls=[("Bank A", -1)])
