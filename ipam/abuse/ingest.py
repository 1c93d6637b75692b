"""Ingest complaints: keep the bytes, attribute at the event's time, open or join cases.

Attribution uses the event's own timestamp, never the arrival: a report dated
before a reclamation goes to the old holder. A report on a prefix reaches
every holder inside it. Reports on unallocated or quarantined space are kept
and flagged, never dropped. Unreadable input goes, byte for byte, to the
rejected store, and nothing else is written for it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from .. import audit
from ..addresses import Block, to_bytes
from ..db import utcnow
from ..lookup import current_at, overlapping
from ..models import (
    AbuseCase,
    AbuseCategory,
    AbuseReport,
    AbuseReportCase,
    Allocation,
    Quarantine,
    RejectedReport,
    Sublease,
)
from . import formats

CASE_WINDOW = timedelta(days=7)
OPEN_STATES = ("open", "notified", "acknowledged", "escalated")
# Hours a customer has to answer, by category (clause 15: problems handled at once).
DEADLINE_HOURS = {
    AbuseCategory.ILLEGAL_CONTENT: 2,
    AbuseCategory.STATE_SECRETS: 2,
    AbuseCategory.PUBLIC_ORDER: 4,
    AbuseCategory.ATTACK: 24,
    AbuseCategory.MALWARE: 24,
    AbuseCategory.SPAM: 72,
    AbuseCategory.INFRINGEMENT: 72,
    AbuseCategory.UNAPPROVED_CONTENT: 72,
    AbuseCategory.OTHER: 72,
}


@dataclass
class IngestResult:
    reports: list[AbuseReport] = field(default_factory=list)
    duplicates: int = 0
    rejected: list[RejectedReport] = field(default_factory=list)
    cases_opened: int = 0


def _sha(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def reject(session: Session, raw: bytes, source: str, fieldname, reason: str, at) -> RejectedReport:
    row = RejectedReport(
        sha256=_sha(raw), raw=raw, source=source, field=fieldname, reason=reason, received_at=at
    )
    session.add(row)
    return row


def holders_at(session: Session, block: Block, at: datetime):
    """(allocation, sublease or None) for every holding that meets `block` at `at`."""
    allocs = session.execute(
        select(Allocation).where(overlapping(Allocation, block), current_at(Allocation, at))
    ).scalars()
    out = []
    for a in allocs:
        inner = block if a.block.contains(block) else a.block
        subs = list(
            session.execute(
                select(Sublease).where(
                    Sublease.allocation_id == a.id,
                    overlapping(Sublease, inner),
                    current_at(Sublease, at),
                )
            ).scalars()
        )
        out.extend((a, s) for s in subs)
        if not subs or not any(s.block.contains(inner) for s in subs):
            out.append((a, None))
    return out


def _quarantined(session: Session, block: Block, at: datetime) -> bool:
    return (
        session.execute(
            select(Quarantine.id).where(
                overlapping(Quarantine, block),
                Quarantine.since <= at,
                or_(Quarantine.released_at.is_(None), Quarantine.released_at > at),
            )
        ).first()
        is not None
    )


def _join_or_open(session, rec: formats.Record, alloc, sub, now, window, actor) -> tuple:
    block = rec.block if alloc.block.contains(rec.block) else alloc.block
    if sub is not None and sub.block.contains(block):
        sublessee_id = sub.sublessee_id
    elif sub is not None:
        block, sublessee_id = sub.block, sub.sublessee_id
    else:
        sublessee_id = None
    case = session.execute(
        select(AbuseCase)
        .where(
            AbuseCase.customer_id == alloc.customer_id,
            AbuseCase.sublessee_id.is_(None)
            if sublessee_id is None
            else AbuseCase.sublessee_id == sublessee_id,
            AbuseCase.category == rec.category,
            AbuseCase.family == block.family,
            AbuseCase.first == to_bytes(block.first),
            AbuseCase.prefixlen == block.prefixlen,
            AbuseCase.state.in_(OPEN_STATES),
            and_(
                AbuseCase.last_event_at >= rec.event_at - window,
                AbuseCase.first_event_at <= rec.event_at + window,
            ),
        )
        .order_by(AbuseCase.id.desc())
        .limit(1)
    ).scalar()
    if case is not None:
        case.report_count += 1
        case.last_event_at = max(case.last_event_at, rec.event_at)
        case.first_event_at = min(case.first_event_at, rec.event_at)
        case.updated_at = now
        return case, False
    case = AbuseCase(
        **block.columns(),
        customer_id=alloc.customer_id,
        sublessee_id=sublessee_id,
        allocation_id=alloc.id,
        category=rec.category,
        state="open",
        customer_status="none",
        opened_at=now,
        updated_at=now,
        first_event_at=rec.event_at,
        last_event_at=rec.event_at,
        deadline=now + timedelta(hours=DEADLINE_HOURS[rec.category]),
        report_count=1,
    )
    session.add(case)
    session.flush()
    audit.record(
        session,
        actor,
        "abuse_case.open",
        case,
        {
            "customer_id": case.customer_id,
            "sublessee_id": sublessee_id,
            "category": rec.category.value,
            "prefix": case.prefix,
        },
    )
    return case, True


def store(
    session: Session,
    rec: formats.Record,
    *,
    actor: str,
    now=None,
    window: timedelta = CASE_WINDOW,
    result: IngestResult | None = None,
) -> IngestResult:
    """Keep one record (unless its bytes are known), attribute it, open or join its cases."""
    result = result or IngestResult()
    now = now or utcnow()
    sha = _sha(rec.raw)
    if session.execute(select(AbuseReport.id).where(AbuseReport.sha256 == sha)).first():
        result.duplicates += 1
        return result
    holders = holders_at(session, rec.block, rec.event_at)
    if holders:
        holding = "held"
    else:
        holding = "quarantined" if _quarantined(session, rec.block, rec.event_at) else "unallocated"
    report = AbuseReport(
        **rec.block.columns(),
        sha256=sha,
        raw=rec.raw,
        source=rec.source,
        received_at=now,
        event_at=rec.event_at,
        category=rec.category,
        reporter=rec.reporter,
        description=rec.description,
        details=rec.details,
        holding=holding,
    )
    session.add(report)
    session.flush()
    for alloc, sub in holders:
        case, opened = _join_or_open(session, rec, alloc, sub, now, window, actor)
        result.cases_opened += opened
        if session.get(AbuseReportCase, (report.id, case.id)) is None:
            session.add(AbuseReportCase(report_id=report.id, case_id=case.id))
    audit.record(
        session,
        actor,
        "abuse_report.ingest",
        report,
        {
            "source": rec.source,
            "prefix": report.prefix,
            "event_at": rec.event_at,
            "category": rec.category.value,
            "holding": holding,
        },
    )
    result.reports.append(report)
    return result


def ingest(
    session: Session,
    raw: bytes,
    *,
    actor: str,
    kind: str | None = None,
    now: datetime | None = None,
    window: timedelta = CASE_WINDOW,
) -> IngestResult:
    """Read one input (a mail, a JSON report, a CSV batch or a DROP feed) and keep it.

    An input that cannot be read at all is kept in the rejected store; a batch
    keeps its good records and rejects its bad ones, each with its reason.
    """
    now = now or utcnow()
    result = IngestResult()
    try:
        records, bad = formats.read(raw, now, kind)
    except formats.FormatError as exc:
        result.rejected.append(
            reject(session, raw, kind or formats.detect(raw), exc.field, exc.message, now)
        )
        session.flush()
        return result
    for item in bad:
        result.rejected.append(reject(session, item.raw, item.source, item.field, item.reason, now))
    for rec in records:
        store(session, rec, actor=actor, now=now, window=window, result=result)
    session.flush()
    return result


def retry_rejected(session: Session, rejected_id: int, *, actor: str, kind: str | None = None):
    """Run a rejected input again (after a fix to the reader, or with the right format)."""
    row = session.get(RejectedReport, int(rejected_id))
    if row is None or row.status != "rejected":
        from ..errors import NotFound

        raise NotFound(f"no rejected report {rejected_id!r} waiting", "rejected")
    result = ingest(session, row.raw, actor=actor, kind=kind)
    if result.reports and not result.rejected:
        row.status = "accepted"
        row.report_id = result.reports[0].id
    return result
