"""Backups that are consistent while the application runs, and restores into an empty database.

SQLite: the online backup API copies the database page by page under its
own read transaction, so writers may go on and the copy is one instant.
PostgreSQL: pg_dump's custom format (one snapshot of the whole database,
taken without blocking writers) and pg_restore; both tools must match the
server's major version. A restore only goes into an empty database: it
never mixes a backup with data already there.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy import inspect
from sqlalchemy.engine import Engine, make_url

from .errors import StateConflict, ValidationError

SQLITE_MAGIC = b"SQLite format 3\x00"
PGDUMP_MAGIC = b"PGDMP"


def _libpq(engine: Engine) -> str:
    """The engine's URL for libpq tools (no SQLAlchemy driver suffix), password included."""
    url = make_url(engine.url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ValidationError(
            "{name} is not installed: install the PostgreSQL client tools of the server's major "
            "version",
            "database",
            name=name,
        )
    return path


def _run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ})
    if done.returncode != 0:
        reason = (done.stderr or done.stdout).strip().splitlines()
        raise StateConflict(
            "{name} failed: {reason}",
            "database",
            name=Path(cmd[0]).name,
            reason=reason[-1] if reason else "",
        )


def backup(engine: Engine, path) -> int:
    """Write a consistent copy of the database to `path` (a new file); its size in bytes."""
    target = Path(path)
    if target.exists():
        raise ValidationError(
            "{target} exists: a backup never overwrites a file", "file", target=target
        )
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            source = conn.connection.dbapi_connection
            out = sqlite3.connect(target)
            try:
                source.backup(out)  # one step: one read snapshot, writers go on (WAL)
            finally:
                out.close()
    else:
        _run(
            [
                _tool("pg_dump"),
                "--format=custom",
                "--no-owner",
                "--file",
                str(target),
                _libpq(engine),
            ]
        )
    return target.stat().st_size


def _is_empty(engine: Engine) -> bool:
    tables = inspect(engine).get_table_names()
    return not tables


def restore(engine: Engine, path) -> None:
    """Load a backup made by backup() into the empty database of `engine`."""
    source = Path(path)
    if not source.is_file():
        raise ValidationError("{source} is not a file", "file", source=source)
    with source.open("rb") as fh:
        head = fh.read(16)
    sqlite = engine.dialect.name == "sqlite"
    if sqlite and not head.startswith(SQLITE_MAGIC):
        raise ValidationError("{source} is not an SQLite backup", "file", source=source)
    if not sqlite and not head.startswith(PGDUMP_MAGIC):
        raise ValidationError(
            "{source} is not a PostgreSQL backup (pg_dump -Fc)", "file", source=source
        )
    if not _is_empty(engine):
        raise StateConflict(
            "the database is not empty: restore only into a new, empty database", "database"
        )
    if sqlite:
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            with engine.connect() as conn:
                src.backup(conn.connection.dbapi_connection)
        finally:
            src.close()
        return
    _run(
        [
            _tool("pg_restore"),
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            "--dbname",
            _libpq(engine),
            str(source),
        ]
    )
