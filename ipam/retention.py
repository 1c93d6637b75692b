"""Records kept as long as the law wants, and no longer.

Probe observations and complaint evidence are kept at least six months
(the network-log retention of the Cybersecurity Law, art. 21), longer if
configured, then purged by a job in bounded batches, each its own short
transaction, so live work never waits on a purge. What is purged:

- probe observations older than the cut-off (runs and findings stay);
- the bytes of complaints received and dated before it, once none of their
  cases is still open (the record, its hash, its attribution and its cases
  stay: the history of who was complained about does not change);
- rejected inputs received before it.

Never purged: incident evidence (its own frozen copy), the audit log, the
ledger's history (allocations, revisions, subleases), cases and findings.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import and_, delete, exists, func, select, update
from sqlalchemy.orm import Session

from . import audit
from .db import utcnow
from .errors import ValidationError
from .models import (
    AbuseCase,
    AbuseReport,
    AbuseReportCase,
    CaseState,
    ProbeObservation,
    RejectedReport,
)

MIN_MONTHS = 6
BATCH = 5000


def months_setting(value, field: str = "IPAM_RETENTION_MONTHS") -> int:
    """The retention in months: a whole number, never below six."""
    try:
        months = int(str(value).strip())
    except (TypeError, ValueError):
        raise ValidationError(
            "{value!r} is not a whole number of months", field, value=value
        ) from None
    if months < MIN_MONTHS:
        raise ValidationError(
            "is {months}; records must be kept at least {MIN_MONTHS} months",
            field,
            months=months,
            MIN_MONTHS=MIN_MONTHS,
        )
    return months


def months_before(when: datetime, months: int) -> datetime:
    """The same instant `months` calendar months earlier (the 31st becomes the month's last day)."""
    index = when.year * 12 + when.month - 1 - months
    year, month = divmod(index, 12)
    day = min(when.day, calendar.monthrange(year, month + 1)[1])
    return when.replace(year=year, month=month + 1, day=day)


def purge(
    session: Session,
    months: int,
    *,
    actor: str,
    batch: int = BATCH,
    chunk_done: Callable[[], None] | None = None,
    now: datetime | None = None,
) -> dict:
    """Purge what is older than `months`, `batch` rows per statement; counts of each kind.

    `chunk_done` (ipam.db.chunk_done) ends each batch's transaction; each
    batch leaves one audit entry with its counts and the cut-off.
    """
    months = months_setting(months)
    cut = months_before(now or utcnow(), months)
    counts = {"observations": 0, "complaint_bytes": 0, "rejected": 0}
    steps = (
        ("observations", lambda: _observations(session, cut, batch)),
        ("complaint_bytes", lambda: _complaints(session, cut, batch)),
        ("rejected", lambda: _rejected(session, cut, batch)),
    )
    for kind, step in steps:
        while True:
            done = step()
            if done:
                counts[kind] += done
                audit.record(
                    session,
                    actor,
                    "retention.purge",
                    "retention",
                    {"kind": kind, "rows": done, "before": cut, "months": months},
                )
            if chunk_done is not None:
                chunk_done()
            if done < batch:
                break
    return {"before": cut.isoformat(), **counts}


def _observations(session: Session, cut: datetime, batch: int) -> int:
    ids = select(ProbeObservation.id).where(ProbeObservation.observed_at < cut).limit(batch)
    result = session.execute(
        delete(ProbeObservation).where(ProbeObservation.id.in_(ids.scalar_subquery()))
    )
    return result.rowcount


def _complaints(session: Session, cut: datetime, batch: int) -> int:
    still_open = exists(
        select(AbuseReportCase.report_id)
        .join(AbuseCase, AbuseCase.id == AbuseReportCase.case_id)
        .where(
            AbuseReportCase.report_id == AbuseReport.id,
            AbuseCase.state != CaseState.RESOLVED,
        )
    )
    ids = (
        select(AbuseReport.id)
        .where(
            AbuseReport.event_at < cut,
            AbuseReport.received_at < cut,
            func.length(AbuseReport.raw) > 0,
            ~still_open,
        )
        .limit(batch)
    )
    result = session.execute(
        update(AbuseReport)
        .where(and_(AbuseReport.id.in_(ids.scalar_subquery())))
        .values(raw=b"", details={"purged": True})
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


def _rejected(session: Session, cut: datetime, batch: int) -> int:
    ids = select(RejectedReport.id).where(RejectedReport.received_at < cut).limit(batch)
    result = session.execute(
        delete(RejectedReport)
        .where(RejectedReport.id.in_(ids.scalar_subquery()))
        .execution_options(synchronize_session=False)
    )
    return result.rowcount
