"""Backups taken while ipam writes, restored into an empty database: the audit chain verifies
and "who held this address then" answers the same, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import shutil
import threading

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from ipam import allocation
from tests.conftest import create_pg_database
from web import create_app

PAST = "2026-01-01T00:00:00+08:00"


def _tools_missing(backend: str) -> str | None:
    if backend == "postgresql" and not (shutil.which("pg_dump") and shutil.which("pg_restore")):
        return "pg_dump/pg_restore are not installed (Debian: postgresql-client)"
    return None


def _empty_url(backend: str, tmp_path) -> str:
    if backend == "postgresql":
        return create_pg_database()
    return f"sqlite:///{tmp_path / 'restored.sqlite3'}"


def test_a_backup_taken_during_writes_restores_whole(cli_app, engine, backend, tmp_path):
    if reason := _tools_missing(backend):
        pytest.skip(reason)
    run = cli_app.test_cli_runner()
    assert run.invoke(args=["demo"]).exit_code == 0
    original = run.invoke(args=["whois", "198.18.7.9", "--at", PAST, "--json"]).output

    # A writer allocates addresses while the backup is taken.
    stop, written = threading.Event(), []

    def writer():
        with Session(engine) as s:
            while not stop.is_set() and len(written) < 200:
                a = allocation.allocate(s, "Beijing DC1", "北京云帆网络科技有限公司", actor="w")
                s.commit()
                written.append(a.id)

    thread = threading.Thread(target=writer)
    thread.start()
    for _ in range(500):  # the writer is under way before the backup starts
        if written:
            break
        threading.Event().wait(0.01)
    try:
        file = tmp_path / "ipam.backup"
        out = run.invoke(args=["backup", str(file)])
    finally:
        stop.set()
        thread.join()
    assert out.exit_code == 0, out.output
    assert written, "the writer never wrote"
    assert "backup written" in out.output and file.stat().st_size > 0
    assert run.invoke(args=["backup", str(file)]).exit_code != 0  # never overwrites

    target = _empty_url(backend, tmp_path)
    restored = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": target,
            "SECRET_KEY": "t",
            "IPAM_AUDIT_CHECKPOINTS": str(tmp_path / "restored-checkpoints.jsonl"),
        }
    )
    try:
        again = restored.test_cli_runner()
        out = again.invoke(args=["restore", str(file)])
        assert out.exit_code == 0, out.output
        verify = again.invoke(args=["audit", "verify"])
        assert verify.exit_code == 0 and "intact" in verify.output, verify.output
        whois = again.invoke(args=["whois", "198.18.7.9", "--at", PAST, "--json"]).output
        assert json.loads(whois) == json.loads(original)
        # The copy is one instant: every allocation in it has its audit entry, and no more.
        with restored.app_context():
            from web.extensions import db

            allocs = db.session.execute(text("SELECT count(*) FROM allocation")).scalar()
            entries = db.session.execute(
                text("SELECT count(*) FROM audit_log WHERE action = 'allocation.add'")
            ).scalar()
            assert allocs == entries
        # A second restore into the now full database is refused, and changes nothing.
        refused = again.invoke(args=["restore", str(file)])
        assert refused.exit_code == 1 and "not empty" in refused.output
    finally:
        with restored.app_context():
            from web.extensions import db

            db.engine.dispose()


def test_a_file_that_is_no_backup_is_refused(cli_app, tmp_path, backend):
    bogus = tmp_path / "notes.txt"
    bogus.write_text("not a database")
    out = cli_app.test_cli_runner().invoke(args=["restore", str(bogus)])
    assert out.exit_code == 1 and "is not a" in out.output and "backup" in out.output
