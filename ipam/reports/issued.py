"""Issued reports: the file's bytes, what was asked, who and when, and the audit chain's head,
kept; the file's SHA-256 enters the audit chain, so the copy handed out can be checked later.

`export` makes the same file without keeping it (a draft: marked so inside).
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import audit, privacy
from ..db import utcnow
from ..errors import NotFound
from ..listing import ALL, EVERYONE, Scope, Window, fetch
from ..models import Customer, IssuedReport, Pool
from . import REPORTS, get_report, rows
from .base import Params, Report, month_before
from .files import Counter, Heading, check_format, param_lines, write

SPOOL = 16 * 1024 * 1024  # bigger files go to a temporary file while they are made


def _names(session: Session, params: Params) -> dict[str, str]:
    out = {}
    if params.customer_id is not None:
        c = session.get(Customer, params.customer_id)
        out["customer_id"] = f"{c.name} (#{c.id})" if c else str(params.customer_id)
    if params.pool_id is not None:
        p = session.get(Pool, params.pool_id)
        out["pool_id"] = f"{p.name} (#{p.id})" if p else str(params.pool_id)
    return out


def heading(
    session: Session,
    report: Report,
    params: Params,
    lang: str,
    *,
    actor: str,
    anchor: tuple[int, str] | None = None,
) -> Heading:
    """What the file says about itself; with an anchor, that it is issued."""
    return Heading(
        title=report.title(lang),
        params=param_lines(params, lang, _names(session, params)),
        issued_at=utcnow(),
        issued_by=actor,
        anchor_seq=anchor[0] if anchor else None,
        anchor_hash=anchor[1] if anchor else None,
        issued=anchor is not None,
    )


def _reveal(params: Params, reason) -> str | None:
    if not params.reveal:
        return None
    return privacy.check_reveal(reason)


def export(
    session: Session,
    report: Report,
    params: Params,
    fmt: str,
    lang: str,
    out,
    *,
    scope: Scope = EVERYONE,
    actor: str,
    reason=None,
) -> int:
    """Write a draft of the report to `out` (kept nowhere); returns its row count. Revealing
    personal data is recorded in the audit log with its reason even for a draft."""
    fmt = check_format(fmt)
    why = _reveal(params, reason)
    counted = Counter(rows(session, report, params, scope))
    write(
        fmt, report, params, counted, lang, out, heading(session, report, params, lang, actor=actor)
    )
    if why:
        audit.record(
            session,
            actor,
            "report.reveal",
            "report",
            {"report": report.name, "params": params.as_dict(), "reason": why},
        )
    return counted.n


@dataclass
class Made:
    """A report file made and not yet kept (make() reads, keep() writes)."""

    report: Report
    params: Params
    fmt: str
    lang: str
    content: bytes
    rows: int
    anchor: tuple[int, str]
    made_at: datetime
    customer_id: int | None
    reveal_reason: str | None


def make(
    session: Session,
    name,
    params: Params,
    fmt,
    lang: str,
    *,
    actor: str,
    scope: Scope = EVERYONE,
    reason=None,
) -> Made:
    """Make the file to issue, with the audit chain's head now as its anchor. Reads only:
    the web makes it in a read transaction, so a long report never holds SQLite's write
    lock; keep() then stores it in a short one."""
    report = get_report(name)
    fmt = check_format(fmt)
    why = _reveal(params, reason)
    anchor = audit.head(session)
    head = heading(session, report, params, lang, actor=actor, anchor=anchor)
    counted = Counter(rows(session, report, params, scope))
    with tempfile.SpooledTemporaryFile(max_size=SPOOL) as buf:
        write(fmt, report, params, counted, lang, buf, head)
        buf.seek(0)
        content = buf.read()
    return Made(
        report, params, fmt, lang, content, counted.n, anchor, head.issued_at,
        scope.customer_id or params.customer_id, why,
    )  # fmt: skip


def keep(session: Session, made: Made, *, actor: str) -> IssuedReport:
    """Store a made file and enter its SHA-256 in the audit chain."""
    local = made.made_at.astimezone(ZoneInfo(made.params.zone)).strftime("%Y%m%d-%H%M")
    record = IssuedReport(
        name=made.report.name,
        params=made.params.as_dict(),
        format=made.fmt,
        language=made.lang,
        file_name="",
        content=made.content,
        size=len(made.content),
        rows=made.rows,
        sha256=hashlib.sha256(made.content).hexdigest(),
        issued_by=actor,
        issued_at=made.made_at,
        customer_id=made.customer_id,
        anchor_seq=made.anchor[0],
        anchor_hash=made.anchor[1],
    )
    session.add(record)
    session.flush()
    record.file_name = f"{made.report.name}-{local}-{record.id}.{made.fmt}"
    audit.record(
        session,
        actor,
        "report.issue",
        record,
        {
            "report": made.report.name,
            "params": record.params,
            "format": made.fmt,
            "language": made.lang,
            "sha256": record.sha256,
            "size": record.size,
            "rows": record.rows,
            "anchor": {"seq": made.anchor[0], "hash": made.anchor[1]},
            **({"reveal_reason": made.reveal_reason} if made.reveal_reason else {}),
        },
    )
    return record


def issue(
    session: Session,
    name,
    params: Params,
    fmt,
    lang: str,
    *,
    actor: str,
    scope: Scope = EVERYONE,
    reason=None,
) -> IssuedReport:
    """Make the report, keep its bytes and record their hash in the audit chain."""
    made = make(session, name, params, fmt, lang, actor=actor, scope=scope, reason=reason)
    return keep(session, made, actor=actor)


def get_issued(session: Session, ref, scope: Scope = EVERYONE) -> IssuedReport:
    record = session.get(IssuedReport, int(ref)) if str(ref).strip().isdigit() else None
    if record is None or (
        scope.customer_id is not None and record.customer_id != scope.customer_id
    ):
        raise NotFound("no issued report {ref!r}", "report", ref=ref)
    return record


def list_issued(
    session: Session, scope: Scope = EVERYONE, window: Window = ALL, name: str | None = None
) -> tuple[list[IssuedReport], int]:
    """Issued reports and certificates, newest first, without their bytes."""
    from sqlalchemy.orm import defer

    q = scope.restrict(select(IssuedReport), IssuedReport.customer_id)
    if name:
        q = q.where(IssuedReport.name == name)
    q = q.options(defer(IssuedReport.content)).order_by(IssuedReport.id.desc())
    return fetch(session, q, window)


def by_sha256(session: Session, digest: str) -> IssuedReport | None:
    return session.scalar(select(IssuedReport).where(IssuedReport.sha256 == digest).limit(1))


STANDING = (
    "ip_filing",
    "ip_filing_changes",
    "sublessees",
    "clause6",
    "compliance",
    "reclamation",
    "abuse",
)


def issue_standing(
    session: Session,
    config: Mapping,
    *,
    now: datetime | None = None,
    actor: str = "scheduler:reports",
) -> list[IssuedReport]:
    """The standing reports of the month before `now`, each issued once (the job runs daily;
    a month already issued is skipped)."""
    now = now or utcnow()
    zone = config.get("IPAM_TIMEZONE") or "Asia/Shanghai"
    fmt = check_format(config.get("IPAM_STANDING_REPORT_FORMAT") or "xlsx")
    lang = config.get("IPAM_STANDING_REPORT_LANGUAGE") or "zh"
    start, end = month_before(now, ZoneInfo(zone))
    done = set()
    for p in session.scalars(
        select(IssuedReport.params).where(
            IssuedReport.issued_by == actor, IssuedReport.issued_at >= end
        )
    ):
        done.add((p.get("standing"), p.get("start"), p.get("end"), p.get("at")))
    out = []
    for name in STANDING:
        report = REPORTS[name]
        if "period" in report.uses:
            params = Params(start=start, end=end, zone=zone)
        else:
            params = Params(at=end, zone=zone)
        key = params.as_dict()
        if (name, key.get("start"), key.get("end"), key.get("at")) in done:
            continue
        record = issue(session, name, params, fmt, lang, actor=actor)
        record.params = {**record.params, "standing": name}
        out.append(record)
    return out
