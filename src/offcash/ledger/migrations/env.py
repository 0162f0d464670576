"""Alembic environment: runs on the connection ``offcash.ledger.db.upgrade`` passes in, or on
``sqlalchemy.url`` from the command line (``alembic -x url=...``)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from offcash.ledger.schema import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    engine = sa.create_engine(str(url))
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=metadata)
        context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=metadata)
    context.run_migrations()
