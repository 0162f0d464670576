"""Migration 0006_certified_keys adds two nullable columns to ``certificates`` and goes both ways
on both backends: a ledger at 0005 with a certificate row upgrades (the row stays, its key
unknown: NULL in both columns, and not counted as a certified key), downgrades back to 0005's
columns (the row stays) and upgrades once more."""

from __future__ import annotations

import sqlalchemy as sa
from ledgerkit import migrate

from offcash.crypto.algorithms import SignatureAlgorithm
from offcash.domain.ids import WalletId
from offcash.ledger import authority, db

NEW = {"spki_digest", "algorithm"}
WALLET = WalletId(b"w" * 12)


def _columns(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return {str(c["name"]) for c in sa.inspect(conn).get_columns("certificates")}


def _rows(engine: sa.Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text("select * from certificates")).all()]


def test_certified_keys_up_down_up(db_target: tuple[str, str | None]) -> None:
    url, schema = db_target
    engine = db.open_engine(url, schema, migrate=False)
    try:
        migrate(engine, "0005_hot_indexes")
        row = {"wallet": WALLET.raw, "serial": 7, "bank": "Bank A", "not_after": 100}
        with engine.begin() as conn:
            conn.execute(sa.insert(sa.table("certificates", *map(sa.column, row))), [row])
        assert not NEW & _columns(engine)

        migrate(engine, "0006_certified_keys")
        assert _columns(engine) >= NEW
        with engine.connect() as conn:
            [(digest, alg)] = conn.execute(
                sa.text("select spki_digest, algorithm from certificates")
            ).all()
            assert (digest, alg) == (None, None)  # issued before: its key is unknown
            for algorithm in SignatureAlgorithm:
                assert authority.certified_keys(conn, WALLET, algorithm) == frozenset()

        migrate(engine, "0005_hot_indexes", down=True)
        assert not NEW & _columns(engine)
        assert [r[:4] for r in _rows(engine)] == [(WALLET.raw, 7, "Bank A", 100)]

        migrate(engine, "0006_certified_keys")
        assert _columns(engine) >= NEW and len(_rows(engine)) == 1
    finally:
        engine.dispose()
