"""Major security incidents (clause 16): a reporting clock, an action log, frozen evidence.

Clause 16: on a major incident the customer takes emergency measures, keeps
the original records and reports to the city PSB and the provincial
communications administration within 2 to 24 hours. An incident is declared
from an abuse case (its reports are frozen at once) or directly; the
deadline is set at declaration within those bounds. Evidence is a copy of the
original bytes with their SHA-256 and who held the address at the event,
never edited. Reminders go out at half time, one hour before and at the
deadline; the export is what is handed to the authorities.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import smtplib
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import audit, validation
from ..attribution import attribution
from ..db import utcnow
from ..errors import NotFound, Phrase, StateConflict, ValidationError
from ..listing import ALL, Window, fetch
from ..models import (
    AbuseCase,
    AbuseCategory,
    AbuseReport,
    AbuseReportCase,
    Customer,
    Incident,
    IncidentAction,
    IncidentEvidence,
    IncidentState,
    Sublessee,
)
from ..privacy import check_reveal, masked
from ..validation import choice

MIN_HOURS, MAX_HOURS = 2, 24
AUTHORITIES = "city Public Security Bureau; provincial communications administration"
ACTION_KINDS = ("measure", "note")
log = logging.getLogger(__name__)
# Reminder stages: (name, when it is due, as a function of declared_at and deadline).
STAGES = (
    ("half time", lambda start, end: start + (end - start) / 2),
    ("one hour left", lambda start, end: max(start, end - timedelta(hours=1))),
    ("deadline passed", lambda start, end: end),
)


def get_incident(session: Session, ref) -> Incident:
    row = session.get(Incident, int(ref)) if str(ref).strip().isdigit() else None
    if row is None:
        raise NotFound("no incident {ref!r}", "incident", ref=ref)
    return row


def _log(session, incident, actor, kind, text, at=None) -> IncidentAction:
    """One line of the incident's log; a text the system wrote is kept as a Phrase too."""
    row = IncidentAction(
        incident_id=incident.id,
        at=at or utcnow(),
        actor=actor,
        kind=kind,
        text=str(text or ""),
        phrase=text.as_json() if isinstance(text, Phrase) else None,
    )
    session.add(row)
    session.flush()
    audit.record(session, actor, f"incident.{kind}", incident, {"text": str(text or "")})
    return row


def _hours(value) -> int:
    try:
        hours = int(str(value).strip())
    except (TypeError, ValueError):
        raise ValidationError(
            "{value!r} is not a whole number of hours", "hours", value=value
        ) from None
    if not MIN_HOURS <= hours <= MAX_HOURS:
        raise ValidationError(
            "must be between {MIN_HOURS} and {MAX_HOURS} hours (clause 16), not {hours}",
            "hours",
            MIN_HOURS=MIN_HOURS,
            MAX_HOURS=MAX_HOURS,
            hours=hours,
        )
    return hours


def declare(
    session: Session,
    *,
    title: str,
    category,
    hours=MAX_HOURS,
    description: str = "",
    case=None,
    report_ids=(),
    actor: str,
    at: datetime | None = None,
) -> Incident:
    """Declare an incident, from a case (its reports are frozen) or directly."""
    title = validation.required(title, "title", 200)
    try:
        category = AbuseCategory(str(getattr(category, "value", category) or "").strip())
    except ValueError:
        names = ", ".join(c.value for c in AbuseCategory)
        raise ValidationError(
            "{category!r} is not one of {names}", "category", category=category, names=names
        ) from None
    hours = _hours(hours)
    description = str(description or "")[:20000]
    from_case = None
    if case not in (None, ""):
        from .cases import get_case

        from_case = get_case(session, case)
    at = at or utcnow()
    incident = Incident(
        title=title,
        description=description,
        category=category,
        state="open",
        case_id=from_case.id if from_case else None,
        customer_id=from_case.customer_id if from_case else None,
        declared_at=at,
        declared_by=actor,
        deadline=at + timedelta(hours=hours),
        reported_to="",
        reminders_sent=0,
    )
    session.add(incident)
    session.flush()
    audit.record(
        session,
        actor,
        "incident.declare",
        incident,
        {"title": title, "category": category.value, "hours": hours, "case_id": incident.case_id},
    )
    declared = Phrase("declared; report due within {hours} h", hours=hours)
    session.add(
        IncidentAction(
            incident_id=incident.id,
            at=at,
            actor=actor,
            kind="declare",
            text=str(declared),
            phrase=declared.as_json(),
        )
    )
    ids = list(report_ids or [])
    if from_case is not None:
        ids += session.scalars(
            select(AbuseReportCase.report_id).where(AbuseReportCase.case_id == from_case.id)
        ).all()
    if ids:
        freeze(session, incident.id, ids, actor=actor)
    return incident


def _holders(session: Session, report: AbuseReport) -> list[dict]:
    """Who held the reported address at the event: the full attribution, or the cases' holders."""
    if report.block.is_single:
        return [attribution(session, report.block, report.event_at).as_dict()]
    rows = session.execute(
        select(AbuseCase.id, Customer.name, Sublessee.name)
        .select_from(AbuseReportCase)
        .join(AbuseCase, AbuseCase.id == AbuseReportCase.case_id)
        .join(Customer, Customer.id == AbuseCase.customer_id)
        .outerjoin(Sublessee, Sublessee.id == AbuseCase.sublessee_id)
        .where(AbuseReportCase.report_id == report.id)
    ).all()
    return [{"case": cid, "customer": c, "sublessee": s} for cid, c, s in rows]


def freeze(session: Session, ref, report_ids, *, actor: str) -> list[IncidentEvidence]:
    """Copy reports' original bytes into the incident's evidence (each report once)."""
    incident = get_incident(session, ref)
    if incident.state == "closed":
        raise StateConflict("incident {id} is closed", "state", id=incident.id)
    wanted = sorted({int(i) for i in report_ids})
    reports = session.scalars(select(AbuseReport).where(AbuseReport.id.in_(wanted))).all()
    missing = set(wanted) - {r.id for r in reports}
    if missing:
        raise NotFound("no abuse report {first}", "report_ids", first=min(missing))
    purged = [r.id for r in reports if not r.raw]
    if purged:
        raise StateConflict(
            "report {purged}'s original bytes were purged after the retention period",
            "report_ids",
            purged=purged[0],
        )
    have = set(
        session.scalars(
            select(IncidentEvidence.sha256).where(IncidentEvidence.incident_id == incident.id)
        )
    )
    now, added = utcnow(), []
    for r in sorted(reports, key=lambda r: r.id):
        if r.sha256 in have:
            continue
        have.add(r.sha256)
        row = IncidentEvidence(
            incident_id=incident.id,
            report_id=r.id,
            source=r.source,
            sha256=r.sha256,
            raw=bytes(r.raw),
            event_at=r.event_at,
            holder={"prefix": r.prefix, "holders": _holders(session, r)},
            frozen_at=now,
            frozen_by=actor,
        )
        session.add(row)
        added.append(row)
    if added:
        _log(
            session,
            incident,
            actor,
            "evidence",
            Phrase("{n} original record(s) frozen", n=len(added)),
        )
    return added


def log_action(session: Session, ref, kind: str, text: str, *, actor: str) -> IncidentAction:
    """An entry in the action log: an emergency measure taken, or a note."""
    incident = get_incident(session, ref)
    if kind not in ACTION_KINDS:
        raise ValidationError(
            "{kind!r} is not one of {choices}", "kind", kind=kind, choices=", ".join(ACTION_KINDS)
        )
    text = validation.required(text, "text", 10000)
    if incident.state == "closed":
        raise StateConflict("incident {id} is closed", "state", id=incident.id)
    return _log(session, incident, actor, kind, text)


def mark_reported(
    session: Session, ref, *, reported_to: str, text: str, actor: str, at: datetime | None = None
) -> Incident:
    """Record the report to the authorities (whom, what was said); late reports say so."""
    incident = get_incident(session, ref)
    if incident.state != "open":
        raise StateConflict(
            "incident {id} is {state}", "state", id=incident.id, state=incident.state
        )
    reported_to = validation.required(reported_to, "reported_to", 1000)
    text = validation.required(text, "text", 10000)
    at = at or utcnow()
    incident.state, incident.reported_at, incident.reported_to = "reported", at, reported_to
    late = at > incident.deadline
    note = (
        Phrase("reported to {to} after the deadline: {text}", to=reported_to, text=text)
        if late
        else Phrase("reported to {to}: {text}", to=reported_to, text=text)
    )
    _log(session, incident, actor, "report", note, at)
    return incident


def close(session: Session, ref, text: str, *, actor: str) -> Incident:
    incident = get_incident(session, ref)
    if incident.state != "reported":
        raise StateConflict(
            "incident {id} is {state}: report it before closing",
            "state",
            id=incident.id,
            state=incident.state,
        )
    text = validation.required(text, "text", 10000)
    incident.state, incident.closed_at = "closed", utcnow()
    _log(session, incident, actor, "close", text)
    return incident


def list_incidents(
    session: Session, state: str | None = None, window: Window = ALL
) -> tuple[list[Incident], int]:
    """Incidents, newest first, in one state if given: (rows, total)."""
    q = select(Incident).order_by(Incident.id.desc())
    if state:
        q = q.where(Incident.state == choice(IncidentState, state, "state"))
    return fetch(session, q, window)


def incidents_of_case(session: Session, case_id: int) -> list[Incident]:
    """The incidents declared from a case, oldest first."""
    return list(
        session.scalars(select(Incident).where(Incident.case_id == case_id).order_by(Incident.id))
    )


def due_stage(incident: Incident, now: datetime) -> int | None:
    """The reminder stage now due for an unreported incident (index into STAGES), or None."""
    if incident.state != "open":
        return None
    due = None
    for i, (_name, when) in enumerate(STAGES):
        if i >= incident.reminders_sent and now >= when(incident.declared_at, incident.deadline):
            due = i
    return due


def remind(
    session: Session,
    *,
    send: Callable[[EmailMessage], None],
    sender: str,
    to: list[str],
    now: datetime | None = None,
    actor: str = "scheduler",
) -> list[Incident]:
    """Send the reminders now due for unreported incidents; each stage goes out once."""
    now = now or utcnow()
    if not to:
        raise ValidationError("no address to send incident reminders to", "IPAM_INCIDENT_NOTIFY")
    sent = []
    for incident in list_incidents(session, "open")[0]:
        stage = due_stage(incident, now)
        if stage is None:
            continue
        name = STAGES[stage][0]
        msg = EmailMessage()
        msg["From"], msg["To"] = sender, ", ".join(to)
        msg["Subject"] = (
            f"[incident {incident.id}] {name}: report due {incident.deadline:%H:%M} UTC"
        )
        msg["Date"], msg["Message-ID"] = format_datetime(now), make_msgid(domain="ipam.invalid")
        left = incident.deadline - now
        msg.set_content(
            f"Incident {incident.id}: {incident.title} ({incident.category.value})\n"
            f"Declared {incident.declared_at:%Y-%m-%d %H:%M} UTC by {incident.declared_by}.\n"
            f"Report due {incident.deadline:%Y-%m-%d %H:%M} UTC to {AUTHORITIES} (clause 16).\n"
            + (
                f"Time left: {int(left.total_seconds() // 60)} min.\n"
                if left.total_seconds() > 0
                else "The deadline has passed: report now.\n"
            )
        )
        try:
            send(msg)
        except (OSError, smtplib.SMTPException) as exc:  # tried again at the next call
            log.warning("reminder for incident %s not sent: %s", incident.id, exc)
            continue
        incident.reminders_sent = stage + 1
        sent_to = Phrase("{stage}: reminder sent to {to}", stage=Phrase(name), to=", ".join(to))
        _log(session, incident, actor, "reminder", sent_to, now)
        sent.append(incident)
    return sent


def incident_record(session: Session, incident: Incident) -> tuple[list, list]:
    """(action log, evidence) of an incident, in order: for its page, the API and the export."""
    actions = session.scalars(
        select(IncidentAction)
        .where(IncidentAction.incident_id == incident.id)
        .order_by(IncidentAction.id)
    ).all()
    evidence = session.scalars(
        select(IncidentEvidence)
        .where(IncidentEvidence.incident_id == incident.id)
        .order_by(IncidentEvidence.id)
    ).all()
    return list(actions), list(evidence)


def export(session: Session, ref, *, reveal: str | None = None, actor: str = "") -> dict:
    """The incident report: facts, clock, action log and evidence with hashes and bytes.

    The holders' ID numbers and phones are masked; `reveal` (the reason, which
    is checked and audited with the actor) hands them over in full, as the
    authorities may require.
    """
    incident = get_incident(session, ref)
    if reveal is not None:
        reason = check_reveal(reveal)
        audit.record(session, actor, "incident.reveal", incident, {"reason": reason})
    actions, evidence = incident_record(session, incident)
    customer = session.get(Customer, incident.customer_id) if incident.customer_id else None
    on_time = incident.reported_at is not None and incident.reported_at <= incident.deadline
    data = audit.jsonable(
        {
            "incident": incident.id,
            "title": incident.title,
            "category": incident.category.value,
            "description": incident.description,
            "state": incident.state,
            "case_id": incident.case_id,
            "customer": customer.name if customer else None,
            "declared_at": incident.declared_at,
            "declared_by": incident.declared_by,
            "deadline": incident.deadline,
            "reported_at": incident.reported_at,
            "reported_to": incident.reported_to,
            "reported_on_time": on_time if incident.reported_at else None,
            "closed_at": incident.closed_at,
            "authorities": AUTHORITIES,
            "actions": [
                {"at": a.at, "actor": a.actor, "kind": a.kind, "text": a.text, "phrase": a.phrase}
                for a in actions
            ],
            "evidence": [
                {
                    "id": e.id,
                    "report_id": e.report_id,
                    "source": e.source,
                    "sha256": e.sha256,
                    "bytes": len(e.raw),
                    "event_at": e.event_at,
                    "holder": e.holder,
                    "frozen_at": e.frozen_at,
                    "frozen_by": e.frozen_by,
                    "raw_base64": base64.b64encode(e.raw).decode(),
                }
                for e in evidence
            ],
        }
    )
    return data if reveal is not None else masked(data)


EXPORT_WORDS = {
    "zh": {
        "title": "安全事件报告 {id}：{title}",
        "category": "类别", "state": "状态", "customer": "客户", "case": "案件",
        "declared": "宣布时间", "by": "宣布人", "due": "报告期限", "to": "报告对象",
        "reported": "报告时间", "not yet": "尚未报告", "on time": "按时", "late": "逾期",
        "log": "处置记录：", "evidence": "证据（原始记录，按收到时字节计算的 SHA-256）：",
        "bytes": "字节", "event": "事件时间",
    },
    "en": {
        "title": "Incident report {id}: {title}",
        "category": "Category", "state": "State", "customer": "Customer", "case": "Case",
        "declared": "Declared", "by": "by", "due": "Report due", "to": "to",
        "reported": "Reported", "not yet": "not yet", "on time": "on time", "late": "late",
        "log": "Action log:", "evidence": "Evidence (original records, SHA-256 of the bytes "
        "as received):", "bytes": "bytes", "event": "event",
    },
}  # fmt: skip


def export_text(data: dict, lang: str = "zh", zone: str = "Asia/Shanghai", words=None) -> str:
    """The export as a plain-text report in `lang`, times in `zone` (evidence listed by hash;
    the bytes are in the JSON export, whose times stay ISO 8601 UTC). `words`, a gettext
    of `lang`, puts what the system wrote into the log in that language too."""
    from zoneinfo import ZoneInfo

    from ..reports.base import term

    w = EXPORT_WORDS["en" if lang == "en" else "zh"]
    tz = ZoneInfo(zone)

    def t(value) -> str:
        if not value:
            return "-"
        when = datetime.fromisoformat(str(value)).astimezone(tz)
        return f"{when:%Y-%m-%d %H:%M:%S} ({zone})"

    reported = t(data["reported_at"]) if data["reported_at"] else w["not yet"]
    if data["reported_to"]:
        reported += f" {w['to']} {data['reported_to']}"
    if data["reported_on_time"] is not None:
        reported += f" ({w['on time'] if data['reported_on_time'] else w['late']})"
    lines = [
        w["title"].format(id=data["incident"], title=data["title"]),
        f"{w['category']}: {term(data['category'], lang)}    {w['state']}: "
        f"{term(data['state'], lang)}",
        f"{w['customer']}: {data['customer'] or '-'}    {w['case']}: {data['case_id'] or '-'}",
        f"{w['declared']}: {t(data['declared_at'])}  {w['by']} {data['declared_by']}",
        f"{w['due']}: {t(data['deadline'])}  {w['to']} {data['authorities']}",
        f"{w['reported']}: {reported}",
        "",
        data["description"] or "",
        "",
        w["log"],
        *(
            f"  {t(a['at'])}  {a['kind']:9} {a['actor']}: {_said(a, words)}"
            for a in data["actions"]
        ),
        "",
        w["evidence"],
        *(
            f"  #{e['id']} {e['source']:5} {e['sha256']}  {e['bytes']} {w['bytes']}, "
            f"{w['event']} {t(e['event_at'])}"
            for e in data["evidence"]
        ),
    ]
    return "\n".join(lines) + "\n"


def _said(action: dict, words) -> str:
    phrase = Phrase.from_json(action.get("phrase")) if words is not None else None
    return phrase.render(words) if phrase is not None else action["text"]


def check_evidence(session: Session, ref) -> list[int]:
    """Ids of evidence whose bytes no longer match their hash (an empty list: all intact)."""
    incident = get_incident(session, ref)
    rows = session.scalars(
        select(IncidentEvidence).where(IncidentEvidence.incident_id == incident.id)
    ).all()
    return [e.id for e in rows if hashlib.sha256(e.raw).hexdigest() != e.sha256]
