"""SQLite: reads run beside a writer instead of queuing for its lock, and a GET that has to
write (an audited reveal) still does, once, when a writer was in the way."""

from __future__ import annotations

import sqlite3
import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ipam import users
from ipam.models import AuditLog


@pytest.fixture(scope="module")
def sqlite_app(tmp_path_factory):
    """An app on an SQLite database of this module's own, with the demo world: these tests
    are about SQLite's one write lock (PostgreSQL readers never wait for writers)."""
    from sqlalchemy import create_engine

    from tests.conftest import migrated_url
    from tests.functional.conftest import seed_world
    from web import create_app

    url = migrated_url("sqlite", tmp_path_factory)
    engine = create_engine(url)
    seed_world(engine)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "t", "TESTING": True})
    yield app, engine, url.split("sqlite:///", 1)[1]
    with app.app_context():
        from web.extensions import db

        db.engine.dispose()
    engine.dispose()


def _hold_the_write_lock(path: str, held: threading.Event, release: threading.Event):
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("BEGIN IMMEDIATE")
    held.set()
    release.wait(30)
    conn.execute("COMMIT")
    conn.close()


def _bearer(engine) -> dict:
    with Session(engine) as s:
        _, secret = users.issue_token(s, "auditor", "reads", actor="test")
        s.commit()
    return {"Authorization": f"Bearer {secret}"}


def test_a_read_answers_while_a_writer_holds_the_lock(sqlite_app):
    web_app, engine, sqlite_file = sqlite_app
    bearer = _bearer(engine)
    held, release = threading.Event(), threading.Event()
    writer = threading.Thread(target=_hold_the_write_lock, args=(sqlite_file, held, release))
    writer.start()
    try:
        assert held.wait(10)
        client = web_app.test_client()
        for path in (
            "/api/v1/pools",
            "/api/v1/customers",
            "/api/v1/attribution?address=198.18.7.9",
        ):
            response = client.get(path, headers=bearer)
            assert response.status_code == 200, (path, response.get_data(as_text=True)[:200])
        assert not release.is_set()  # answered while the writer still held the lock
    finally:
        release.set()
        writer.join()


def test_a_get_that_writes_waits_for_the_writer_and_writes_once(sqlite_app, caplog):
    web_app, engine, sqlite_file = sqlite_app
    bearer = _bearer(engine)
    with Session(engine) as s:
        before = s.scalar(select(func.count()).select_from(AuditLog))
    held, release = threading.Event(), threading.Event()
    writer = threading.Thread(target=_hold_the_write_lock, args=(sqlite_file, held, release))
    writer.start()
    assert held.wait(10)
    threading.Timer(0.3, release.set).start()  # the writer finishes while the GET waits
    try:
        response = web_app.test_client().get(
            "/api/v1/attribution?address=198.18.7.9&reveal=true&reason=police request 2026-42",
            headers=bearer,
        )
    finally:
        release.set()
        writer.join()
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    # SQLite refused to upgrade the read to a write; the request ran again as a writer.
    assert any("database unavailable on GET" in r.getMessage() for r in caplog.records)
    with Session(engine) as s:
        reveals = s.scalars(select(AuditLog).where(AuditLog.action == "attribution.reveal")).all()
        assert len(reveals) == 1 and reveals[0].data["reason"] == "police request 2026-42"
        assert s.scalar(select(func.count()).select_from(AuditLog)) == before + 1  # just it
