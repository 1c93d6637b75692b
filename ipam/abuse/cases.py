"""Abuse cases from open to a recorded sanction (clauses 15, 19 and the closing paragraph).

States: open → notified → acknowledged → resolved, or escalated (from any
unresolved state) and then resolved. The customer keeps its own status
(none, acknowledged, answered, disputed). Every transition is a case event
and an audit entry.

Escalation ladder: warning → suspension → reclamation → termination, the
next step counted from the customer's confirmed sanctions of the past year.
A warning may be confirmed on proposal; every later step waits for an
engineer to confirm it, and only then acts: suspension sets the customer's
status, reclamation ends its allocations into quarantine through the core's
reclamation, termination ends everything (exit).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import audit, reclamation, validation
from ..customers import get_customer, set_status
from ..db import utcnow
from ..errors import NotFound, Phrase, StateConflict, ValidationError
from ..listing import ALL, EVERYONE, Scope, Window, fetch
from ..models import (
    AbuseCase,
    AbuseCaseEvent,
    AbuseReport,
    AbuseReportCase,
    CaseState,
    CustomerStatus,
    Sanction,
    SanctionKind,
)
from ..validation import choice

LADDER = (
    SanctionKind.WARNING,
    SanctionKind.SUSPENSION,
    SanctionKind.RECLAMATION,
    SanctionKind.TERMINATION,
)
LADDER_MEMORY = timedelta(days=365)
TRANSITIONS = {
    "notify": ({"open"}, "notified"),
    "acknowledge": ({"notified", "open"}, "acknowledged"),
    "resolve": ({"open", "notified", "acknowledged", "escalated"}, "resolved"),
    "escalate": ({"open", "notified", "acknowledged"}, "escalated"),
}
CUSTOMER_STATUSES = ("acknowledged", "answered", "disputed")


def get_case(session: Session, ref) -> AbuseCase:
    case = session.get(AbuseCase, int(ref)) if str(ref).strip().isdigit() else None
    if case is None:
        raise NotFound("no abuse case {ref!r}", "case", ref=ref)
    return case


def _event(session, case, actor, action, before, after, comment="", at=None) -> None:
    """One line of the case's history; a comment the system wrote is kept as a Phrase too."""
    at = at or utcnow()
    session.add(
        AbuseCaseEvent(
            case_id=case.id,
            at=at,
            actor=actor,
            action=action,
            from_state=before,
            to_state=after,
            comment=str(comment or ""),
            phrase=comment.as_json() if isinstance(comment, Phrase) else None,
        )
    )
    case.updated_at = at
    session.flush()
    audit.record(
        session,
        actor,
        f"abuse_case.{action}",
        case,
        {"from": before, "to": after, "comment": comment or ""},
    )


def allowed_actions(case: AbuseCase) -> list[str]:
    """What staff may do to the case in its state: the transitions TRANSITIONS allows, the
    notification mail while notifying is allowed, a sanction until it is resolved. The page
    offers these only, so no button leads to a refusal."""
    state = str(case.state)
    out = [name for name, (allowed, _target) in TRANSITIONS.items() if state in allowed]
    if "notify" in out:
        out.insert(0, "mail")
    if state != "resolved":
        out.append("sanction")
    return out


def transition(
    session: Session, ref, action: str, *, actor: str, comment: str = "", at: datetime | None = None
) -> AbuseCase:
    """Move a case along (notify, acknowledge, resolve, escalate); resolve needs a comment."""
    if action not in TRANSITIONS:
        raise ValidationError(
            "{action!r} is not one of {choices}",
            "action",
            action=action,
            choices=", ".join(TRANSITIONS),
        )
    case = get_case(session, ref)
    allowed, target = TRANSITIONS[action]
    if case.state not in allowed:
        raise StateConflict(
            "case {id} is {state}: it cannot {action}",
            "state",
            id=case.id,
            state=case.state,
            action=Phrase(action),
        )
    if action in ("resolve", "escalate") and not isinstance(comment, Phrase):
        comment = validation.required(comment, "comment", 4000)
    before = case.state
    case.state = target
    if action == "acknowledge" and case.customer_status == "none":
        case.customer_status = "acknowledged"
    _event(session, case, actor, action, before, target, comment, at)
    return case


def customer_answer(session: Session, ref, status: str, text: str, *, actor: str) -> AbuseCase:
    """The customer's side: acknowledge, answer or dispute, with what it says."""
    case = get_case(session, ref)
    if status not in CUSTOMER_STATUSES:
        raise ValidationError(
            "{status!r} is not one of {choices}",
            "customer_status",
            status=status,
            choices=", ".join(CUSTOMER_STATUSES),
        )
    text = validation.required(text, "answer", 4000)
    if case.state == "resolved":
        raise StateConflict("case {id} is resolved", "state", id=case.id)
    case.customer_status = status
    before = case.state
    if case.state in ("open", "notified"):
        case.state = "acknowledged"
    _event(session, case, actor, f"customer_{status}", before, case.state, text)
    return case


def overdue(session: Session, now: datetime | None = None) -> list[AbuseCase]:
    """Unanswered cases past their deadline (to escalate or remind)."""
    now = now or utcnow()
    return list(
        session.execute(
            select(AbuseCase)
            .where(AbuseCase.state.in_(("open", "notified")), AbuseCase.deadline < now)
            .order_by(AbuseCase.deadline)
        ).scalars()
    )


def ladder(text) -> tuple[SanctionKind, ...]:
    """A ladder from its configuration ("warning,suspension,termination"), checked.

    Rungs must be sanction kinds, each at most once, in the order of the full
    ladder (a deployment may skip rungs, never reorder them).
    """
    if isinstance(text, (tuple, list)):
        names = [str(getattr(x, "value", x)) for x in text]
    else:
        names = [x.strip() for x in str(text or "").split(",") if x.strip()]
    try:
        rungs = tuple(SanctionKind(n) for n in names)
    except ValueError:
        raise ValidationError(
            "{names} holds an unknown sanction: use {choices}",
            "IPAM_SANCTION_LADDER",
            names=names,
            choices=", ".join(k.value for k in LADDER),
        ) from None
    order = [LADDER.index(r) for r in rungs]
    if not rungs or order != sorted(set(order)):
        raise ValidationError(
            "needs one or more of warning, suspension, reclamation, termination, in that order",
            "IPAM_SANCTION_LADDER",
        )
    return rungs


def next_step(
    session: Session, customer_id: int, now: datetime | None = None, rungs=LADDER
) -> SanctionKind:
    """The ladder's next rung for a customer (its confirmed sanctions of the past year)."""
    now = now or utcnow()
    done = session.scalar(
        select(func.count()).where(
            Sanction.customer_id == customer_id,
            Sanction.status == "confirmed",
            Sanction.confirmed_at >= now - LADDER_MEMORY,
        )
    )
    return rungs[min(done, len(rungs) - 1)]


def propose_sanction(
    session: Session,
    case_ref,
    reason: str,
    *,
    actor: str,
    confirm_warning: bool = True,
    rungs=LADDER,
) -> Sanction:
    """Propose the next rung for the case's customer; a warning is confirmed at once."""
    case = get_case(session, case_ref)
    reason = validation.required(reason, "reason", 4000)
    waiting = session.execute(
        select(Sanction.id).where(
            Sanction.customer_id == case.customer_id, Sanction.status == "proposed"
        )
    ).scalar()
    if waiting is not None:
        raise StateConflict(
            "sanction {waiting} waits for confirmation", "sanction", waiting=waiting
        )
    kind = next_step(session, case.customer_id, rungs=ladder(rungs))
    reports = session.execute(
        select(AbuseReportCase.report_id).where(AbuseReportCase.case_id == case.id)
    ).scalars()
    now = utcnow()
    sanction = Sanction(
        customer_id=case.customer_id,
        case_id=case.id,
        kind=kind,
        status="proposed",
        reason=reason,
        evidence=[{"case": case.id, "reports": list(reports)}],
        proposed_by=actor,
        proposed_at=now,
    )
    session.add(sanction)
    session.flush()
    audit.record(
        session,
        actor,
        "sanction.propose",
        sanction,
        {"kind": kind.value, "customer_id": case.customer_id, "reason": reason},
    )
    if case.state != "escalated" and case.state != "resolved":
        transition(
            session,
            case.id,
            "escalate",
            actor=actor,
            comment=Phrase("{kind}: {reason}", kind=Phrase(kind.value), reason=reason),
        )
    if kind == SanctionKind.WARNING and confirm_warning:
        confirm_sanction(session, sanction.id, actor=actor)
    return sanction


def confirm_sanction(session: Session, ref, *, actor: str) -> Sanction:
    """An engineer confirms a proposed sanction, which then takes effect."""
    sanction = session.get(Sanction, int(ref)) if str(ref).strip().isdigit() else None
    if sanction is None:
        raise NotFound("no sanction {ref!r}", "sanction", ref=ref)
    if sanction.status != "proposed":
        raise StateConflict(
            "sanction {id} is {status}", "sanction", id=sanction.id, status=sanction.status
        )
    if sanction.kind != SanctionKind.WARNING and not actor.startswith(("user:", "cli:")):
        raise ValidationError("beyond a warning, an engineer confirms", "actor")
    customer = get_customer(session, sanction.customer_id)
    now = utcnow()
    why = f"sanction {sanction.id} ({sanction.kind.value}): {sanction.reason}"
    if sanction.kind == SanctionKind.SUSPENSION:
        set_status(session, customer, CustomerStatus.SUSPENDED, now, actor, why)
    elif sanction.kind == SanctionKind.RECLAMATION:
        reclamation.reclaim(session, customer, reason=why, actor=actor, at=now)
    elif sanction.kind == SanctionKind.TERMINATION:
        reclamation.customer_exit(session, customer, actor=actor, at=now, note=why)
    sanction.status = "confirmed"
    sanction.confirmed_by = actor
    sanction.confirmed_at = now
    session.flush()
    audit.record(
        session,
        actor,
        "sanction.confirm",
        sanction,
        {"kind": sanction.kind.value, "customer_id": customer.id},
    )
    return sanction


def case_record(session: Session, case: AbuseCase) -> tuple[list, list, list]:
    """(reports, events, sanctions of its customer) of a case, for its page and the API."""
    reports = session.scalars(
        select(AbuseReport)
        .join(AbuseReportCase, AbuseReportCase.report_id == AbuseReport.id)
        .where(AbuseReportCase.case_id == case.id)
        .order_by(AbuseReport.event_at)
    ).all()
    events = session.scalars(
        select(AbuseCaseEvent).where(AbuseCaseEvent.case_id == case.id).order_by(AbuseCaseEvent.id)
    ).all()
    sanctions = session.scalars(
        select(Sanction).where(Sanction.customer_id == case.customer_id).order_by(Sanction.id)
    ).all()
    return list(reports), list(events), list(sanctions)


def list_cases(
    session: Session,
    *,
    state=None,
    customer_id: int | None = None,
    owner: str | None = None,
    order: str = "id",
    scope: Scope = EVERYONE,
    window: Window = ALL,
) -> tuple[list[AbuseCase], int]:
    """Abuse cases newest first (order "updated": last touched first), that the scope sees;
    `owner` a username: that user's cases ("my cases")."""
    q = scope.restrict(select(AbuseCase), AbuseCase.customer_id)
    if owner:
        q = q.where(AbuseCase.owner == owner)
    if state:
        q = q.where(AbuseCase.state == choice(CaseState, state, "state"))
    if customer_id is not None:
        q = q.where(AbuseCase.customer_id == customer_id)
    if order == "updated":
        q = q.order_by(AbuseCase.updated_at.desc(), AbuseCase.id.desc())
    else:
        q = q.order_by(AbuseCase.id.desc())
    return fetch(session, q, window)


def case_of_report(session: Session, report_id: int) -> int | None:
    """The case a report joined, if any (a report on unheld space joins none)."""
    return session.scalar(
        select(AbuseReportCase.case_id).where(AbuseReportCase.report_id == report_id).limit(1)
    )


def opened_per_week(
    session: Session, weeks: int, zone: str, scope: Scope = EVERYONE, now: datetime | None = None
) -> list[tuple[datetime, dict[str, int]]]:
    """Cases opened in each of the last `weeks` local weeks (Monday first), by category."""
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(zone)
    now = (now or utcnow()).astimezone(tz)
    this_week = (now - timedelta(days=now.weekday())).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    starts = [this_week - timedelta(weeks=weeks - 1 - i) for i in range(weeks)]
    counts: dict[datetime, dict[str, int]] = {s: {} for s in starts}
    q = select(AbuseCase.opened_at, AbuseCase.category).where(AbuseCase.opened_at >= starts[0])
    q = scope.restrict(q, AbuseCase.customer_id)
    for opened, category in session.execute(q):
        local = opened.astimezone(tz)
        week = (local - timedelta(days=local.weekday())).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        if week in counts:
            bucket = counts[week]
            bucket[category.value] = bucket.get(category.value, 0) + 1
    return [(s, counts[s]) for s in starts]


def due_soon(
    session: Session, hours: int = 48, limit: int = 20, now: datetime | None = None
) -> tuple[list[AbuseCase], int]:
    """Unresolved cases whose answer is due within `hours` or overdue, soonest first."""
    now = now or utcnow()
    q = select(AbuseCase).where(
        AbuseCase.state != "resolved", AbuseCase.deadline <= now + timedelta(hours=hours)
    )
    return fetch(session, q.order_by(AbuseCase.deadline), Window(limit))


def assign(session: Session, ref, owner: str | None, *, actor: str) -> AbuseCase:
    """Give the case to a staff user (None: to nobody); the history says who and by whom."""
    from ..models import Role
    from ..users import get_user

    case = get_case(session, ref)
    name = None
    if owner not in (None, ""):
        user = get_user(session, owner, "owner")
        if user.role not in (Role.ADMIN, Role.ENGINEER) or not user.active:
            raise ValidationError(
                "{name} is no active engineer: only staff work cases", "owner", name=user.username
            )
        name = user.username
    if case.owner == name:
        return case
    before, case.owner = case.owner, name
    comment = Phrase("now worked by {owner}", owner=name) if name else Phrase("no longer assigned")
    _event(session, case, actor, "assign", case.state, case.state, comment)
    audit.record(session, actor, "abuse_case.assign", case, {"owner": name, "before": before})
    return case
