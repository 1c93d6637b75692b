"""Reads on a replica (issue 17): a PostgreSQL streaming replica of the running cluster,
made by the test with pg_basebackup on a port of its own and removed afterwards.

Which reads go where is shown by pausing the replica's replay: a customer added on the
primary is then missing from what the replica serves (lists, reports, attribution) and
present where the caller must see their own write; once replay resumes, it is everywhere.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from tests.conftest import SERVER_URL, create_pg_database, pg_unavailable
from tests.factories import credit_code
from tests.functional.conftest import Client, seed_world
from web import create_app
from web.cli import init_database

BIN = Path("/usr/lib/postgresql")


def _need(reason: str | None) -> None:
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the replica test: {reason}")
        pytest.skip(reason)


def _pg_bin(name: str) -> str | None:
    found = sorted(BIN.glob(f"*/bin/{name}"))
    return str(found[-1]) if found else shutil.which(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(*cmd: str) -> subprocess.CompletedProcess:
    run = ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else list(cmd)
    return subprocess.run(run, capture_output=True, text=True, timeout=300)


class Replica:
    """pg_basebackup of the running cluster (-R: a standby), started on a free port."""

    def __init__(self):
        self.port = _free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="ipam-replica-", dir="/tmp"))
        self.data = self.folder / "data"
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        self.started = False

    def start(self, primary: str) -> None:
        url = make_url(primary)
        made = _as_postgres(
            _pg_bin("pg_basebackup"), "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432),
            "-U", url.username or "postgres", "-D", str(self.data), "-R", "-X", "stream",
            "-c", "fast",
        )  # fmt: skip
        _need(
            None
            if made.returncode == 0
            else f"pg_basebackup could not copy the cluster "
            f"(a `host replication` line in pg_hba.conf is needed): {made.stderr.strip()}"
        )
        # Debian keeps the configuration outside the data folder: the replica's own.
        # A standby needs at least the primary's limits: the same values.
        engine = create_engine(primary)
        with engine.connect() as conn:
            limits = "".join(
                f"{name} = {conn.execute(text(f'SHOW {name}')).scalar()}\n"
                for name in (
                    "max_connections", "max_worker_processes", "max_wal_senders",
                    "max_prepared_transactions", "max_locks_per_transaction",
                )
            )  # fmt: skip
        engine.dispose()
        (self.data / "postgresql.conf").write_text(
            f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{self.folder}'\nhot_standby = on\n"
            f"shared_buffers = 32MB\n{limits}"
        )
        (self.data / "pg_ident.conf").write_text("")
        (self.data / "pg_hba.conf").write_text(
            "local all all trust\nhost all all 127.0.0.1/32 trust\n"
        )
        for leftover in ("postmaster.pid", "postmaster.opts"):
            (self.data / leftover).unlink(missing_ok=True)
        _as_postgres("chown", "-R", "postgres:postgres", str(self.folder))
        started = _as_postgres(
            _pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "log"), "-w",
            "-t", "60", "start",
        )  # fmt: skip
        assert started.returncode == 0, started.stderr + (self.folder / "log").read_text()
        self.started = True

    def url_for(self, db_url: str) -> str:
        return make_url(db_url).set(host="127.0.0.1", port=self.port).render_as_string(False)

    def stop(self) -> None:
        if self.started:
            _as_postgres(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)


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
        replica.start(SERVER_URL)
        app.config["IPAM_DATABASE_REPLICA_URL"] = replica.url_for(primary)
        engine = create_engine(app.config["IPAM_DATABASE_REPLICA_URL"])
        yield app, replica, engine, ids
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
