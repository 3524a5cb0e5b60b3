"""Alembic environment of the prediction store: always run on a connection handed over by
heartml.store.engine.upgrade (config.attributes["connection"]), online, in its transaction."""

from __future__ import annotations

from alembic import context

from heartml.store.engine import VERSION_TABLE
from heartml.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the store's migrations with heartml.store.engine.upgrade")
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying
)
with context.begin_transaction():
    context.run_migrations()
