"""Notification of a case to the customer's abuse contact (and, when asked, the sublessee).

The message is built here, with the evidence summary; sending is the
caller's (`send` takes an email.message.EmailMessage), so the domain needs no
mail server and tests use a real one. The case moves to "notified" only once
the message has been handed over.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import validation
from ..db import utcnow
from ..errors import MailFailed, Phrase, StateConflict, ValidationError
from ..models import (
    AbuseCase,
    AbuseCaseEvent,
    AbuseReport,
    AbuseReportCase,
    Customer,
    Sanction,
    Sublessee,
)
from . import notices
from .cases import LADDER, TRANSITIONS, _event, get_case, overdue, propose_sanction, transition

EVIDENCE_SHOWN = 20
log = logging.getLogger(__name__)


def recipients(customer: Customer, sublessee: Sublessee | None, with_sublessee: bool) -> list:
    """The customer's abuse contacts (any contact with an address if none is marked abuse)."""
    contacts = [c for c in customer.contacts or [] if c.get("email")]
    abuse = [c["email"] for c in contacts if str(c.get("role", "")).lower() == "abuse"]
    out = abuse or [c["email"] for c in contacts]
    if with_sublessee and sublessee is not None and sublessee.email:
        out.append(sublessee.email)
    return out


def message(
    session: Session,
    case_ref,
    *,
    sender: str,
    with_sublessee: bool = False,
    template: str | None = None,
    note: str = "",
    zone: str = "Asia/Shanghai",
):
    """The notice: Chinese first, then English, times in `zone`; what the customer is asked
    to do from the reply template (ipam/abuse/notices.py) and the engineer's note."""
    case = get_case(session, case_ref)
    customer = session.get(Customer, case.customer_id)
    sublessee = session.get(Sublessee, case.sublessee_id) if case.sublessee_id else None
    to = recipients(customer, sublessee, with_sublessee)
    if not to:
        raise ValidationError(
            "{name} has no contact with an e-mail address", "contacts", name=customer.name
        )
    reports = (
        session.execute(
            select(AbuseReport)
            .join(AbuseReportCase, AbuseReportCase.report_id == AbuseReport.id)
            .where(AbuseReportCase.case_id == case.id)
            .order_by(AbuseReport.event_at)
        )
        .scalars()
        .all()
    )
    tz = ZoneInfo(zone)

    def t(when) -> str:
        return f"{when.astimezone(tz):%Y-%m-%d %H:%M} ({zone})"

    ask_zh, ask_en = notices.template_for(template, case.category.value)
    if template and template not in notices.TEMPLATES:
        raise ValidationError(
            "{value!r} is not one of: {choices}", "template", value=template,
            choices=", ".join(notices.TEMPLATES),
        )  # fmt: skip
    note = validation.optional(note, "note", 4000) or ""
    who_zh = customer.name + (f"（转租方：{sublessee.name}）" if sublessee else "")
    who_en = customer.name + (f" / sublessee {sublessee.name}" if sublessee else "")
    lines = [
        f"滥用案件 {case.id}：{case.prefix}（{case.category.value}）",
        f"客户：{who_zh}",
        f"报告 {len(reports)} 份，{t(case.first_event_at)} 至 {t(case.last_event_at)}",
        ask_zh,
        f"请于 {t(case.deadline)} 前答复（协议第七至十五条）。",
        *([f"备注：{note}"] if note else []),
        "",
        f"Abuse case {case.id}: {case.category.value} from {case.prefix}",
        f"Customer: {who_en}",
        f"Reports: {len(reports)}, {t(case.first_event_at)} to {t(case.last_event_at)}",
        ask_en,
        f"Please answer by {t(case.deadline)} (agreement clauses 7-15).",
        *([f"Note: {note}"] if note else []),
        "",
        "证据 / Evidence:",
    ]
    for r in reports[:EVIDENCE_SHOWN]:
        lines.append(
            f"- {t(r.event_at)} {r.prefix} {r.category.value} "
            f"({r.source}, {r.reporter or '-'}): {r.description[:200]}"
        )
    if len(reports) > EVIDENCE_SHOWN:
        lines.append(f"- … {len(reports) - EVIDENCE_SHOWN}")
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Subject"] = f"[abuse case {case.id}] {case.category.value} from {case.prefix}"
    msg["Date"] = format_datetime(case.updated_at)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    msg.set_content("\n".join(lines) + "\n")
    return case, msg


def notify(
    session: Session,
    case_ref,
    *,
    actor: str,
    sender: str,
    send: Callable[[EmailMessage], None],
    with_sublessee: bool = False,
    template: str | None = None,
    note: str = "",
    zone: str = "Asia/Shanghai",
):
    """Send the case to its holder's abuse contact, then mark it notified."""
    case = get_case(session, case_ref)
    if case.state not in TRANSITIONS["notify"][0]:
        raise StateConflict(
            "case {id} is {state}: it cannot notify", "state", id=case.id, state=case.state
        )
    case, msg = message(
        session, case.id, sender=sender, with_sublessee=with_sublessee, template=template,
        note=note, zone=zone,
    )  # fmt: skip
    try:
        send(msg)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailFailed(
            "the mail server did not take the message: {exc}", "smtp", exc=exc
        ) from None
    return transition(
        session,
        case.id,
        "notify",
        actor=actor,
        comment=Phrase("mailed to {to} ({message_id})", to=msg["To"], message_id=msg["Message-ID"]),
    )


REMIND_LEFT = 0.25  # a reminder when a quarter of the answering time is left


def smtp(host: str, port: int, timeout: float = 30) -> Callable[[EmailMessage], None]:
    """A `send` that hands messages to an SMTP server (one connection a message)."""

    def send(msg: EmailMessage) -> None:
        with smtplib.SMTP(host, int(port), timeout=timeout) as conn:
            conn.send_message(msg)

    return send


def remind_cases(
    session: Session,
    *,
    send: Callable[[EmailMessage], None],
    sender: str,
    now: datetime | None = None,
    actor: str = "scheduler",
) -> list[AbuseCase]:
    """Notified cases the customer has not answered: one reminder before the deadline.

    Due once a quarter of the answering time is left; a case event records it,
    so it goes out once.
    """
    now = now or utcnow()
    reminded = select(AbuseCaseEvent.case_id).where(AbuseCaseEvent.action == "reminder")
    candidates = session.scalars(
        select(AbuseCase).where(
            AbuseCase.state == "notified",
            AbuseCase.customer_status == "none",
            AbuseCase.deadline > now,
            AbuseCase.id.not_in(reminded),
        )
    ).all()
    sent = []
    for case in candidates:
        if now < case.deadline - (case.deadline - case.opened_at) * REMIND_LEFT:
            continue
        _case, msg = message(session, case.id, sender=sender)
        del msg["Subject"]
        msg["Subject"] = (
            f"[abuse case {case.id}] reminder: answer by {case.deadline:%Y-%m-%d %H:%M} UTC"
        )
        try:
            send(msg)
        except (OSError, smtplib.SMTPException) as exc:  # the others still go out
            log.warning("reminder for case %s not sent: %s", case.id, exc)
            continue
        _event(
            session,
            case,
            actor,
            "reminder",
            case.state,
            case.state,
            Phrase("reminder to {to}", to=msg["To"]),
            now,
        )
        sent.append(case)
    return sent


def escalate_overdue(
    session: Session, *, now: datetime | None = None, actor: str = "scheduler", rungs=LADDER
) -> list[Sanction]:
    """Notified cases left unanswered past their deadline go up the ladder.

    A warning is confirmed at once; any later rung is only proposed and waits
    for an engineer (confirm_sanction refuses the scheduler).
    """
    now = now or utcnow()
    out = []
    for case in overdue(session, now):
        if case.state != "notified" or case.customer_status != "none":
            continue
        waiting = session.scalar(
            select(Sanction.id).where(
                Sanction.customer_id == case.customer_id, Sanction.status == "proposed"
            )
        )
        if waiting is not None:
            continue
        out.append(
            propose_sanction(
                session,
                case.id,
                f"no answer to case {case.id} by its deadline {case.deadline:%Y-%m-%d %H:%M} UTC",
                actor=actor,
                rungs=rungs,
            )
        )
    return out
