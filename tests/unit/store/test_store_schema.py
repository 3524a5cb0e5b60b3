"""The store's schema: the migrations create exactly heartml.store.schema's tables, on SQLite
(PostgreSQL: tests/integration/test_prediction_store.py), in their own version table, and several
processes may migrate one database at once."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from heartml.sites import SITE_PATTERN
from heartml.store.engine import (
    VERSION_TABLE,
    create_engine,
    current_revision,
    head_revision,
    upgrade,
)
from heartml.store.schema import metadata

pytestmark = pytest.mark.monitoring


def test_migrations_create_the_schema_module_tables(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'a' / 'p.db'}")
    assert upgrade(engine, create_parent=True) == head_revision() == "0002"
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        differences = compare_metadata(context, metadata)
        tables = set(sa.inspect(connection).get_table_names())
    assert differences == [], differences
    assert tables == {"predictions", VERSION_TABLE}  # not alembic_version: MLflow's may be there
    assert upgrade(engine) == "0002"  # again: nothing to do


def test_concurrent_upgrades_of_one_database(tmp_path: Path) -> None:
    """Four replicas starting at once: the lock file serialises them; one creates the table."""
    url = f"sqlite:///{tmp_path / 'p.db'}"
    errors: list[BaseException] = []

    def start() -> None:
        try:
            upgrade(create_engine(url), create_parent=True)
        except BaseException as exc:  # collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert current_revision(create_engine(url)) == "0002"


@pytest.mark.parametrize(
    ("site", "allowed"),
    [("st-marys.cardiology_2", True), ("a" * 64, True), ("a" * 65, False), ("", False),
     ("site/1", False), ("café", False), ("a b", False), ("..", False), (".hidden", False),
     ("-x", False), ("9th-street", True)],
)  # fmt: skip
def test_site_names(site: str, allowed: bool) -> None:
    assert bool(SITE_PATTERN.fullmatch(site)) is allowed


def test_plain_postgresql_url_is_read_as_psycopg2() -> None:
    from heartml.store.engine import StoreError, normalized_url, shown

    assert normalized_url("postgresql://u:secret@h/db").drivername == "postgresql+psycopg2"
    assert "secret" not in shown(normalized_url("postgresql://u:secret@h/db"))
    with pytest.raises(StoreError, match="mysql is not supported"):
        normalized_url("mysql://u@h/db")
    with pytest.raises(StoreError, match="not a database URL"):
        normalized_url("not a url")


def test_insert_columns_are_the_columns_a_new_prediction_fills() -> None:
    from heartml.store.records import INSERT_COLUMNS
    from heartml.store.schema import predictions

    later = {"id", "outcome", "observed_at", "outcome_received_at"}
    assert set(INSERT_COLUMNS) == {c.name for c in predictions.columns} - later
    assert len(INSERT_COLUMNS) == len(set(INSERT_COLUMNS))
