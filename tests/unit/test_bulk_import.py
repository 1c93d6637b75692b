"""Bulk allocation imports: checked whole first, written in short chunks, all or nothing,
and live allocations go on while they run (SQLite and PostgreSQL)."""

from __future__ import annotations

import io
import threading
import time

import pytest
from sqlalchemy import func, select

from ipam import allocation, audit, bulk, freespace, pools
from ipam.db import chunk_done
from ipam.models import Allocation, AuditLog, FreeBlock, ImportBatch, ImportStatus
from tests import factories as f

V4 = 4


def _csv(*rows: str) -> io.BytesIO:
    return io.BytesIO(("pool,customer,prefix,length,purpose,valid_from,valid_to\n"
                       + "".join(r + "\n" for r in rows)).encode())  # fmt: skip


@pytest.fixture
def ledger(session):
    pool = pools.add_pool(session, "198.18.0.0/16", "dc1", actor="t")
    child = pools.add_pool(session, "198.18.200.0/24", "dc1-child", parent="dc1", actor="t")
    cust = f.customer(session)
    other = f.customer(session)
    session.commit()
    return session, pool, child, cust, other


def free_blocks(session, pool_id) -> list[tuple]:
    return sorted(
        session.execute(
            select(FreeBlock.first, FreeBlock.prefixlen).where(FreeBlock.pool_id == pool_id)
        ).all()
    )


def _held(session) -> int:
    return session.scalar(select(func.count()).select_from(Allocation))


def test_a_good_file_is_written_in_chunks_with_history_and_free_space_right(ledger):
    s, pool, _child, cust, _ = ledger
    rows = [f"dc1,{cust.uscc},198.18.1.{i}/32,,web,," for i in range(0, 200)]
    rows += [
        f"dc1,{cust.uscc},198.18.2.0/24,,old,2025-01-01T00:00:00Z,2025-06-01T00:00:00Z",
        f"dc1,{cust.uscc},198.18.2.0/25,,new,2025-07-01T00:00:00Z,",
        f"dc1,{cust.name},,30,next free,,",
    ]
    report = bulk.import_allocations(
        s, _csv(*rows), actor="t", chunk_done=chunk_done(s), chunk=64, file_name="a.csv"
    )
    assert report.errors == [] and report.imported == 203
    batch = s.get(ImportBatch, report.batch_id)
    assert batch.status == ImportStatus.DONE and batch.written == 203 and batch.rows == 203
    assert _held(s) == 203
    # The free space is what the holdings leave: exactly 65536 - 200 - 128 - 4 - the child.
    assert freespace.free_size(s, pool.id) == 65536 - 200 - 128 - 4 - 256
    from ipam import attribution

    at = attribution.attribution(s, "198.18.2.200", "2025-03-01T00:00:00Z")
    assert at.status == "allocated" and at.customer["name"] == cust.name
    assert attribution.attribution(s, "198.18.2.200", "2025-08-01T00:00:00Z").status == "free"
    assert audit.verify(s).ok
    adds = s.scalar(
        select(func.count()).select_from(AuditLog).where(AuditLog.action == "allocation.add")
    )
    assert adds == 203
    # The next free /30 did not land on a block the file named.
    nxt = s.scalars(select(Allocation).where(Allocation.purpose == "next free")).one()
    others = s.scalars(select(Allocation).where(Allocation.id != nxt.id)).all()
    assert nxt.prefixlen == 30 and not any(nxt.block.overlaps(o.block) for o in others)


def test_every_bad_row_is_reported_and_nothing_is_written(ledger, unchanged):
    s, pool, _child, cust, other = ledger
    allocation.allocate(s, "dc1", cust.id, prefix="198.18.9.0/24", actor="t")
    gone = allocation.allocate(s, "dc1", cust.id, prefix="198.18.10.0/24", actor="t")
    reclamation_end = allocation.end_allocation(s, gone, actor="t", quarantine_days=30)
    del reclamation_end
    s.commit()
    file = _csv(
        f"dc1,{cust.uscc},198.18.1.0/24,,,,",  # 2: good
        f"dc1,{cust.uscc},198.18.1.0/25,,,,",  # 3: overlaps line 2
        f"dc1,{cust.uscc},198.18.9.7/32,,,,",  # 4: held already
        f"dc1,{cust.uscc},198.18.10.0/26,,,,",  # 5: quarantined
        f"dc1,{cust.uscc},198.18.200.0/28,,,,",  # 6: a child pool's space
        "dc1,nobody,198.18.3.0/24,,,,",  # 7: no such customer
        f"nopool,{cust.uscc},198.18.4.0/24,,,,",  # 8: no such pool
        f"dc1,{cust.uscc},10.0.0.0/24,,,,",  # 9: outside the pool
        f"dc1,{cust.uscc},198.18.5.0/24,,,2025-01-01,",  # 10: no zone
        f"dc1,{cust.uscc},198.18.6.0/24,,,2030-01-01T00:00:00Z,",  # 11: future
        f"dc1,{cust.uscc},198.18.7.0/24,,,2025-06-01T00:00:00Z,2025-01-01T00:00:00Z",  # 12
        f"dc1,{cust.uscc},,33,,,",  # 13: no /33 in IPv4
    )
    with unchanged():
        report = bulk.import_allocations(s, file, actor="t", chunk_done=chunk_done(s))
        assert report.batch_id is None and report.imported == 0
    got = {(e.row, e.field) for e in report.errors}
    assert got == {
        (3, "prefix"), (4, "prefix"), (5, "prefix"), (6, "prefix"), (7, "customer"),
        (8, "pool"), (9, "prefix"), (10, "valid_from"), (11, "valid_from"), (12, "valid_to"),
        (13, "length"),
    }, report.errors  # fmt: skip
    messages = {e.row: e.message for e in report.errors}
    assert "line 2" in messages[3] and "quarantined" in messages[5] and "child" in messages[6]


def test_skip_errors_writes_the_good_rows(ledger):
    s, _pool, _child, cust, _ = ledger
    file = _csv(f"dc1,{cust.uscc},198.18.1.0/24,,,,", "dc1,nobody,198.18.3.0/24,,,,")
    report = bulk.import_allocations(s, file, actor="t", chunk_done=chunk_done(s), skip_errors=True)
    assert report.imported == 1 and [e.row for e in report.errors] == [3]
    assert _held(s) == 1


def test_a_block_taken_by_live_work_mid_import_withdraws_the_whole_import(ledger, make_session):
    s, pool, _child, cust, _ = ledger
    before = free_blocks(s, pool.id)
    rows = [f"dc1,{cust.uscc},198.18.1.{i}/32,,,," for i in range(20)]
    live = make_session()
    taken, cust_id = [], cust.id

    def after_chunk(n):  # between chunks, a live allocation takes a block of a later chunk
        if not taken:
            taken.append(allocation.allocate(live, "dc1", cust_id, prefix="198.18.1.15", actor="w"))
            live.commit()

    report = bulk.import_allocations(
        s, _csv(*rows), actor="t", chunk_done=chunk_done(s), chunk=5, progress=after_chunk
    )
    assert report.withdrawn and report.imported == 0
    assert "198.18.1.15 is no longer free" in report.errors[0].message
    assert report.errors[0].row == 17
    assert s.get(ImportBatch, report.batch_id).status == ImportStatus.UNDONE
    # Only the live allocation remains; the space is as before, less that one address.
    assert [a.prefix for a in s.scalars(select(Allocation))] == ["198.18.1.15"]
    allocation.end_allocation(s, taken[0].id, actor="t", quarantine_days=0)
    s.commit()
    assert free_blocks(s, pool.id) == before
    withdrawn = s.scalar(
        select(func.count()).select_from(AuditLog).where(AuditLog.action == "allocation.withdraw")
    )
    assert withdrawn == 15  # three chunks written, then withdrawn, each row on the record
    assert audit.verify(s).ok


def test_live_allocations_go_on_while_an_import_runs(ledger, make_session):
    """Behaviour, not a timing threshold: live commits land between the import's chunks."""
    s, pool, _child, cust, _ = ledger
    rows = [f"dc1,{cust.uscc},198.18.{i // 256}.{i % 256}/32,,,," for i in range(6000)]
    stop, live_commits, errors = threading.Event(), [], []
    cust_id, pool_id = cust.id, pool.id

    def live():  # the same pool (its lock), addresses the file does not name
        ls = make_session()
        n = 0
        while not stop.is_set():
            try:
                n += 1
                prefix = f"198.18.{100 + n // 256}.{n % 256}"
                allocation.allocate(ls, pool_id, cust_id, prefix=prefix, actor="w")
                ls.commit()
                live_commits.append(time.monotonic())
            except Exception as exc:  # noqa: BLE001 - any failure is the finding
                ls.rollback()
                errors.append(repr(exc))
                return

    chunk_ends = []
    thread = threading.Thread(target=live)
    thread.start()
    try:
        report = bulk.import_allocations(
            s, _csv(*rows), actor="t", chunk_done=chunk_done(s), chunk=500,
            progress=lambda n: chunk_ends.append(time.monotonic()),
        )  # fmt: skip
    finally:
        stop.set()
        thread.join()
    assert errors == [] and report.errors == [] and report.imported == 6000
    between = [t for t in live_commits if chunk_ends[0] < t < chunk_ends[-1]]
    assert between, "no live allocation committed while the import was writing"
    held = s.scalars(select(Allocation.first).where(Allocation.valid_to.is_(None))).all()
    assert len(held) == len(set(held)) == 6000 + len(live_commits)
    assert audit.verify(s).ok


def test_an_unfinished_import_blocks_the_next_until_it_is_undone(ledger):
    s, pool, _child, cust, _ = ledger
    before = free_blocks(s, pool.id)

    def crash(n):
        raise KeyboardInterrupt  # as if the process were stopped between chunks

    with pytest.raises(KeyboardInterrupt):
        bulk.import_allocations(
            s, _csv(*[f"dc1,{cust.uscc},198.18.1.{i}/32,,,," for i in range(10)]),
            actor="t", chunk_done=chunk_done(s), chunk=4, progress=crash,
        )  # fmt: skip
    # The importer withdrew what it had written before giving up.
    assert _held(s) == 0 and free_blocks(s, pool.id) == before
    assert bulk.running(s) is None
