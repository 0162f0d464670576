"""Migration 0005_hot_indexes adds indexes only, and goes both ways on both backends: a ledger at
0004 with spends in it upgrades (the rows stay), downgrades back to 0004's indexes (the partial
``ix_spends_payee_torn`` on ``payee`` alone again) and upgrades once more."""

from __future__ import annotations

import sqlalchemy as sa
from ledgerkit import migrate

from offcash.ledger import db

NEW = {
    "ix_spends_state_time",
    "ix_conflicts_state_time",
    "ix_conflicts_payee_torn",
    "ix_revocations_wallet",
}


def _indexes(engine: sa.Engine) -> dict[str, list[str]]:
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        return {
            str(ix["name"]): [str(c) for c in ix["column_names"]]
            for table in ("spends", "conflicts", "revocations")
            for ix in inspector.get_indexes(table)
        }


def test_hot_indexes_up_down_up(db_target: tuple[str, str | None]) -> None:
    url, schema = db_target
    engine = db.open_engine(url, schema, migrate=False)
    try:
        migrate(engine, "0004_digests")
        row = {
            "payer": b"p" * 12,
            "counter": 1,
            "digest": b"d" * 32,
            "kind": "payment",
            "payee": b"q" * 12,
            "amount": 100,
            "time": 5,
            "state": "suspense",
            "message": b"",
            "settled_at": 5,
        }
        with engine.begin() as conn:
            conn.execute(sa.insert(sa.table("spends", *map(sa.column, row))), [row])
        assert _indexes(engine)["ix_spends_payee_torn"] == ["payee"]
        assert not NEW & set(_indexes(engine))

        migrate(engine, "0005_hot_indexes")
        up = _indexes(engine)
        assert set(up) >= NEW
        assert up["ix_spends_state_time"] == ["state", "time"]
        assert up["ix_spends_payee_torn"] == ["payee", "state"]
        with engine.connect() as conn:
            assert conn.execute(sa.text("select count(*) from spends")).scalar() == 1

        migrate(engine, "0004_digests", down=True)
        down = _indexes(engine)
        assert not NEW & set(down)
        assert down["ix_spends_payee_torn"] == ["payee"]

        migrate(engine, "0005_hot_indexes")
        assert set(_indexes(engine)) >= NEW
    finally:
        engine.dispose()
