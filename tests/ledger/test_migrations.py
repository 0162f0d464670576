"""The Alembic migrations build exactly the schema of ``offcash.ledger.schema`` on both backends:
``alembic upgrade head`` on an empty database, then autogenerate's comparison with the metadata
(tables, columns and their types, nullability, server defaults, primary keys, foreign keys,
indexes) finds nothing to change."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from offcash.ledger import db
from offcash.ledger.schema import metadata


def _unquoted(default: str | None) -> str | None:
    if default is None:
        return None
    text = default.strip()
    while text.startswith("(") and text.endswith(")"):
        text = text[1:-1].strip()
    return text.strip("'")


def _default_differs(
    context: MigrationContext,
    inspected_column: Any,
    metadata_column: Any,
    inspected_default: str | None,
    metadata_default: Any,
    rendered_metadata_default: str | None,
) -> bool | None:
    """Alembic's own comparison, except on SQLite, where it misreads an empty-string default
    (reflected as ``('')``, rendered as an empty string): compare the literals unquoted."""
    if context.dialect.name != "sqlite":
        return None
    return _unquoted(inspected_default) != _unquoted(rendered_metadata_default)


def _diffs(engine: sa.Engine) -> list[Any]:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": _default_differs}
        )
        return list(compare_metadata(context, metadata))


def test_upgrade_head_yields_the_metadata(db_target: tuple[str, str | None]) -> None:
    url, schema = db_target
    engine = db.open_engine(url, schema, migrate=False)
    try:
        with engine.connect() as conn:
            assert sa.inspect(conn).get_table_names() == []  # empty to begin with
        db.upgrade(engine)
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            version = conn.execute(sa.text("select version_num from alembic_version")).scalar()
        assert tables == set(metadata.tables) | {"alembic_version"}
        assert version == "0006_certified_keys"
        assert _diffs(engine) == []
        db.upgrade(engine)  # idempotent: already at the head
        assert _diffs(engine) == []
    finally:
        engine.dispose()


def test_the_comparison_sees_a_difference(db_target: tuple[str, str | None]) -> None:
    """The check above is not vacuous: a migrated database missing an index is reported."""
    url, schema = db_target
    engine = db.open_engine(url, schema)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP INDEX ix_anomalies_wallet"))
        assert [d[0] for d in _diffs(engine)] == ["add_index"]
    finally:
        engine.dispose()
