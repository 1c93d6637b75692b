"""Abuse and incidents for a period: cases by category, customer and outcome, how long the
customer took to answer, the sanctions; incidents with their reporting clock met or missed."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..addresses import Block, from_bytes
from ..db import utcnow
from ..listing import Scope
from ..models import AbuseCase, AbuseCaseEvent, Customer, Incident, Sanction
from .base import Column, Params, Report, period_defaults
from .sql import stream

COLUMNS = (
    Column("type", "类型", "type", "term"),
    Column("id", "编号", "id", "int"),
    Column("category", "类别", "category", "term"),
    Column("customer", "客户", "customer"),
    Column("subject", "地址/标题", "address / title"),
    Column("opened", "立案/宣布时间", "opened", "instant"),
    Column("state", "状态", "state", "term"),
    Column("answer", "客户答复", "customer answer", "term"),
    Column("answer_hours", "答复用时（小时）", "hours to answer"),
    Column("reports", "投诉数", "reports", "int"),
    Column("sanctions", "处置措施", "sanctions"),
    Column("deadline", "期限", "deadline", "instant"),
    Column("clock", "时限", "clock", "term"),
)


def _hours(start, end) -> str | None:
    if start is None or end is None:
        return None
    return f"{(end - start).total_seconds() / 3600:.1f}"


def rows(session: Session, params: Params, scope: Scope):
    start, end = params.start, params.end
    now = utcnow()
    answered = (
        select(func.min(AbuseCaseEvent.at))
        .where(AbuseCaseEvent.case_id == AbuseCase.id, AbuseCaseEvent.action.like("customer_%"))
        .scalar_subquery()
    )
    q = (
        select(AbuseCase, Customer.name, answered)
        .join(Customer, Customer.id == AbuseCase.customer_id)
        .where(AbuseCase.opened_at >= start, AbuseCase.opened_at < end)
    )
    q = scope.restrict(q, AbuseCase.customer_id)
    if params.customer_id is not None:
        q = q.where(AbuseCase.customer_id == params.customer_id)
    for case, cname, first_answer in stream(session, q.order_by(AbuseCase.opened_at, AbuseCase.id)):
        sanctions = session.execute(
            select(Sanction.kind, Sanction.status).where(Sanction.case_id == case.id)
        ).all()
        block = Block(case.family, from_bytes(case.first), case.prefixlen)
        if first_answer is not None:
            clock = "in_time" if first_answer <= case.deadline else "late"
        else:
            clock = "late" if now > case.deadline and case.state != "resolved" else "open"
        yield (
            "case",
            case.id,
            str(case.category),
            cname,
            str(block),
            case.opened_at,
            str(case.state),
            str(case.customer_status),
            _hours(case.opened_at, first_answer),
            case.report_count,
            ", ".join(f"{k} ({s})" for k, s in sanctions),
            case.deadline,
            clock,
        )
    q = (
        select(Incident, Customer.name)
        .outerjoin(Customer, Customer.id == Incident.customer_id)
        .where(Incident.declared_at >= start, Incident.declared_at < end)
    )
    if scope.customer_id is not None:
        q = q.where(Incident.customer_id == scope.customer_id)
    if params.customer_id is not None:
        q = q.where(Incident.customer_id == params.customer_id)
    for inc, cname in stream(session, q.order_by(Incident.declared_at, Incident.id)):
        if inc.reported_at is not None:
            clock = "in_time" if inc.reported_at <= inc.deadline else "late"
        else:
            clock = "late" if now > inc.deadline else "open"
        yield (
            "incident",
            inc.id,
            str(inc.category),
            cname,
            inc.title,
            inc.declared_at,
            str(inc.state),
            None,
            _hours(inc.declared_at, inc.reported_at),
            None,
            inc.reported_to or "",
            inc.deadline,
            clock,
        )


REPORT = Report(
    "abuse",
    "投诉与安全事件",
    "Abuse and incidents",
    COLUMNS,
    rows,
    uses=frozenset({"period", "customer"}),
    description=(
        "期间内的投诉案件（类别、客户、结果、答复用时、处置）和安全事件（报告时限是否满足）。",
        "Cases of the period by category, customer and outcome, time to answer and sanctions; "
        "incidents with their reporting clock met or missed.",
    ),
    defaults=period_defaults,
)
