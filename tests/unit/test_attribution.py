"""Who held an address at an instant, as they were then (invariant 3)."""

import pytest
from sqlalchemy import select

from ipam import allocation, attribution, customers, leasing, reclamation
from ipam.errors import ValidationError
from ipam.models import AuditLog
from tests import factories as f

T0 = "2026-01-01T00:00:00Z"


@pytest.fixture
def history(session):
    pool = f.pool(session, "198.18.7.0/24")
    old = f.customer(session, at="2025-01-01T00:00:00Z")
    new = f.customer(session, at="2025-01-01T00:00:00Z")
    a1 = allocation.allocate(
        session, pool, old, prefix="198.18.7.0/25", actor="t", at="2025-06-01T00:00:00Z"
    )
    s1 = f.sublessee(session, old, at="2025-06-01T00:00:00Z")
    leasing.sublease(session, a1, s1, prefix="198.18.7.8/29", actor="t", at="2025-07-01T00:00:00Z")
    customers.update_customer(
        session,
        old,
        {"contacts": [{"name": "李娜", "phone": "13900139000", "email": "new@example.com"}]},
        actor="t",
        at="2026-02-01T00:00:00Z",
    )
    leasing.update_sublessee(
        session, s1, {"contact_person": "王五"}, actor="t", at="2026-02-02T00:00:00Z"
    )
    reclamation.reclaim(
        session, old, reason="spam", actor="t", at="2026-03-01T00:00:00Z", quarantine_days=10
    )
    reclamation.release_quarantine(session, actor="t", at="2026-03-20T00:00:00Z")
    a2 = allocation.allocate(
        session, pool, new, prefix="198.18.7.0/26", actor="t", at="2026-04-01T00:00:00Z"
    )
    session.commit()
    return {"old": old, "new": new, "a1": a1, "a2": a2, "s1": s1}


def test_old_answer_survives_later_changes(session, history):
    r = attribution.attribution(session, "198.18.7.9", T0)
    assert r.status == "subleased"
    assert r.customer["id"] == history["old"].id
    assert [c["name"] for c in r.customer["contacts"]] == ["张伟"]
    assert r.sublessee["contact_person"] == "赵敏"
    assert r.allocation["prefix"] == "198.18.7.0/25"
    assert r.allocation["end_reason"] == "reclaimed"
    assert r.sublease["prefix"] == "198.18.7.8/29"


def test_each_period_has_its_holder(session, history):
    q = attribution.attribution(session, "198.18.7.9", "2026-03-10T00:00:00Z")
    assert q.status == "quarantined" and q.quarantine["allocation_id"] == history["a1"].id
    free = attribution.attribution(session, "198.18.7.9", "2026-03-25T00:00:00Z")
    assert free.status == "free" and free.pool["prefix"] == "198.18.7.0/24"
    now = attribution.attribution(session, "198.18.7.9")
    assert now.status == "allocated" and now.customer["id"] == history["new"].id
    before = attribution.attribution(session, "198.18.7.9", "2025-05-01T00:00:00Z")
    assert before.status == "free"
    unmanaged = attribution.attribution(session, "198.19.0.1", T0)
    assert unmanaged.status == "unmanaged"
    # the edge of the interval: valid_to is exclusive
    edge = attribution.attribution(session, "198.18.7.9", "2026-03-01T00:00:00Z")
    assert edge.status == "quarantined"
    just_before = attribution.attribution(session, "198.18.7.9", "2026-02-28T23:59:59Z")
    assert just_before.customer["id"] == history["old"].id
    assert [c["name"] for c in just_before.customer["contacts"]] == ["李娜"]
    assert just_before.sublessee["contact_person"] == "王五"


def test_mapped_address_and_masking(session, history):
    r = attribution.attribution(session, "::ffff:198.18.7.9", T0)
    assert r.address == "198.18.7.9"
    masked = r.masked()
    assert "*" in masked.customer["contacts"][0]["phone"]
    assert "*" in masked.sublessee["id_number"]
    assert "*" not in r.sublessee["id_number"]  # masking copies, never edits


def test_reveal_is_audited(session, history):
    with pytest.raises(ValidationError) as err:
        attribution.reveal(session, "198.18.7.9", T0, actor="auditor", reason="")
    assert err.value.field == "reason"
    attribution.reveal(session, "198.18.7.9", T0, actor="auditor", reason="PSB request 42")
    session.commit()
    last = session.execute(select(AuditLog).order_by(AuditLog.seq.desc())).scalars().first()
    assert last.action == "attribution.reveal" and last.actor == "auditor"


@pytest.mark.parametrize(
    "addr,at,field",
    [
        ("198.18.7.0/24", T0, "address"),
        ("nonsense", T0, "address"),
        ("198.18.7.9", "yesterday", "at"),
        ("198.18.7.9", "2026-01-01T00:00:00", "at"),
    ],
)
def test_bad_question(session, addr, at, field):
    with pytest.raises(ValidationError) as err:
        attribution.attribution(session, addr, at)
    assert err.value.field == field


def test_ipv6_attribution(session):
    pool = f.pool(session, "2001:db8::/32")
    cust = f.customer(session)
    a = allocation.allocate(session, pool, cust, prefixlen=64, actor="t")
    session.commit()
    r = attribution.attribution(session, "2001:db8::abcd")
    assert r.allocation["id"] == a.id and r.customer["id"] == cust.id


def test_batch_answers_equal_single_answers(session, history):
    v6 = f.pool(session, "2001:db8::/32")
    allocation.allocate(session, v6, history["new"], prefixlen=64, actor="t")
    session.commit()
    times = ["2025-05-01T00:00:00Z", T0, "2026-03-10T00:00:00Z", "2026-03-25T00:00:00Z", None]
    addrs = ["198.18.7.9", "198.18.7.200", "198.19.0.1", "2001:db8::5", "2001:db9::1"]
    questions = [(a, t) for a in addrs for t in times]
    single = [attribution.attribution(session, a, t).as_dict() for a, t in questions]
    batch = [r.as_dict() for r in attribution.attribute_many(session, questions, chunk=7)]
    # "now" differs by microseconds between the two calls; compare the rest
    for one, many in zip(single, batch, strict=True):
        assert {k: v for k, v in one.items() if k != "at"} == {
            k: v for k, v in many.items() if k != "at"
        }
    statuses = {r["status"] for r in batch}
    assert statuses == {"free", "subleased", "quarantined", "allocated", "unmanaged"}


def test_a_prefix_length_new_since_the_last_question_is_found(session, make_session):
    """PostgreSQL single lookups keep the prefix lengths of earlier questions; a length
    added since (another session's first /29) must still be asked for, not missed."""
    pool = f.pool(session, "198.18.8.0/24")
    c = f.customer(session, at="2025-01-01T00:00:00Z")
    allocation.allocate(session, pool, c, prefix="198.18.8.0/25", actor="t",
                        at="2025-06-01T00:00:00Z")  # fmt: skip
    session.commit()
    pool_id = pool.id
    assert attribution.attribution(session, "198.18.8.1").status == "allocated"
    assert attribution.attribution(session, "198.18.8.200").status == "free"  # lengths kept
    session.rollback()  # (SQLite: the other session writes next)
    other = make_session()
    d = f.customer(other, at="2025-01-01T00:00:00Z")
    a = allocation.allocate(other, pool_id, d, prefix="198.18.8.200/29", actor="t",
                            at="2025-07-01T00:00:00Z")  # fmt: skip
    other.commit()
    r = attribution.attribution(session, "198.18.8.201")
    assert r.status == "allocated" and r.allocation["id"] == a.id
    assert r.customer["id"] == d.id
