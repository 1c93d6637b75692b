"""The database as `ipam whois` reaches it: through the driver itself (sqlite3 or psycopg),
with neither Flask nor SQLAlchemy loaded, so that a question answers at once.

The URL is the one web/app.py uses: IPAM_DATABASE_URL, else the embedded SQLite file in
the instance folder (IPAM_INSTANCE_PATH, else where Flask puts it: instance_path below,
checked against Flask's own in tests/functional/test_cli.py).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from contextlib import contextmanager
from pathlib import PurePath

from ipam.attribution import Direct


def instance_path() -> str:
    """Flask's default instance folder for the `web` package (flask.sansio.scaffold's
    find_package): `<prefix>/var/web-instance` when installed, `<checkout>/instance` else."""
    if os.environ.get("IPAM_INSTANCE_PATH"):
        return os.environ["IPAM_INSTANCE_PATH"]
    spec = importlib.util.find_spec("web")
    package = os.path.dirname(os.path.dirname(spec.origin))  # the folder holding web/
    prefix = os.path.abspath(sys.prefix)
    if PurePath(package).is_relative_to(prefix):
        return os.path.join(prefix, "var", "web-instance")
    parent, folder = os.path.split(package)
    if folder.lower() == "site-packages":
        grand, name = os.path.split(parent)
        if name.lower() == "lib":
            return os.path.join(grand, "var", "web-instance")
        if os.path.basename(grand).lower() == "lib":
            return os.path.join(os.path.dirname(grand), "var", "web-instance")
        return os.path.join(parent, "var", "web-instance")
    return os.path.join(package, "instance")


def database_url() -> str:
    return os.environ.get("IPAM_DATABASE_URL") or (
        f"sqlite:///{os.path.join(instance_path(), 'ipam.sqlite3')}"
    )


class NoSchema(Exception):
    """The database (or its file) is not there: `ipam init` has not run."""


class Unreachable(Exception):
    """The database server did not take the connection (the driver's reason)."""


def no_schema(exc: Exception) -> bool:
    """A driver's error for a table that is not there (sqlite3 or psycopg)."""
    text = str(exc)
    return type(exc).__name__ in ("OperationalError", "ProgrammingError", "UndefinedTable") and (
        "no such table" in text or ("relation" in text and "does not exist" in text)
    )


@contextmanager
def connect(url: str | None = None):
    """Yield a Direct connection reading one snapshot, or None for a URL this module does
    not know (the caller then goes through the app). Nothing is written."""
    url = url or database_url()
    scheme, sep, rest = url.partition("://")
    if not sep:
        yield None
        return
    driver = scheme.partition("+")[0]
    if driver == "sqlite":
        yield from _sqlite(url, rest)
    elif driver in ("postgresql", "postgres") and scheme.partition("+")[2] in ("", "psycopg"):
        yield from _postgresql(url, rest)
    else:
        yield None


def _sqlite(url: str, rest: str):
    import sqlite3

    path = rest[1:].partition("?")[0]  # sqlite:///relative or sqlite:////absolute
    if not path or path == ":memory:":
        yield None
        return
    if not os.path.exists(path):
        raise NoSchema(path)
    # mode=rw: a missing file is an error rather than a new empty database.
    conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=5, isolation_level=None)
    try:
        conn.execute("BEGIN")  # deferred: a WAL reader beside any writer, one snapshot
        yield Direct(conn, True, url)
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def _postgresql(url: str, rest: str):
    import psycopg

    try:
        conn = psycopg.connect("postgresql://" + rest, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise Unreachable(str(exc).strip()) from None
    try:
        conn.read_only = True
        yield Direct(conn, False, url)
        conn.rollback()
    finally:
        conn.close()
