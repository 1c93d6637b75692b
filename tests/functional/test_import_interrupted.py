"""An allocations import killed mid-way (kill -9): its committed chunks stay marked, the next
import refuses to start, `ipam import-undo` withdraws them, and the ledger is as before."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from ipam.models import Allocation, FreeBlock, ImportBatch, ImportStatus
from tests.factories import credit_code

ROWS = 60_000


def test_a_killed_import_is_withdrawn_by_import_undo(cli_app, engine, db_url, tmp_path):
    run = cli_app.test_cli_runner()
    uscc = credit_code()
    (tmp_path / "pools.csv").write_text("prefix,name\n198.18.0.0/15,dc\n")
    (tmp_path / "customers.csv").write_text(f"name,uscc,kind\n甲公司,{uscc},hosting\n")
    assert run.invoke(args=["import", "pools", str(tmp_path / "pools.csv")]).exit_code == 0
    assert run.invoke(args=["import", "customers", str(tmp_path / "customers.csv")]).exit_code == 0
    with Session(engine) as s:
        free_before = sorted(s.execute(select(FreeBlock.first, FreeBlock.prefixlen)).all())
    big = tmp_path / "big.csv"
    with big.open("w") as fh:
        fh.write("pool,customer,prefix\n")
        for i in range(ROWS):
            fh.write(f"dc,{uscc},198.18.{i // 256}.{i % 256}/32\n")
    env = {**os.environ, "IPAM_DATABASE_URL": db_url, "IPAM_SECRET_KEY": "t"}
    ipam = [str(Path(sys.executable).parent / "ipam")]
    proc = subprocess.Popen(
        [*ipam, "import", "allocations", str(big)], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        written = 0
        for _ in range(600):
            with engine.connect() as conn:
                written = conn.execute(
                    text("SELECT coalesce(max(written), 0) FROM import_batch")
                ).scalar()
            if written:
                break
            assert proc.poll() is None, "the import ended before it could be interrupted"
            time.sleep(0.05)
        assert 0 < written < ROWS
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    with Session(engine) as s:
        batch = s.scalars(select(ImportBatch)).one()
        assert batch.status == ImportStatus.WRITING
        kept = s.scalar(select(func.count()).select_from(Allocation))
        assert kept >= written  # the committed chunks are there, marked with the batch
    small = tmp_path / "small.csv"
    small.write_text(f"pool,customer,prefix\ndc,{uscc},198.19.0.0/24\n")
    refused = run.invoke(args=["import", "allocations", str(small)])
    assert refused.exit_code == 1 and f"ipam import-undo {batch.id}" in refused.output
    undone = run.invoke(args=["import-undo", str(batch.id)])
    assert undone.exit_code == 0, undone.output
    assert f"{kept} allocation(s) removed" in undone.output
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(Allocation)) == 0
        assert sorted(s.execute(select(FreeBlock.first, FreeBlock.prefixlen)).all()) == free_before
        assert s.get(ImportBatch, batch.id).status == ImportStatus.UNDONE
    assert "intact" in run.invoke(args=["audit", "verify"]).output
    again = run.invoke(args=["import", "allocations", str(small)])
    assert again.exit_code == 0 and "imported 1 allocations" in again.output
    assert run.invoke(args=["import-undo", str(batch.id)]).exit_code == 1  # once only
