"""Notification of a case to the customer's abuse contact (and, when asked, the sublessee).

The message is built here, with the evidence summary; sending is the
caller's (`send` takes an email.message.EmailMessage), so the domain needs no
mail server and tests use a real one. The case moves to "notified" only once
the message has been handed over.
"""

from __future__ import annotations

from collections.abc import Callable
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import ValidationError
from ..models import AbuseReport, AbuseReportCase, Customer, Sublessee
from .cases import get_case, transition

EVIDENCE_SHOWN = 20


def recipients(customer: Customer, sublessee: Sublessee | None, with_sublessee: bool) -> list:
    """The customer's abuse contacts (any contact with an address if none is marked abuse)."""
    contacts = [c for c in customer.contacts or [] if c.get("email")]
    abuse = [c["email"] for c in contacts if str(c.get("role", "")).lower() == "abuse"]
    out = abuse or [c["email"] for c in contacts]
    if with_sublessee and sublessee is not None and sublessee.email:
        out.append(sublessee.email)
    return out


def message(session: Session, case_ref, *, sender: str, with_sublessee: bool = False):
    case = get_case(session, case_ref)
    customer = session.get(Customer, case.customer_id)
    sublessee = session.get(Sublessee, case.sublessee_id) if case.sublessee_id else None
    to = recipients(customer, sublessee, with_sublessee)
    if not to:
        raise ValidationError(f"{customer.name} has no contact with an e-mail address", "contacts")
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
    lines = [
        f"Abuse case {case.id}: {case.category.value} from {case.prefix}",
        f"Customer: {customer.name}" + (f" / sublessee {sublessee.name}" if sublessee else ""),
        f"Reports: {len(reports)}, {case.first_event_at:%Y-%m-%d %H:%M} to "
        f"{case.last_event_at:%Y-%m-%d %H:%M} UTC",
        f"Please answer by {case.deadline:%Y-%m-%d %H:%M} UTC (agreement clauses 7-15).",
        "",
        "Evidence:",
    ]
    for r in reports[:EVIDENCE_SHOWN]:
        lines.append(
            f"- {r.event_at:%Y-%m-%d %H:%M:%S} UTC {r.prefix} {r.category.value} "
            f"({r.source}, {r.reporter or 'unknown reporter'}): {r.description[:200]}"
        )
    if len(reports) > EVIDENCE_SHOWN:
        lines.append(f"- and {len(reports) - EVIDENCE_SHOWN} more")
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
):
    """Send the case to its holder's abuse contact, then mark it notified."""
    case, msg = message(session, case_ref, sender=sender, with_sublessee=with_sublessee)
    send(msg)
    return transition(
        session,
        case.id,
        "notify",
        actor=actor,
        comment=f"mailed to {msg['To']} ({msg['Message-ID']})",
    )
