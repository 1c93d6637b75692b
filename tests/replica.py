"""A PostgreSQL streaming replica of the running cluster, for a test or a benchmark: made
with pg_basebackup on a port and in a folder of its own, stopped and removed afterwards.

It copies the cluster (read only, the primary is untouched) and needs a replication entry
for loopback in pg_hba.conf (.ci/run adds one); `Replica.start` raises Unavailable saying so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from sqlalchemy import create_engine, make_url, text

from tests.support import free_port


class Unavailable(RuntimeError):
    """The replica cannot be made on this machine (the reason says why)."""


def _need(reason: str | None) -> None:
    if reason:
        raise Unavailable(reason)


BIN = Path("/usr/lib/postgresql")


def _pg_bin(name: str) -> str | None:
    found = sorted(BIN.glob(f"*/bin/{name}"))
    return str(found[-1]) if found else shutil.which(name)


def _as_postgres(*cmd: str) -> subprocess.CompletedProcess:
    run = ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else list(cmd)
    return subprocess.run(run, capture_output=True, text=True, timeout=300)


class Replica:
    """pg_basebackup of the running cluster (-R: a standby), started on a free port."""

    def __init__(self):
        self.port = free_port()
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
