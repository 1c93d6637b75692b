"""Reads on a replica (issue 17): a PostgreSQL streaming replica of the running cluster,
made by the test with pg_basebackup on a port of its own and removed afterwards.

Which reads go where is shown by pausing the replica's replay: a customer added on the
primary is then missing from what the replica serves (lists, reports, attribution) and
present where the caller must see their own write; once replay resumes, it is everywhere.
"""

from __future__ import annotations

import gc
import os
import time

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import SERVER_URL, create_pg_database, pg_unavailable
from tests.factories import credit_code
from tests.functional.conftest import Client, seed_world
from tests.replica import Replica, Unavailable, _pg_bin
from web import create_app
from web.cli import init_database


def _need(reason: str | None) -> None:
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the replica test: {reason}")
        pytest.skip(reason)


@pytest.fixture
def replica_app(_apps, tmp_path):
    _need(pg_unavailable())
    _need(None if _pg_bin("pg_basebackup") else "pg_basebackup is not installed")
    primary = create_pg_database()
    app = create_app({"SQLALCHEMY_DATABASE_URI": primary, "SECRET_KEY": "t", "TESTING": True,
                      "IPAM_LOGIN_LIMIT": "100000 per minute"})  # fmt: skip
    with app.app_context():
        init_database()
        from web.extensions import db

        ids = seed_world(db.engine)
        db.engine.dispose()
    replica = Replica()
    try:
        try:
            replica.start(SERVER_URL)
        except Unavailable as exc:
            _need(str(exc))
        app.config["IPAM_DATABASE_REPLICA_URL"] = replica.url_for(primary)
        engine = create_engine(app.config["IPAM_DATABASE_REPLICA_URL"])
        yield app, replica, engine, ids
        # Sessions the test's requests left behind give their connections back now, while
        # the replica still answers: not in a garbage collection later, in another test,
        # after the replica is gone (a finalizer failing inside a later import).
        gc.collect()
        engine.dispose()
        for eng in app.extensions.get("ipam.replica", {}).values():
            eng.dispose()
        with app.app_context():
            from web.extensions import db

            db.engine.dispose()
    finally:
        replica.stop()


def test_reports_lists_and_attribution_read_the_replica_writes_stay_on_the_primary(
    replica_app,
):
    app, replica, engine, ids = replica_app
    engineer, auditor = Client(app, "engineer"), Client(app, "auditor")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT pg_is_in_recovery()")).scalar() is True

    def replayed_to(lsn: str) -> bool:
        with engine.connect() as conn:
            return conn.execute(
                text("SELECT pg_last_wal_replay_lsn() >= CAST(:lsn AS pg_lsn)"), {"lsn": lsn}
            ).scalar()

    with engine.connect() as conn:  # replay paused: the replica stands still
        conn.execute(text("SELECT pg_wal_replay_pause()"))
        conn.commit()
    name = "副本测试有限公司"
    made = engineer.api(
        "POST", "/api/v1/customers",
        json={"name": name, "uscc": credit_code(), "kind": "hosting"},
    )  # fmt: skip
    assert made.status_code == 201, made.get_data(as_text=True)
    customer_id = made.get_json()["id"]
    # Read-your-write: the customer's own record is read on the primary.
    assert engineer.get(f"/api/v1/customers/{customer_id}").status_code == 200
    # The lists and the reports are the replica's: not there yet.
    listed = auditor.get("/api/v1/lists/customers?limit=500").get_json()
    assert name not in str(listed)
    response = auditor.get("/api/v1/reports/ip_filing?format=csv")
    report = response.get_data(as_text=True)
    response.close()  # a streamed answer: its generator ends here, not in a later collection
    assert report and name not in report
    # Allocations go on at the primary while the reports read the replica.
    for _ in range(5):
        r = engineer.api(
            "POST", "/api/v1/allocations", json={"pool": ids["pool_id"], "customer": customer_id}
        )
        assert r.status_code == 201, r.get_data(as_text=True)
    prefix = r.get_json()["prefix"].split("/")[0]
    held = auditor.get(f"/api/v1/attribution?address={prefix}").get_json()
    assert (held.get("customer") or {}).get("id") != customer_id  # the replica: not yet
    primary = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    with primary.connect() as conn:
        lsn = conn.execute(text("SELECT CAST(pg_current_wal_lsn() AS text)")).scalar()
    primary.dispose()
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_wal_replay_resume()"))
        conn.commit()
    deadline = time.monotonic() + 30
    while not replayed_to(lsn) and time.monotonic() < deadline:
        time.sleep(0.1)
    listed = auditor.get("/api/v1/lists/customers?limit=500").get_json()
    assert name in str(listed)
    held = auditor.get(f"/api/v1/attribution?address={prefix}").get_json()
    assert held["customer"]["id"] == customer_id
