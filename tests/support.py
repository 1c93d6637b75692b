"""What a test run holds once, whichever way it is imported: its instance folder and the
PostgreSQL databases it created.

Why a module of its own: pytest imports tests/conftest.py as `conftest`, and a test that
imports `tests.conftest` gets a second copy of it; state kept there (the list of databases
to drop) would be split in two and half of it never dropped.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import tempfile

# Cheap password hashing for the whole run (and the CLI processes it starts); set before
# any hash is made. Production keeps Argon2id's full cost.
os.environ.setdefault("IPAM_PASSWORD_COST", "test")

from sqlalchemy import create_engine, make_url, text  # noqa: E402

from web import database_url  # noqa: E402

# An instance folder of the run's own (secrets, audit checkpoints, lab settings): the
# checkout's instance/ and a user's files stay untouched. Removed when the run ends.
_INSTANCE = tempfile.mkdtemp(prefix="ipam-test-instance-")
os.environ["IPAM_INSTANCE_PATH"] = _INSTANCE
atexit.register(shutil.rmtree, _INSTANCE, True)

# The PostgreSQL server the tests use. The database named here is only connected to, to
# CREATE a database of the run's own (ipam_test_<pid>_<random>), dropped at the end:
# the tests never empty or drop a database they did not create.
SERVER_URL = database_url(
    os.environ.get("IPAM_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
)


def free_port() -> int:
    """A TCP port nobody listens on now, on loopback (for a server a test starts)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_unavailable() -> str | None:
    """Return why PostgreSQL cannot be used, or None if it can."""
    engine = create_engine(SERVER_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "no server here"
        return (
            f"PostgreSQL not reachable at {SERVER_URL} ({type(exc).__name__}); "
            "set IPAM_TEST_DATABASE_URL or start the server"
        )
    finally:
        engine.dispose()


def _server_execute(sql: str) -> None:
    engine = create_engine(SERVER_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


def create_pg_database() -> str:
    """A new, uniquely named, empty database on the test server; its URL."""
    name = f"ipam_test_{os.getpid()}_{secrets.token_hex(4)}"
    _server_execute(f'CREATE DATABASE "{name}"')
    # A test database need not wait for its commits to reach the disk (ours alone).
    _server_execute(f'ALTER DATABASE "{name}" SET synchronous_commit TO off')
    _CREATED.append(name)
    return make_url(SERVER_URL).set(database=name).render_as_string(hide_password=False)


def clone_pg_database(url: str) -> str:
    """A new database of the run's own, a copy of `url`'s (PostgreSQL's TEMPLATE: a file
    copy, much faster than seeding again); nobody may be connected to `url` meanwhile."""
    source = make_url(url).database
    name = f"ipam_test_{os.getpid()}_{secrets.token_hex(4)}"
    _server_execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
    _CREATED.append(name)
    return make_url(SERVER_URL).set(database=name).render_as_string(hide_password=False)


def drop_created_databases() -> None:
    """Drop the databases this run created (only those)."""
    while _CREATED:
        name = _CREATED.pop()
        _server_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_CREATED: list[str] = []
