"""A database that goes away: the request is run again once on a fresh connection, else
503 with Retry-After in the error shape; nothing answers 500 (PostgreSQL, our own database)."""

from __future__ import annotations

import gc
import warnings

import pytest
from sqlalchemy import create_engine, make_url, text

from ipam import users
from tests.conftest import SERVER_URL, migrated_url
from web import create_app


def _server(sql: str, **params) -> None:
    engine = create_engine(SERVER_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(sql), params)
    finally:
        engine.dispose()


def _drop_connections(name: str) -> None:
    _server(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = :name AND pid <> pg_backend_pid()",
        name=name,
    )


def test_a_dropped_connection_is_retried_and_a_database_away_answers_503(tmp_path_factory):
    url = migrated_url("postgresql", tmp_path_factory)  # a database of this test's own
    name = make_url(url).database
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "t", "WTF_CSRF_ENABLED": False})
    client = app.test_client()
    with app.app_context():
        from web.extensions import db

        users.create_user(db.session, "eng", "engineer pass 1", "engineer", actor="test")
        _, secret = users.issue_token(db.session, "eng", "t", actor="test")
        db.session.commit()
    bearer = {"Authorization": f"Bearer {secret}"}
    try:
        assert client.get("/api/v1/pools", headers=bearer).status_code == 200  # pooled now
        _drop_connections(name)  # the server ends it under the app's feet
        again = client.get("/api/v1/pools", headers=bearer)
        assert again.status_code == 200, again.get_data(as_text=True)[:300]

        _server(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        _drop_connections(name)
        away = client.get("/api/v1/pools", headers=bearer)
        assert away.status_code == 503
        assert int(away.headers["Retry-After"]) > 0
        assert away.get_json()["error"]["code"] == "database_unavailable"
        page = client.post(  # the login form looks the user up: a page, in Chinese
            "/login", data={"username": "eng", "password": "x"}, headers={"Accept-Language": "zh"}
        )
        assert page.status_code == 503 and "数据库暂时无响应" in page.get_data(as_text=True)
    finally:
        _server(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        with app.app_context():
            from web.extensions import db

            db.engine.dispose()
    assert client.get("/api/v1/pools", headers=bearer).status_code == 200  # back by itself
    # The connections the server killed are collected here, not in a later test's teardown
    # (psycopg warns that a connection closed by the server was never closed by us).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


@pytest.fixture(autouse=True)
def _only_where_postgresql_runs():
    from tests.conftest import pg_unavailable

    reason = pg_unavailable()
    if reason:
        import os

        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL tests: {reason}")
        pytest.skip(reason)
