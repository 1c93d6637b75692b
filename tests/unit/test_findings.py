"""The probe rules against the demo ledger, with observations as probes/ hands them over."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from netaddr import IPAddress
from sqlalchemy import select

from ipam import demo, findings, probing
from ipam.errors import IpamError, StateConflict, ValidationError
from ipam.models import Customer, Finding, FindingKind, ProbeObservation, ProbeSchedule
from probes.dnscheck import Listing, ReverseResult
from probes.sweep import Observation

QUARANTINED = "198.19.10.0/24"  # 深圳远航 exited in the demo; its block cools down

NOW = datetime.now(UTC)


def ip(text: str) -> int:
    return int(IPAddress(text))


def obs(text: str, answered: bool = True, method: str = "icmp") -> Observation:
    return Observation(4, ip(text), method, answered, 0.4 if answered else None, NOW)


@pytest.fixture
def ledger(session):
    demo.seed(session, echo=lambda *_: None)
    session.commit()
    return session


def schedule(s, name: str) -> int:
    return s.execute(select(ProbeSchedule.id).where(ProbeSchedule.name == name)).scalar_one()


def customer(s, prefix: str) -> int:
    return s.execute(select(Customer.id).where(Customer.name.startswith(prefix))).scalar_one()


def record(s, name, observations=(), reverse=(), listings=()):
    run = probing.start_run(s, schedule(s, name), trigger="manual", actor="test")
    done = findings.record_results(s, run.id, list(observations), reverse, listings)
    s.commit()
    return done


def probed():
    """The demo's sites register raises findings of its own (clauses 2-4); these tests are
    about what the probes find."""
    sites = [k for k in FindingKind if k.value.startswith("site_")]
    return select(Finding).where(Finding.kind.not_in(sites))


def found(s) -> set[tuple]:
    return {
        (f.kind.value, f.prefix, f.customer_id)
        for f in s.execute(probed().where(Finding.status == "open")).scalars()
    }


def test_answering_space_is_judged_by_its_history(ledger):
    s = ledger
    run = record(
        s,
        "DC1 sweep",
        [obs("198.18.9.20"), obs("198.18.7.200"), obs("198.18.7.5"), obs("198.18.7.6", False)],
    )
    assert run.status == "done" and run.answered == 3 and run.findings_raised == 2
    assert found(s) == {
        # Never allocated: the covering /24, with the answering address inside.
        ("unallocated_in_use", "198.18.9.0/24", None),
        # 198.18.7.0/24 was 北京云帆's until its reclamation; 198.18.7.5 is 上海星河's now.
        ("reclaimed_in_use", "198.18.7.0/24", customer(s, "北京云帆")),
    }
    run = record(s, "DC2 sweep", [obs("198.19.10.5")])
    quarantined = {(p, c) for k, p, c in found(s) if k == "quarantined_in_use"}
    assert quarantined == {(QUARANTINED, customer(s, "深圳远航"))}


def test_a_repeat_updates_the_open_finding_and_a_resolved_one_reopens_anew(ledger):
    s = ledger
    record(s, "DC1 sweep", [obs("198.18.9.20")])
    record(s, "DC1 sweep", [obs("198.18.9.20")])
    (f,) = s.execute(probed()).scalars()
    # The block's evidence keeps the latest observation of each answering address.
    assert f.count == 2 and len(f.evidence) == 1 and f.last_seen >= f.first_seen
    with pytest.raises(ValidationError) as exc:
        findings.resolve_finding(s, f.id, "  ", actor="user:engineer")
    assert exc.value.field == "comment"
    s.rollback()
    findings.resolve_finding(s, f.id, "server moved into an allocation", actor="user:engineer")
    s.commit()
    with pytest.raises(StateConflict):
        findings.resolve_finding(s, f.id, "again", actor="user:engineer")
    s.rollback()
    record(s, "DC1 sweep", [obs("198.18.9.20")])
    rows = s.execute(probed().order_by(Finding.id)).scalars().all()
    assert [(r.status, r.count) for r in rows] == [("resolved", 2), ("open", 1)]


def test_unheld_space_that_answers_is_one_finding_per_block(ledger):
    """A used /24 of never-allocated space is one finding listing its 256 addresses."""
    s = ledger
    answering = [obs(f"198.18.9.{i}") for i in range(256)] + [obs("198.18.10.7")]
    run = record(s, "DC1 sweep", answering)
    assert run.answered == 257 and run.findings_raised == 2
    blocks = {
        f.prefix: f
        for f in s.execute(probed().where(Finding.kind == "unallocated_in_use")).scalars()
    }
    assert set(blocks) == {"198.18.9.0/24", "198.18.10.0/24"}
    inside = [e["address"] for e in blocks["198.18.9.0/24"].evidence]
    assert sorted(inside, key=lambda a: int(a.rsplit(".", 1)[1])) == [
        f"198.18.9.{i}" for i in range(256)
    ]
    assert blocks["198.18.9.0/24"].summary.startswith("198.18.9.0, 198.18.9.1, 198.18.9.2 and 253")
    assert [e["address"] for e in blocks["198.18.10.0/24"].evidence] == ["198.18.10.7"]
    # The next run adds what answers anew to the open finding and raises nothing new.
    run = record(s, "DC1 sweep", [obs("198.18.10.9")])
    assert run.findings_raised == 0
    s.refresh(blocks["198.18.10.0/24"])
    assert [e["address"] for e in blocks["198.18.10.0/24"].evidence] == [
        "198.18.10.9", "198.18.10.7",
    ]  # fmt: skip


def test_a_held_block_is_dark_only_after_n_silent_runs(ledger):
    s = ledger
    qingmu = [obs(f"198.19.4.{i}", False) for i in range(16)]
    xinghe = [obs("198.19.0.1")] + [obs(f"198.19.0.{i}", False) for i in range(2, 40)]
    record(s, "DC2 sweep", qingmu + xinghe)  # dark_after is 2 in the demo
    assert not any(k == "allocated_dark" for k, *_ in found(s))
    record(s, "DC2 sweep", qingmu + xinghe)
    dark = {(p, c) for k, p, c in found(s) if k == "allocated_dark"}
    assert dark == {("198.19.4.0/28", customer(s, "杭州青木"))}
    # Held-space probes are kept (the evidence for the next run); free space is not.
    kept = s.execute(select(ProbeObservation.answered)).scalars().all()
    assert len(kept) == 2 * (16 + 39)


def test_one_answer_in_between_restarts_the_count(ledger):
    s = ledger
    silent = [obs(f"198.19.4.{i}", False) for i in range(16)]
    record(s, "DC2 sweep", silent)
    record(s, "DC2 sweep", [obs("198.19.4.3")] + silent[4:])
    record(s, "DC2 sweep", silent)
    assert not any(k == "allocated_dark" for k, *_ in found(s))
    record(s, "DC2 sweep", silent)
    assert any(k == "allocated_dark" for k, *_ in found(s))


def test_ptr_names_are_checked_against_the_holders_at_the_time(ledger):
    s = ledger
    xinghe = customer(s, "上海星河")
    reverse = [
        # 李明 (sublessee of 上海星河 for 198.18.7.9) registered liming-blog.example.
        ReverseResult(4, ip("198.18.7.9"), ("www.liming-blog.example",), True, (ip("198.18.7.9"),)),
        ReverseResult(4, ip("198.18.7.1"), ("gw.xinghe.example",), True, (ip("198.18.7.1"),)),
        # The same sublessee's domain on another of 上海星河's addresses is no registration.
        ReverseResult(4, ip("198.18.7.2"), ("x.liming-blog.example",), True, (ip("198.18.7.2"),)),
        ReverseResult(4, ip("198.18.7.10"), ("shop.unknown.example",), True, (ip("198.18.7.10"),)),
        ReverseResult(4, ip("198.18.7.11"), ("mail.xinghe.example",), False, (ip("198.18.7.99"),)),
        ReverseResult(4, ip("198.18.7.12"), (), None),
        # Unheld space: nobody to hold to account for a PTR there.
        ReverseResult(4, ip("198.18.9.20"), ("squat.example",), True, (ip("198.18.9.20"),)),
    ]
    record(s, "DC1 sweep", reverse=reverse)
    assert found(s) == {
        ("ptr_unregistered", "198.18.7.2", xinghe),
        ("ptr_unregistered", "198.18.7.10", xinghe),
        ("ptr_mismatch", "198.18.7.11", xinghe),
    }
    (f,) = s.execute(
        select(Finding).where(Finding.first == Finding.last, Finding.summary.contains("7.10 "))
    ).scalars()
    assert f.summary.endswith("registered by 上海星河数据服务有限公司")


def test_blocklist_error_answers_are_not_listings(ledger):
    s = ledger
    listings = [
        Listing(4, ip("198.18.7.12"), "bl.lab.test", True, ("127.0.0.2",), "spam source"),
        Listing(4, ip("198.18.7.13"), "bl.lab.test", False, (), "", "error answer 127.255.255.254"),
        Listing(4, ip("198.18.7.14"), "bl.lab.test", False),
    ]
    record(s, "DC1 sweep", listings=listings)
    assert found(s) == {("blocklisted", "198.18.7.12", customer(s, "上海星河"))}
    details = s.execute(select(ProbeObservation.detail).order_by(ProbeObservation.id)).scalars()
    assert list(details) == [
        "bl.lab.test: 127.0.0.2 spam source",
        "bl.lab.test: error answer 127.255.255.254",
    ]


def test_schedule_input_is_checked_field_by_field(ledger):
    s = ledger
    dc1 = {"name": "x", "pool": "Beijing DC1", "cron": "*/5 * * * *"}
    bad = [
        ({**dc1, "cron": "every minute"}, "cron"),
        ({**dc1, "methods": ["icmp", "telnet"]}, "methods"),
        ({**dc1, "methods": ["tcp"]}, "tcp_ports"),
        ({**dc1, "methods": ["tcp"], "tcp_ports": [0]}, "tcp_ports"),
        ({**dc1, "customer": "上海星河数据服务有限公司"}, "pool"),
        ({"name": "x", "cron": "* * * * *"}, "pool"),
        ({**dc1, "name": "DC1 sweep"}, "name"),
        ({**dc1, "dark_after": 0}, "dark_after"),
        ({**dc1, "pool": "no such pool"}, "pool"),
        ({**dc1, "colour": "red"}, "colour"),
    ]
    before = s.execute(select(ProbeSchedule.id)).scalars().all()
    for data, field in bad:
        with pytest.raises(IpamError) as exc:  # ValidationError, or NotFound for the pool
            probing.add_schedule(s, data, actor="test")
        assert exc.value.field == field, (data, exc.value)
        s.rollback()
    assert s.execute(select(ProbeSchedule.id)).scalars().all() == before
    ok = probing.add_schedule(
        s,
        {**dc1, "cron": "*/2 * * * * *", "methods": "icmp tcp", "tcp_ports": "443, 22"},
        actor="test",
    )
    assert ok.methods == ["icmp", "tcp"] and ok.tcp_ports == [22, 443]


def test_run_now_is_queued_once(ledger):
    s = ledger
    run = probing.request_run(s, "DC1 sweep", actor="user:engineer")
    s.commit()
    with pytest.raises(StateConflict):
        probing.request_run(s, "DC1 sweep", actor="user:engineer")
    s.rollback()
    assert probing.claim_queued(s) == [run.id]
    assert probing.claim_queued(s) == []
    s.commit()


def test_plans_sweep_ipv4_pools_whole_and_ipv6_by_held_blocks(ledger):
    s = ledger
    run = probing.start_run(s, schedule(s, "DC1 sweep"), trigger="manual", actor="test")
    plan = probing.plan_run(s, run.id)
    assert len(plan.targets[4]) == 65536 and ip("198.18.7.9") in plan.held[4]
    run = probing.start_run(s, schedule(s, "星河 IPv6"), trigger="manual", actor="test")
    plan = probing.plan_run(s, run.id)
    # a /48 and three /64s, the first 256 addresses of each
    assert len(plan.targets[6]) == 4 * 256
    s.rollback()
