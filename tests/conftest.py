"""Fixtures: every database test runs on SQLite and on PostgreSQL.

The schema is built by running the real migrations. PostgreSQL tests skip
(saying why) when no server answers, except under CI, where they fail.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import Integer, create_engine, select, text
from sqlalchemy.orm import Session

from ipam.db import Base
from tests.support import (  # noqa: F401  (re-exported: tests import them from here too)
    _INSTANCE,
    SERVER_URL,
    _server_execute,
    create_pg_database,
    drop_created_databases,
    pg_unavailable,
)
from web import create_app
from web.cli import init_database

# The command line speaks the user's locale (web/messages.py cli_language); tests that read
# its English say so here, whatever the machine's LANG is. Tests of Chinese set IPAM_LANG.
os.environ["IPAM_LANG"] = "en"

_PG_REASON: list[str | None] = []


def migrated_url(backend: str, tmp_path_factory) -> str:
    if backend == "postgresql":
        if not _PG_REASON:  # ask the server once per run
            _PG_REASON.append(pg_unavailable())
        reason = _PG_REASON[0]
        if reason:
            if os.environ.get("CI"):
                pytest.fail(f"CI must run the PostgreSQL tests: {reason}")
            pytest.skip(reason)
        url = create_pg_database()
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "test"})
    with app.app_context():
        init_database()
        from web.extensions import db

        db.engine.dispose()
    return url


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend(request):
    return request.param


@pytest.fixture(scope="session", autouse=True)
def _drop_created():
    """Whatever test created a database (a fixture, or the test itself), it goes at the end."""
    yield
    drop_created_databases()


@pytest.fixture(scope="session")
def _urls():
    yield {}
    drop_created_databases()


@pytest.fixture(scope="session")
def db_url(backend, _urls, tmp_path_factory):
    if backend not in _urls:
        _urls[backend] = migrated_url(backend, tmp_path_factory)
    return _urls[backend]


@pytest.fixture(scope="session")
def engine(db_url):
    eng = create_engine(db_url)
    yield eng
    eng.dispose()


def _empty(conn) -> None:
    """Delete every row, children first. On PostgreSQL DELETE is far quicker than TRUNCATE
    for tables this small (TRUNCATE makes new files for every table, every time)."""
    names = [t.name for t in reversed(Base.metadata.sorted_tables)]
    if conn.dialect.name == "postgresql":  # one round trip
        conn.exec_driver_sql("; ".join(f"DELETE FROM {name}" for name in names))
    else:  # sqlite3 runs one statement a call
        for name in names:
            conn.exec_driver_sql(f"DELETE FROM {name}")


def _set_sequences(conn, restart: bool) -> None:
    """PostgreSQL: every id sequence restarted (at 1), or set past the rows laid back."""
    ids = [
        t.name
        for t in Base.metadata.sorted_tables
        if "id" in t.c and isinstance(t.c.id.type, Integer)
    ]
    if restart:
        parts = [f"setval(pg_get_serial_sequence('{n}', 'id'), 1, false)" for n in ids]
    else:
        parts = [
            f"setval(pg_get_serial_sequence('{n}', 'id'), (SELECT max(id) FROM {n}))" for n in ids
        ]
    conn.exec_driver_sql("SELECT " + ", ".join(parts))


def clear(engine) -> None:
    """Empty every table and reset the audit head, as a fresh migrated database."""
    from ipam.allocation import forget_known_lengths

    forget_known_lengths()
    with engine.begin() as conn:
        _empty(conn)
        if engine.dialect.name == "postgresql":
            _set_sequences(conn, restart=True)
        conn.execute(
            text("INSERT INTO audit_head (id, seq, last_hash) VALUES (1, 0, :h)"), {"h": "0" * 64}
        )


def snapshot(engine) -> dict:
    """Every row of every table, to lay the same data again later (see restore)."""
    with engine.connect() as conn:
        return {
            # In key order: a row that names its parent (a nested pool) comes after it.
            t.name: [
                dict(r._mapping) for r in conn.execute(select(t).order_by(*t.primary_key.columns))
            ]
            for t in Base.metadata.sorted_tables
        }


# Tables the database's triggers fill as the rows above go back (migration 0009).
DERIVED = {"free_tally"}


def restore(engine, rows: dict) -> None:
    """Empty the tables and lay a snapshot's rows back, with the same ids and sequences."""
    from ipam.allocation import forget_known_lengths

    forget_known_lengths()
    with engine.begin() as conn:
        _empty(conn)
        for t in Base.metadata.sorted_tables:
            if rows[t.name] and t.name not in DERIVED:
                conn.execute(t.insert(), rows[t.name])
        if engine.dialect.name == "postgresql":
            _set_sequences(conn, restart=False)


@pytest.fixture
def session(engine):
    s = Session(engine, expire_on_commit=False)
    yield s
    s.rollback()
    s.close()
    clear(engine)


@pytest.fixture
def make_session(engine):
    """Factory of extra sessions (for threads); all closed after the test."""
    made = []

    def factory():
        s = Session(engine, expire_on_commit=False)
        made.append(s)
        return s

    yield factory
    for s in made:
        s.rollback()
        s.close()


def table_contents(session) -> dict:
    """Every row of every table, to prove a refused change wrote or altered nothing."""
    session.rollback()
    out = {}
    for table in Base.metadata.sorted_tables:
        rows = session.execute(select(table).order_by(*table.primary_key.columns)).all()
        out[table.name] = [tuple(row) for row in rows]
    return out


@pytest.fixture
def unchanged(session):
    """Use: `with unchanged(): ...` asserts the block's failure wrote nothing."""
    from contextlib import contextmanager

    @contextmanager
    def check():
        session.commit()
        before = table_contents(session)
        yield
        session.rollback()
        assert table_contents(session) == before

    return check


@pytest.fixture(scope="session")
def _apps():
    """One app per database and settings for the run: building one compiles ~120 URL rules."""
    apps: dict = {}
    yield apps
    for app in apps.values():  # their pooled connections close with the run
        with app.app_context():
            from web.extensions import db

            db.engine.dispose()


def reused_app(apps: dict, engine, settings: dict):
    """For app fixtures: the run's app for these settings; after the test its config is
    put back and the tables emptied."""
    key = tuple(sorted(settings.items()))
    if key not in apps:
        apps[key] = create_app(settings)
    app = apps[key]
    config = dict(app.config)
    # Each test its own checkpoint file: a checkpoint of one database is no other's.
    app.config["IPAM_AUDIT_CHECKPOINTS"] = tempfile.mktemp(
        prefix="audit-checkpoints-", dir=_INSTANCE
    )
    yield app
    app.config.clear()
    app.config.update(config)
    with app.app_context():
        from web.extensions import db

        db.session.remove()
    clear(engine)


@pytest.fixture
def cli_app(db_url, engine, _apps):
    """A Flask app on the test database, for CLI tests through the runner."""
    settings = {"SQLALCHEMY_DATABASE_URI": db_url, "IPAM_QUARANTINE_DAYS": 30, "SECRET_KEY": "test"}
    yield from reused_app(_apps, engine, settings)


HERE = Path(__file__).parent


class Inbox:
    """A real SMTP server (aiosmtpd) that keeps what it receives."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, envelope.content))
        return "250 OK"


@pytest.fixture
def smtp():
    """(inbox, port) of a real SMTP server running for the test."""
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as probe:  # a free port (the controller checks it by connecting)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()
