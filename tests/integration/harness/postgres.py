"""PostgreSQL for the tests: HEARTML_TEST_POSTGRES_URL (what .ci/run exports) or a throwaway
cluster made with Debian's binaries; every mlflow server gets a fresh database on it."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.processes import free_port, tail

POSTGRES_URL_ENV = "HEARTML_TEST_POSTGRES_URL"


def _postgres_bin() -> Path:
    versions = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").is_file()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not versions:
        pytest.fail(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): "
            "apt-get install postgresql, or set HEARTML_TEST_POSTGRES_URL to a running server",
            pytrace=False,
        )
    return versions[-1]


@dataclass
class Postgres:
    """A PostgreSQL server; `create_database()` returns the URL of a fresh, empty database."""

    admin_url: str
    created: list[str] = field(default_factory=list)

    def connect(self) -> Any:
        import psycopg2

        connection = psycopg2.connect(self.admin_url, connect_timeout=10)
        connection.autocommit = True
        return connection

    def create_database(self) -> str:
        name = f"heartml_test_{uuid.uuid4().hex[:10]}"
        connection = self.connect()
        try:
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()
        self.created.append(name)
        url = urllib.parse.urlsplit(self.admin_url)._replace(path=f"/{name}")
        if url.scheme in ("postgres", "postgresql"):
            # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3; the project ships psycopg2.
            url = url._replace(scheme="postgresql+psycopg2")
        return url.geturl()

    def drop_created(self) -> None:
        connection = self.connect()
        try:
            with connection.cursor() as cursor:
                for name in self.created:
                    cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            connection.close()


def _as_postgres_user(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[Postgres]:
    """initdb + pg_ctl start on a free loopback port (trust auth, no fsync); removed afterwards."""
    bin_dir = _postgres_bin()
    base = Path(tempfile.mkdtemp(prefix="heartml-pg-"))
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        os.chown(base, account.pw_uid, account.pw_gid)
    data, log = base / "data", base / "postgres.log"
    port = free_port()
    pg_ctl = str(bin_dir / "pg_ctl")
    try:
        made = subprocess.run(
            _as_postgres_user(
                [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-N"]
            ),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if made.returncode != 0:
            pytest.fail(f"initdb failed:\n{made.stdout}\n{made.stderr}", pytrace=False)
        started = subprocess.run(
            _as_postgres_user(
                [
                    *(pg_ctl, "-D", str(data), "-l", str(log), "-w", "-t", "60"),
                    *("-o", f"-k {base} -h 127.0.0.1 -p {port} -F", "start"),
                ]
            ),
            capture_output=True,
            text=True,
            timeout=90,
        )
        if started.returncode != 0:
            pytest.fail(f"PostgreSQL did not start:\n{started.stderr}\n{tail(log)}", pytrace=False)
        yield Postgres(f"postgresql://postgres@127.0.0.1:{port}/postgres")
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                _as_postgres_user([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]),
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(base, ignore_errors=True)
