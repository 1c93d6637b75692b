"""Reclamation and exit history for a period: what was ended or reclaimed, when, why and by
whom, and the quarantine entries and releases that followed."""

from __future__ import annotations

import heapq

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from ..listing import Scope
from ..models import Allocation, AuditLog, Customer, Quarantine
from .base import Column, Params, Report, period_defaults
from .sql import span, stream

COLUMNS = (
    Column("event", "事件", "event", "term"),
    Column("at", "时间", "time", "instant"),
    Column("customer", "客户", "customer"),
    Column("prefix", "地址段", "prefix"),
    Column("count", "地址数量", "addresses", "int"),
    Column("reason", "原因", "reason"),
    Column("actor", "操作人", "by"),
    Column("until", "隔离至", "quarantined until", "instant"),
    Column("allocation_id", "分配编号", "allocation id", "int"),
)


def _actor(action: str, model):
    return (
        select(AuditLog.actor)
        .where(
            AuditLog.object_type == model.__tablename__,
            AuditLog.object_id == model.id,
            AuditLog.action == action,
        )
        .order_by(AuditLog.seq.desc())
        .limit(1)
        .scalar_subquery()
    )


def rows(session: Session, params: Params, scope: Scope):
    start, end = params.start, params.end

    def ended():
        q = (
            select(
                Allocation.valid_to,
                Allocation.end_reason,
                Customer.name,
                Allocation.family,
                Allocation.first,
                Allocation.last,
                Allocation.prefixlen,
                Allocation.end_note,
                _actor("allocation.end", Allocation),
                Allocation.id,
            )
            .join(Customer, Customer.id == Allocation.customer_id)
            .where(Allocation.valid_to >= start, Allocation.valid_to < end)
        )
        q = scope.restrict(q, Allocation.customer_id)
        if params.customer_id is not None:
            q = q.where(Allocation.customer_id == params.customer_id)
        for at, reason, cname, fam, first, last, plen, note, actor, aid in stream(
            session, q.order_by(Allocation.valid_to, Allocation.id)
        ):
            _lo, _hi, count, prefix = span(fam, first, last, plen)
            yield (at, str(reason or "ended"), cname, prefix, count, note, actor, None, aid)

    def quarantine(column, event):
        q = (
            select(
                column,
                Customer.name,
                Quarantine.family,
                Quarantine.first,
                Quarantine.last,
                Quarantine.prefixlen,
                Quarantine.reason,
                Quarantine.until,
                Quarantine.allocation_id,
                _actor("quarantine.release", Quarantine)
                if event == "released"
                else _actor("allocation.end", Allocation),
            )
            .outerjoin(Allocation, Allocation.id == Quarantine.allocation_id)
            .outerjoin(Customer, Customer.id == Allocation.customer_id)
            .where(and_(column >= start, column < end))
        )
        q = scope.restrict(q, Allocation.customer_id)
        if params.customer_id is not None:
            q = q.where(Allocation.customer_id == params.customer_id)
        for at, cname, fam, first, last, plen, reason, until, aid, actor in stream(
            session, q.order_by(column, Quarantine.id)
        ):
            _lo, _hi, count, prefix = span(fam, first, last, plen)
            yield (at, event, cname, prefix, count, reason, actor, until, aid)

    merged = heapq.merge(
        ended(),
        quarantine(Quarantine.since, "quarantined"),
        quarantine(Quarantine.released_at, "released"),
        key=lambda r: r[0],
    )
    for at, event, *rest in merged:
        yield (event, at, *rest)


REPORT = Report(
    "reclamation",
    "地址收回及退出记录",
    "Reclamation and exit history",
    COLUMNS,
    rows,
    uses=frozenset({"period", "customer"}),
    description=(
        "期间内注销或收回的地址：时间、原因、操作人；以及冷却隔离和释放。",
        "What was ended or reclaimed in the period, when, why and by whom; quarantine entries "
        "and releases.",
    ),
    defaults=period_defaults,
)
