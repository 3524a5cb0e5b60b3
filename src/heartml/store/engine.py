"""Connecting to the prediction store and bringing its schema up to date (Alembic).

SQLite (the embedded default): WAL journal, so that readers (the performance window, /feedback)
never wait for the writer, and a busy timeout, so that two processes writing one file (uvicorn
with two workers) take turns. Connections are pooled: a connection opened per transaction lost
its page cache every time (the unique index on random request ids then costs a read per row)
and the last one to close checkpointed the WAL, ~25 ms per flush. An open connection would go on
writing into a file that was deleted (its inode) or made read-only (its descriptor), so
`FileWatch` looks at the file before each write and, when it is not the one the pool opened or
cannot be written, empties the pool: the next write opens the path again and fails, or creates
and migrates a new file.

PostgreSQL: a small pool with pre-ping (a dropped connection is replaced, not reused). A plain
`postgresql://` URL is read as psycopg2 (SQLAlchemy 2.1 would pick psycopg 3, not installed).

Migrations run on start (the service's writer, `heartml score --record`, `heartml feedback`) and
with `heartml store upgrade`. Several replicas may start at once: PostgreSQL serialises them with
an advisory lock, SQLite with a lock file beside the database.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

from heartml.errors import HeartmlError

log = logging.getLogger("heartml.store")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSION_TABLE = "heartml_store_version"  # not alembic_version: the database may be MLflow's too
SQLITE_BUSY_TIMEOUT_S = 10.0
SQLITE_CACHE_KIB = 2_048  # page cache per connection, SQLite's default (the OS caches the file)
CONNECT_TIMEOUT_S = 5
_ADVISORY_LOCK = 0x6865_6172_746D_6C  # "heartml": one key for every heartml store migration


class StoreError(HeartmlError, RuntimeError):
    """The prediction store cannot be reached or used; the message names the database."""


def normalized_url(url: str) -> URL:
    """The store URL as SQLAlchemy should read it; StoreError when it is not a URL we support."""
    try:
        parsed = make_url(url)
    except Exception:
        raise StoreError(
            f"prediction store URL {url!r} is not a database URL "
            "(expected sqlite:///PATH or postgresql://<user>:<password>@<host>/<db>)"
        ) from None
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg2")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StoreError(
            f"prediction store URL {shown(parsed)}: {parsed.get_backend_name()} is not supported "
            "(sqlite or postgresql)"
        )
    return parsed


def shown(url: URL | str) -> str:
    """The URL for messages and logs: without its password."""
    parsed = url if isinstance(url, URL) else make_url(url)
    return parsed.render_as_string(hide_password=True)


def error_text(exc: BaseException) -> str:
    """A database error in one line: the driver's own message, without SQLAlchemy's SQL echo
    and help link."""
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


def sqlite_path(url: URL) -> Path | None:
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()  # the JSON columns: ~5x faster than json.dumps


# Reading them back: json.loads took 30 of the 45 s the monitoring report spent on 1,000,000
# predictions (two JSON columns per row); orjson parses the same text (NaN is stored as null).
_json_loads = orjson.loads


def create_engine(url: str) -> Engine:
    """An engine for the store (no connection is made yet)."""
    parsed = normalized_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = sa.create_engine(
            parsed,
            json_serializer=_json,
            json_deserializer=_json_loads,
            pool_size=2,
            max_overflow=2,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
        )
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(
        parsed,
        json_serializer=_json,
        json_deserializer=_json_loads,
        pool_size=2,
        max_overflow=2,
        pool_pre_ping=True,
        pool_recycle=600,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_S},
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable up to the last sync
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    finally:
        cursor.close()


class FileWatch:
    """Whether an SQLite store's file is still the one its pool opened, and writable."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.path = sqlite_path(engine.url)
        self._seen: tuple[int, int, bool] | None = None

    def _identity(self) -> tuple[int, int, bool] | None:
        assert self.path is not None
        try:
            stat = os.stat(self.path)
        except OSError:
            return None
        # os.access: False for a file made read-only, immutable (chattr +i, even for root),
        # or on a file system remounted read-only.
        writable = os.access(self.path, os.W_OK) and os.access(self.path.parent, os.W_OK)
        return (stat.st_dev, stat.st_ino, writable)

    def check(self) -> None:
        """Empty the pool when the file changed since the last check (once per change)."""
        if self.path is None:
            return
        identity = self._identity()
        if identity != self._seen:
            if self._seen is not None:
                self.engine.dispose()
            self._seen = identity


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[sa.Connection | None]:
    """Serialise migrations of one database across processes; yields the connection holding
    the lock (PostgreSQL) or None (SQLite: the lock is a file)."""
    path = sqlite_path(engine.url)
    if engine.url.get_backend_name() == "postgresql":
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": _ADVISORY_LOCK})
            try:
                yield connection
            finally:
                connection.execute(
                    sa.text("SELECT pg_advisory_unlock(:key)"), {"key": _ADVISORY_LOCK}
                )
                connection.commit()
    elif path is not None:
        with open(path.with_name(path.name + ".lock"), "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield None
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
    else:
        yield None


def alembic_config(connection: sa.Connection | None = None) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine, create_parent: bool = False) -> str | None:
    """Bring the schema to the newest migration; returns the revision now in place.

    create_parent: make the SQLite file's folder first (on start). The writer's later recovery
    attempts do not, on purpose: a folder that vanished is storage that went away (an unmounted
    volume), and writing elsewhere would hide that.
    """
    # Alembic logs every step (and its plugins, on import) at INFO: noise in the service log.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from alembic import command

    path = sqlite_path(engine.url)
    if path is not None and create_parent:
        path.parent.mkdir(parents=True, exist_ok=True)
    with _migration_lock(engine) as locked:
        if locked is not None:
            command.upgrade(alembic_config(locked), "head")
            locked.commit()
        else:
            with engine.begin() as connection:
                command.upgrade(alembic_config(connection), "head")
    return current_revision(engine)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()
