"""The audit log is append-only and tamper-evident."""

import json

from sqlalchemy import text

from ipam import allocation, audit, pools
from tests import factories as f


def _ledger(session):
    pool = f.pool(session, "198.18.0.0/24")
    cust = f.customer(session)
    for _ in range(3):
        allocation.allocate(session, pool, cust, actor="alice")
    session.commit()


def test_every_change_is_logged_and_chain_verifies(session):
    _ledger(session)
    result = audit.verify(session)
    assert result.ok and result.checked == 5
    actions = [r[0] for r in session.execute(text("SELECT action FROM audit_log ORDER BY seq"))]
    assert actions == ["pool.add", "customer.add"] + ["allocation.add"] * 3


def test_edited_row_is_detected(session):
    _ledger(session)
    session.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE seq = 3"))
    session.commit()
    result = audit.verify(session)
    assert not result.ok and result.seq == 3 and "altered" in result.problem


def test_deleted_row_is_detected(session):
    _ledger(session)
    session.execute(text("DELETE FROM audit_log WHERE seq = 2"))
    session.commit()
    result = audit.verify(session)
    assert not result.ok and result.seq == 2


def test_removed_tail_is_detected(session):
    _ledger(session)
    session.execute(text("DELETE FROM audit_log WHERE seq = 5"))
    session.commit()
    result = audit.verify(session)
    assert not result.ok and "removed" in result.problem


def test_rolled_back_change_leaves_no_entry(session):
    _ledger(session)
    pool = f.pool(session, "198.19.0.0/24")
    session.rollback()
    del pool
    assert audit.verify(session).checked == 5


def test_savepoint_rollback_drops_only_its_entries(session):
    f.pool(session, "198.18.0.0/24")
    with session.begin_nested():
        f.pool(session, "198.18.1.0/24")
    sp = session.begin_nested()
    f.pool(session, "198.18.2.0/24")
    inner = session.begin_nested()
    f.pool(session, "198.18.3.0/24")
    inner.commit()
    sp.rollback()  # drops 198.18.2.0/24 and the inner 198.18.3.0/24
    f.pool(session, "198.18.4.0/24")
    session.commit()
    rows = session.execute(text("SELECT action, data FROM audit_log ORDER BY seq")).all()
    prefixes = [(r[1] if isinstance(r[1], dict) else json.loads(r[1]))["prefix"] for r in rows]
    assert prefixes == ["198.18.0.0/24", "198.18.1.0/24", "198.18.4.0/24"]
    assert audit.verify(session).ok


def test_entries_are_written_at_commit_in_one_step(session):
    pool = f.pool(session, "198.18.0.0/24")
    cust = f.customer(session)
    allocation.allocate(session, pool, cust, actor="bob")
    # nothing is in the log until the transaction commits
    assert session.execute(text("SELECT count(*) FROM audit_log")).scalar() == 0
    session.commit()
    assert session.execute(text("SELECT count(*) FROM audit_log")).scalar() == 3
    assert session.execute(text("SELECT seq FROM audit_head")).scalar() == 3


def test_a_transaction_with_thousands_of_entries_is_chained_and_verifies(session):
    """PostgreSQL takes at most 65,535 values per statement: big transactions must still work."""
    audit_module = audit
    pool = pools.add_pool(session, "198.18.0.0/16", "big", actor="test")
    for i in range(audit_module.PG_ROWS_PER_STATEMENT * 8):
        audit_module.record(session, "test", "bulk.touch", pool, {"i": i})
    session.commit()
    result = audit_module.verify(session)
    assert result.ok and result.checked == audit_module.PG_ROWS_PER_STATEMENT * 8 + 1


def test_a_single_entry_is_chained_by_the_database_as_python_chains_it(session):
    """A transaction of one entry is chained in one statement (on PostgreSQL the database
    hashes it, audit._PG_APPEND_ONE): the stored hash must be the one Python computes over
    the stored fields, whatever the text holds (Chinese, quotes, escapes, emoji, NUL-free
    control characters), and the chain must verify across single and many-entry commits."""
    pool = pools.add_pool(session, "198.18.0.0/16", "单条", actor="测试员")
    session.commit()
    odd = {"名称": '北京"云帆"\\网络', "note": "line\nbreak\ttab \u2028 😀", "n": 7, "none": None}
    for i in range(3):
        audit.record(session, f"测试员 {i}", "pool.touch", pool, {**odd, "i": i})
        session.commit()  # one entry per transaction: the one-statement path
    audit.record(session, "x", "pool.touch", pool, {"i": 3})
    audit.record(session, "y", "pool.touch", pool, {"i": 4})
    session.commit()  # two entries: chained in Python
    from sqlalchemy import select

    from ipam.models import AuditLog

    rows = session.execute(select(AuditLog).order_by(AuditLog.seq)).scalars().all()
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5, 6]
    for r in rows:
        expected = audit._digest(
            r.prev_hash, r.seq, r.recorded_at, r.actor, r.action, r.object_type, r.object_id,
            r.data,
        )  # fmt: skip
        assert r.hash == expected, r.seq
    assert rows[3].data["名称"] == odd["名称"] and rows[3].data["note"] == odd["note"]
    head = session.execute(text("SELECT seq, last_hash FROM audit_head")).one()
    assert tuple(head) == (6, rows[-1].hash)
    assert audit.verify(session).ok
