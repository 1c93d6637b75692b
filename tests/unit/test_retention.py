"""Retention: observations and complaint evidence kept six months at least, then purged in
bounded batches; incident evidence, the audit log and the ledger's history never."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from ipam import audit, demo, probing, retention
from ipam.abuse import cases, incidents, ingest
from ipam.errors import StateConflict, ValidationError
from ipam.models import (
    AbuseCase,
    AbuseReport,
    Allocation,
    AuditLog,
    IncidentEvidence,
    ProbeObservation,
    ProbeSchedule,
    RejectedReport,
)

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # the demo's ledger is dated around this
OLD = NOW - timedelta(days=250)  # about eight months ago
RECENT = NOW - timedelta(days=30)


def _csv(*lines: str) -> bytes:
    return ("address,time,category,description,reporter\n" + "\n".join(lines) + "\n").encode()


def _at(when: datetime) -> str:
    return when.astimezone(UTC).isoformat()


@pytest.fixture
def aged(session):
    """A ledger with old and recent observations, complaints and rejected inputs."""
    s = session
    demo.seed(s, echo=lambda *_: None, abuse=False)
    s.commit()
    schedule = s.scalars(select(ProbeSchedule.id)).first()
    run = probing.start_run(s, schedule, trigger="manual", actor="test")
    for i, when in enumerate([OLD] * 5 + [RECENT] * 2):
        s.add(
            ProbeObservation(
                run_id=run.id, family=4, address=bytes([198, 18, 9, i]), method="icmp",
                answered=True, rtt_ms=1.0, detail="", observed_at=when,
            )
        )  # fmt: skip
    # Old complaints: on unallocated space (no case), on a case resolved below, on a case
    # still open (an incident freezes it); one recent; old and recent rejected lines.
    ingest.ingest(
        s,
        _csv(
            f"198.18.9.20,{_at(OLD - timedelta(days=2))},attack,unallocated,x@example.org",
            f"198.19.0.1,{_at(OLD - timedelta(days=1))},malware,resolved,x@example.org",
            "198.18.7.9,2026-01-05T10:00:00+08:00,spam,still open,x@example.org",  # held then
            f"bogus,{_at(OLD)},spam,unreadable,x@example.org",
        ),
        actor="test",
        kind="csv",
        now=OLD,
    )
    ingest.ingest(
        s,
        _csv(
            f"198.18.9.20,{_at(RECENT)},attack,recent,x@example.org",
            f"bogus,{_at(RECENT)},spam,unreadable too,x@example.org",
        ),
        actor="test",
        kind="csv",
        now=RECENT,
    )
    s.commit()
    resolved = s.scalars(select(AbuseCase).where(AbuseCase.category == "malware")).one()
    cases.transition(s, resolved.id, "resolve", comment="server cleaned", actor="test")
    still_open = s.scalars(select(AbuseCase).where(AbuseCase.category == "spam")).one()
    incidents.declare(s, title="Spam", category="spam", hours=12, case=still_open.id, actor="t")
    s.commit()
    return s


def _counts(s):
    return {
        "observations": s.scalar(select(func.count()).select_from(ProbeObservation)),
        "with_bytes": s.scalar(
            select(func.count()).select_from(AbuseReport).where(func.length(AbuseReport.raw) > 0)
        ),
        "reports": s.scalar(select(func.count()).select_from(AbuseReport)),
        "rejected": s.scalar(select(func.count()).select_from(RejectedReport)),
        "evidence": s.scalar(select(func.count()).select_from(IncidentEvidence)),
        "allocations": s.scalar(select(func.count()).select_from(Allocation)),
    }


def test_the_purge_takes_only_what_is_past_retention_in_small_batches(aged):
    s = aged
    before = _counts(s)
    assert before["observations"] == 7 and before["rejected"] == 2
    commits = []

    def done():
        commits.append(1)
        s.commit()

    summary = retention.purge(s, 6, actor="scheduler", batch=2, chunk_done=done, now=NOW)
    s.commit()
    after = _counts(s)
    assert summary["observations"] == 5 and after["observations"] == 2  # the recent ones stay
    # Of the old complaints, the unallocated one's and the resolved case's bytes go.
    assert summary["complaint_bytes"] == 2
    assert after["with_bytes"] == before["with_bytes"] - 2
    assert after["reports"] == before["reports"]  # the records, hashes and cases remain
    assert summary["rejected"] == 1 and after["rejected"] == 1
    assert after["evidence"] == before["evidence"] and after["evidence"] >= 1
    assert after["allocations"] == before["allocations"]
    assert len(commits) >= 5  # batches of 2: 5 observations alone take three
    purged = s.scalars(select(AbuseReport).where(func.length(AbuseReport.raw) == 0)).all()
    assert all(len(r.sha256) == 64 and r.event_at < OLD for r in purged)
    entries = s.scalars(select(AuditLog).where(AuditLog.action == "retention.purge")).all()
    assert sum(e.data["rows"] for e in entries) == 8
    assert audit.verify(s).ok
    # Again: nothing left to purge.
    with pytest.raises(StateConflict, match="purged"):  # no empty evidence
        incidents.freeze(s, 1, [purged[0].id], actor="test")
    again = retention.purge(s, 6, actor="scheduler", batch=2, now=NOW)
    assert (again["observations"], again["complaint_bytes"], again["rejected"]) == (0, 0, 0)


def test_a_longer_retention_keeps_more(aged):
    summary = retention.purge(aged, 12, actor="scheduler", now=NOW)
    assert (summary["observations"], summary["complaint_bytes"], summary["rejected"]) == (0, 0, 0)


@pytest.mark.parametrize("value", [5, 0, -1, "six", None])
def test_retention_is_never_below_six_months(value):
    with pytest.raises(ValidationError) as err:
        retention.months_setting(value)
    assert err.value.field == "IPAM_RETENTION_MONTHS"


def test_months_are_calendar_months():
    assert retention.months_before(datetime(2026, 8, 31, tzinfo=UTC), 6) == datetime(
        2026, 2, 28, tzinfo=UTC
    )
    assert retention.months_before(datetime(2026, 3, 15, tzinfo=UTC), 6) == datetime(
        2025, 9, 15, tzinfo=UTC
    )


def test_a_start_with_too_short_a_retention_is_refused(monkeypatch):
    from web import create_app

    monkeypatch.setenv("IPAM_RETENTION_MONTHS", "3")
    with pytest.raises(RuntimeError, match="IPAM_RETENTION_MONTHS"):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "t"})
