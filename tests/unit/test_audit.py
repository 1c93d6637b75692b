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
