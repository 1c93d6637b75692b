"""The abuse desk beyond intake: bulk and streamed intake, maildir polling, probe hits,
reminders and overdue escalation, and clause 16 incidents (clock, log, evidence, export)."""

from __future__ import annotations

import email
import email.policy
import hashlib
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ipam import audit, demo
from ipam.abuse import cases, incidents, ingest, notify
from ipam.db import chunk_done
from ipam.errors import StateConflict, ValidationError
from ipam.models import (
    AbuseCase,
    AbuseCaseEvent,
    AbuseReport,
    AbuseReportCase,
    AuditLog,
    Customer,
    IncidentAction,
    IncidentEvidence,
    RejectedReport,
    Sanction,
)
from probes.dnscheck import Listing

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "abuse"
NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


@pytest.fixture
def ledger(session):
    demo.seed(session, echo=lambda *_: None, abuse=False)
    session.commit()
    return session


def count(s, model) -> int:
    return s.scalar(select(func.count()).select_from(model))


def case_shape(s) -> list[tuple]:
    """Every case with its holder and its reports' lines: what intake decided."""
    rows = s.execute(
        select(
            AbuseCase.customer_id,
            AbuseCase.sublessee_id,
            AbuseCase.category,
            AbuseCase.prefixlen,
            AbuseCase.report_count,
            AbuseCase.first_event_at,
            AbuseCase.last_event_at,
        )
    ).all()
    return sorted((c, sub or 0, cat.value, p, n, f, last) for c, sub, cat, p, n, f, last in rows)


CSV = (
    "address,time,category,description,reporter\n"
    "198.18.7.9,2026-01-01T10:00:00+08:00,spam,a,x@example.org\n"
    "198.18.7.9,2026-01-02T10:00:00+08:00,spam,b,x@example.org\n"  # joins a (1 day apart)
    "198.18.7.9,2026-01-03T10:00:00+08:00,spam,c,x@example.org\n"
    "198.18.7.9,2026-07-02T10:00:00+08:00,spam,d,x@example.org\n"  # the next holder
    "198.18.7.9,2026-07-02T10:00:00+08:00,spam,d,x@example.org\n"  # the same line again
    "bogus,2026-07-02T10:00:00+08:00,spam,e,x@example.org\n"
    "198.19.0.1,2026-11-20T10:00:00+08:00,malware,f,x@example.org\n"
    "198.18.9.20,2026-11-01T00:00:00+08:00,attack,g,x@example.org\n"
)


def test_streamed_intake_in_small_chunks_decides_as_one_batch(ledger, monkeypatch):
    s = ledger
    whole = ingest.ingest(s, CSV.encode(), actor="test", kind="csv", now=NOW)
    expected = case_shape(s)
    counts = (whole.stored, whole.duplicates, whole.rejected_count, whole.cases_opened)
    assert counts == (6, 1, 1, 3)  # 198.18.9.20 was never allocated: kept, no case
    s.rollback()
    monkeypatch.setattr(ingest, "CHUNK", 2)  # cases must carry across chunk boundaries
    streamed = ingest.ingest_stream(
        s, io.BytesIO(CSV.encode()), actor="test", now=NOW, chunk_done=chunk_done(s)
    )
    s.commit()
    assert (
        streamed.stored,
        streamed.duplicates,
        streamed.rejected_count,
        streamed.cases_opened,
    ) == counts
    assert case_shape(s) == expected
    # Three reports a day apart make one case of 3; the July one goes to the next holder.
    assert sorted(n for *_rest, n, _f, _l in expected) == [1, 1, 3]
    (bad,) = s.execute(select(RejectedReport)).scalars()
    assert (bad.field, bad.reason) == ("address", "line 7: 'bogus' is not a valid IPv4 or "
                                       "IPv6 address or prefix")  # fmt: skip
    # Every report and every case opened is in the audit chain, and it verifies.
    assert audit.verify(s).ok
    logged = dict(s.execute(select(AuditLog.action, func.count()).group_by(AuditLog.action)).all())
    assert (logged["abuse_report.ingest"], logged["abuse_case.open"]) == (6, 3)
    assert count(s, AbuseReport) == 6 and count(s, AbuseReportCase) == 5


def test_a_stream_run_again_stores_only_what_is_new(ledger, monkeypatch):
    s = ledger
    monkeypatch.setattr(ingest, "CHUNK", 3)
    first = ingest.ingest_stream(
        s, io.BytesIO(CSV.encode()), actor="test", now=NOW, chunk_done=chunk_done(s)
    )
    s.commit()
    more = CSV + "198.19.0.1,2026-11-21T10:00:00+08:00,malware,h,x@example.org\n"
    again = ingest.ingest_stream(
        s, io.BytesIO(more.encode()), actor="test", now=NOW, chunk_done=chunk_done(s)
    )
    s.commit()
    assert (first.stored, again.stored, again.duplicates) == (6, 1, 7)
    malware = s.execute(select(AbuseCase).where(AbuseCase.category == "malware")).scalar_one()
    assert malware.report_count == 2  # joined, not a new case


class _Breaks:
    """A file that fails (a disk error) after its first `lines` lines."""

    def __init__(self, raw: bytes, lines: int):
        self._lines = io.BytesIO(raw).readlines()
        self._left = lines

    def readline(self):
        return self._next()

    def __iter__(self):
        while True:
            yield self._next()

    def _next(self):
        if self._left == 0:
            raise OSError("the disk went away")
        self._left -= 1
        return self._lines.pop(0) if self._lines else b""


@pytest.mark.parametrize("read_ahead", [True, False])
def test_a_stream_that_fails_midway_keeps_its_chunks_and_raises(ledger, monkeypatch, read_ahead):
    """On PostgreSQL the next chunk is read in a thread (ingest._ReadAhead): a failure there
    is raised in the caller as it is without the thread, the chunks already kept stay, and
    the thread does not outlive the call."""
    import threading

    s = ledger
    monkeypatch.setattr(ingest, "CHUNK", 2)
    monkeypatch.setattr(ingest, "READ_AHEAD", read_ahead)
    with pytest.raises(OSError, match="the disk went away"):
        ingest.ingest_stream(
            s, _Breaks(CSV.encode(), lines=6), actor="test", now=NOW, chunk_done=chunk_done(s)
        )
    s.rollback()
    assert count(s, AbuseReport) == 4  # two chunks of two kept; the rest never read
    assert not [t for t in threading.enumerate() if t.name == "ipam-intake-read"]
    assert audit.verify(s).ok


def test_a_stream_with_a_bad_header_is_rejected_whole(ledger):
    s = ledger
    raw = b"ip,when\n198.18.7.9,2026-01-01\n"
    result = ingest.ingest_stream(
        s, io.BytesIO(raw), actor="test", now=NOW, chunk_done=chunk_done(s)
    )
    (row,) = result.rejected
    assert (row.field, row.raw, count(s, AbuseReport)) == ("csv", raw, 0)
    assert "address" in row.reason and "time" in row.reason


def maildir(root: Path) -> Path:
    for sub in ("new", "cur", "tmp"):
        (root / sub).mkdir(parents=True)
    return root


def test_polling_a_maildir_ingests_new_mail_once_and_files_it(ledger, tmp_path):
    s = ledger
    box = maildir(tmp_path / "abuse")
    (box / "new" / "1.a").write_bytes(sample("arf-spam.eml"))
    (box / "new" / "2.b").write_bytes(sample("xarf-0.2.eml"))
    broken = b"From: a@b.example\nSubject: hi\n\nplain mail\n"
    (box / "new" / "3.c").write_bytes(broken)
    result = ingest.poll_maildir(s, box, actor="scheduler:maildir", chunk_done=chunk_done(s))
    assert (result.stored, result.rejected_count) == (2, 1)
    assert sorted(p.name for p in (box / "new").iterdir()) == []
    assert sorted(p.name for p in (box / "cur").iterdir()) == ["1.a:2,S", "2.b:2,S", "3.c:2,S"]
    assert s.execute(select(RejectedReport.raw)).scalar_one() == broken
    (box / "new" / "4.d").write_bytes(sample("arf-spam.eml"))  # the same report again
    again = ingest.poll_maildir(s, box, actor="scheduler:maildir", chunk_done=chunk_done(s))
    assert (again.stored, again.duplicates) == (0, 1)
    with pytest.raises(ValidationError) as err:
        ingest.poll_maildir(s, tmp_path, actor="scheduler:maildir", chunk_done=chunk_done(s))
    assert err.value.field == "maildir"


def test_probe_blocklist_hits_become_reports_on_the_holders_case(ledger):
    s = ledger
    at = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
    addr = int.from_bytes(bytes([198, 18, 7, 12]), "big")  # 上海星河's, in the demo
    hit = Listing(4, addr, "bl.lab.test", True, ("127.0.0.2",), "spam source")
    miss = Listing(4, addr + 1, "bl.lab.test", False, (), "", "127.255.255.254")
    first = ingest.from_listings(s, [hit, miss], at=at, actor="probe-run:1")
    later_same_day = ingest.from_listings(s, [hit], at=at + timedelta(hours=2), actor="probe-run:2")
    next_day = ingest.from_listings(s, [hit], at=at + timedelta(days=1), actor="probe-run:3")
    assert (first.stored, later_same_day.duplicates, next_day.stored) == (1, 1, 1)
    (case,) = s.execute(select(AbuseCase)).scalars()
    assert (s.get(Customer, case.customer_id).name, case.report_count) == (
        "上海星河数据服务有限公司",
        2,
    )
    sources = s.execute(select(AbuseReport.source, AbuseReport.reporter)).all()
    assert set(sources) == {("probe", "blocklist bl.lab.test")}


def notified_case(s, at):
    ingest.ingest(s, sample("xarf-v4.json"), actor="test", now=at)  # 198.19.0.1, malware: 24 h
    case = s.execute(select(AbuseCase)).scalar_one()
    case.opened_at = at
    case.deadline = at + timedelta(hours=24)
    cases.transition(s, case.id, "notify", actor="user:engineer", at=at)
    s.commit()
    return case


def test_a_reminder_goes_out_once_before_the_deadline_then_overdue_goes_up_the_ladder(ledger, smtp):
    inbox, port = smtp
    s = ledger
    case = notified_case(s, NOW)
    send = notify.smtp("127.0.0.1", port)
    kw = {"send": send, "sender": "abuse@provider.example"}
    assert notify.remind_cases(s, now=NOW + timedelta(hours=12), **kw) == []  # half time: not yet
    assert notify.remind_cases(s, now=NOW + timedelta(hours=19), **kw) == [case]
    assert notify.remind_cases(s, now=NOW + timedelta(hours=20), **kw) == []  # once
    s.commit()
    ((rcpts, content),) = inbox.messages
    mail = email.message_from_bytes(content, policy=email.policy.default)
    assert rcpts == ["noc@xinghe.example"]
    assert mail["Subject"] == f"[abuse case {case.id}] reminder: answer by 2026-12-01 08:00 UTC"
    # Past the deadline, unanswered: a warning, confirmed at once, and the case escalated.
    assert notify.escalate_overdue(s, now=NOW + timedelta(hours=23)) == []
    (warning,) = notify.escalate_overdue(s, now=NOW + timedelta(hours=25))
    assert (warning.kind.value, warning.status, case.state) == ("warning", "confirmed", "escalated")
    # A second unanswered case: the next rung is only proposed; the scheduler cannot confirm it.
    cases.transition(s, case.id, "resolve", actor="user:engineer", comment="warned")
    ingest.ingest(s, sample("xarf-v4.json").replace(b"C2", b"C2 again"), actor="test", now=NOW)
    second = s.execute(select(AbuseCase).where(AbuseCase.state == "open")).scalar_one()
    cases.transition(s, second.id, "notify", actor="user:engineer")
    second.deadline = NOW
    (suspension,) = notify.escalate_overdue(s, now=NOW + timedelta(hours=1))
    assert (suspension.kind.value, suspension.status) == ("suspension", "proposed")
    with pytest.raises(ValidationError):
        cases.confirm_sanction(s, suspension.id, actor="scheduler")
    assert notify.escalate_overdue(s, now=NOW + timedelta(hours=2)) == []  # one waits already
    events = s.scalars(
        select(AbuseCaseEvent.action)
        .where(AbuseCaseEvent.case_id == case.id)
        .order_by(AbuseCaseEvent.id)  # PostgreSQL gives no order unless asked
    ).all()
    assert events == ["notify", "reminder", "escalate", "resolve"]


def test_a_reminder_that_cannot_be_sent_is_tried_again(ledger):
    s = ledger
    case = notified_case(s, NOW)
    dead = notify.smtp("127.0.0.1", 9, timeout=2)  # discard port: nothing listens
    kw = {"sender": "abuse@provider.example", "now": NOW + timedelta(hours=20)}
    assert notify.remind_cases(s, send=dead, **kw) == []
    sent = []
    assert notify.remind_cases(s, send=sent.append, **kw) == [case]
    assert len(sent) == 1


def test_an_incident_from_a_case_freezes_its_reports_and_keeps_the_clock(ledger, smtp):
    inbox, port = smtp
    s = ledger
    case = notified_case(s, NOW)
    for hours, reason in ((1, "between 2 and 24"), (25, "between 2 and 24"), ("x", "whole")):
        with pytest.raises(ValidationError) as err:
            incidents.declare(
                s, title="t", category="malware", hours=hours, case=case.id, actor="user:engineer"
            )
        assert err.value.field == "hours" and reason in err.value.message
    with pytest.raises(ValidationError) as err:
        incidents.declare(s, title="t", category="weather", actor="user:engineer")
    assert err.value.field == "category"
    assert count(s, IncidentEvidence) == 0  # refused input wrote nothing
    incident = incidents.declare(
        s,
        title="C2 beacon from 198.19.0.1",
        category="malware",
        hours=4,
        case=case.id,
        description="botnet controller on a customer's server",
        actor="user:engineer",
        at=NOW,
    )
    s.commit()
    (ev,) = s.scalars(select(IncidentEvidence)).all()
    report = s.scalars(select(AbuseReport)).one()
    assert (ev.sha256, bytes(ev.raw)) == (report.sha256, bytes(report.raw))
    assert hashlib.sha256(ev.raw).hexdigest() == ev.sha256
    (held,) = ev.holder["holders"]
    assert held["customer"]["name"] == "上海星河数据服务有限公司"
    assert incident.deadline == NOW + timedelta(hours=4)
    assert incidents.freeze(s, incident.id, [report.id], actor="user:engineer") == []  # once
    incidents.log_action(s, incident.id, "measure", "null-routed at the edge", actor="user:eng")
    with pytest.raises(ValidationError):
        incidents.log_action(s, incident.id, "party", "x", actor="user:eng")

    staff = ["soc@provider.example"]
    send = notify.smtp("127.0.0.1", port)
    kw = {"send": send, "sender": "abuse@provider.example", "to": staff}
    stages = []
    for minutes in (30, 121, 125, 181, 200, 241, 300):
        sent = incidents.remind(s, now=NOW + timedelta(minutes=minutes), **kw)
        stages.append((minutes, len(sent)))
    assert stages == [(30, 0), (121, 1), (125, 0), (181, 1), (200, 0), (241, 1), (300, 0)]
    subjects = [
        email.message_from_bytes(c, policy=email.policy.default)["Subject"]
        for _r, c in inbox.messages
    ]
    assert [x.split("] ")[1].split(":")[0] for x in subjects] == [
        "half time",
        "one hour left",
        "deadline passed",
    ]
    assert all(r == staff for r, _c in inbox.messages)
    with pytest.raises(StateConflict):
        incidents.close(s, incident.id, "done", actor="user:eng")  # not reported yet
    incidents.mark_reported(
        s,
        incident.id,
        reported_to="市公安局网安支队",
        text="phoned and mailed the report",
        actor="user:eng",
        at=NOW + timedelta(hours=5),
    )
    assert incidents.remind(s, now=NOW + timedelta(hours=6), **kw) == []  # reported: quiet
    incidents.close(s, incident.id, "host rebuilt", actor="user:eng")
    s.commit()
    data = incidents.export(s, incident.id)
    assert data["reported_on_time"] is False
    kinds = [a["kind"] for a in data["actions"]]
    assert kinds == ["declare", "evidence", "measure", "reminder", "reminder", "reminder",
                     "report", "close"]  # fmt: skip
    (item,) = data["evidence"]
    import base64

    assert hashlib.sha256(base64.b64decode(item["raw_base64"])).hexdigest() == item["sha256"]
    text = incidents.export_text(data, "en", "Asia/Shanghai")
    assert "(late)" in text and item["sha256"] in text and "null-routed" in text
    assert "(逾期)" in incidents.export_text(data)  # Chinese unless asked otherwise
    assert incidents.check_evidence(s, incident.id) == []
    assert s.scalar(select(func.count()).select_from(IncidentAction)) == 8
    with pytest.raises(StateConflict):
        incidents.log_action(s, incident.id, "note", "after closing", actor="user:eng")


def test_an_incident_on_time_without_a_case(ledger):
    s = ledger
    incident = incidents.declare(
        s, title="DDoS on the DC1 edge", category="attack", hours=2, actor="user:eng", at=NOW
    )
    incidents.mark_reported(
        s, incident.id, reported_to="通信管理局", text="form filed", actor="user:eng",
        at=NOW + timedelta(minutes=90),
    )  # fmt: skip
    data = incidents.export(s, incident.id)
    assert (data["reported_on_time"], data["evidence"], data["case_id"]) == (True, [], None)
    with pytest.raises(StateConflict):
        incidents.mark_reported(s, incident.id, reported_to="x", text="y", actor="user:eng")
    assert count(s, Sanction) == 0


def test_concurrent_intakes_of_overlapping_batches_store_each_complaint_and_case_once(
    ledger, make_session
):
    from tests.unit.test_concurrency import race

    rows = [
        f"198.18.7.{9 + i % 3},2026-11-2{i % 5}T10:00:00+08:00,spam,row {i},x@example.org"
        for i in range(60)
    ]
    header = "address,time,category,description,reporter\n"
    batches = [header + "\n".join(rows[k : k + 40]) + "\n" for k in (0, 10, 20, 0)]

    def attempt(s, worker, _try):
        return ingest.ingest(s, batches[worker].encode(), actor=f"w{worker}", now=NOW).stored

    stored, _refused, errors = race(make_session, 4, 1, attempt)
    assert errors == []
    s = ledger
    assert sum(stored) == count(s, AbuseReport) == 60
    # One case per address and category within the window: the holders' three addresses.
    keys = s.execute(select(AbuseCase.first, AbuseCase.category, AbuseCase.state)).all()
    assert len(keys) == len(set(keys)) == 3
    assert s.scalar(select(func.sum(AbuseCase.report_count))) == 60
    assert audit.verify(s).ok


def test_a_configured_ladder_skips_rungs_but_never_reorders_them(ledger):
    s = ledger
    for bad in ("", "warning,flogging", "termination,warning", "warning,warning"):
        with pytest.raises(ValidationError) as err:
            cases.ladder(bad)
        assert err.value.field == "IPAM_SANCTION_LADDER"
    short = cases.ladder("warning, reclamation")
    ingest.ingest(s, sample("xarf-v4.json"), actor="test", now=NOW)
    case = s.execute(select(AbuseCase)).scalar_one()
    first = cases.propose_sanction(s, case.id, "C2", actor="user:eng", rungs=short)
    second = cases.propose_sanction(s, case.id, "C2 again", actor="user:eng", rungs=short)
    assert [(x.kind.value, x.status) for x in (first, second)] == [
        ("warning", "confirmed"),
        ("reclamation", "proposed"),
    ]


def test_the_case_window_and_deadlines_are_configurable(ledger):
    s = ledger
    for config, field in (
        ({"IPAM_ABUSE_CASE_WINDOW_DAYS": "a week"}, "IPAM_ABUSE_CASE_WINDOW_DAYS"),
        ({"IPAM_ABUSE_CASE_WINDOW_DAYS": "0"}, "IPAM_ABUSE_CASE_WINDOW_DAYS"),
        ({"IPAM_ABUSE_DEADLINES": "gossip=4"}, "IPAM_ABUSE_DEADLINES"),
        ({"IPAM_ABUSE_DEADLINES": "spam=soon"}, "IPAM_ABUSE_DEADLINES"),
        ({"IPAM_ABUSE_DEADLINES": "spam=-1"}, "IPAM_ABUSE_DEADLINES"),
    ):
        with pytest.raises(ValidationError) as err:
            ingest.Policy.from_config(config)
        assert err.value.field == field
    policy = ingest.Policy.from_config(
        {"IPAM_ABUSE_CASE_WINDOW_DAYS": "1", "IPAM_ABUSE_DEADLINES": "spam=6"}
    )
    # CSV rows 1 and 2 are a day apart (within one day: one case), row 3 a day later again.
    ingest.ingest(s, CSV.encode(), actor="test", kind="csv", now=NOW, policy=policy)
    spam = (
        s.execute(select(AbuseCase).where(AbuseCase.category == "spam").order_by(AbuseCase.id))
        .scalars()
        .all()
    )
    assert [c.report_count for c in spam] == [3, 1]  # rows chain: each within a day of the last
    assert {c.deadline - c.opened_at for c in spam} == {timedelta(hours=6)}
    narrow = ingest.Policy.from_config({"IPAM_ABUSE_CASE_WINDOW_DAYS": "0.5"})
    s.rollback()
    ingest.ingest(s, CSV.encode(), actor="test", kind="csv", now=NOW, policy=narrow)
    counts = (
        s.execute(
            select(AbuseCase.report_count)
            .where(AbuseCase.category == "spam")
            .order_by(AbuseCase.id)
        )
        .scalars()
        .all()
    )
    assert counts == [1, 1, 1, 1]
    malware = s.execute(select(AbuseCase).where(AbuseCase.category == "malware")).scalar_one()
    assert malware.deadline - malware.opened_at == timedelta(hours=24)  # the default stands
