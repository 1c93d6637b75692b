"""IP address filing (《互联网IP地址备案管理办法》, the MIIT filing system): every allocated and
sub-leased segment at an instant, and the changes of a period with their filing deadline.

A change counts as filed once an issued "ip_filing_changes" report covered its
time; past the deadline (Params.deadline_days after the change) it is overdue.
"""

from __future__ import annotations

import heapq
from datetime import datetime, timedelta

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from ..db import utcnow
from ..listing import Scope
from ..lookup import current_at, inside
from ..models import (
    Allocation,
    Customer,
    CustomerRevision,
    IssuedReport,
    Pool,
    Sublease,
    SublesseeRevision,
)
from .base import Column, Masker, Params, Report, period_defaults
from .sql import customer_at, span, stream, sublessee_at

SEGMENT = (
    Column("first", "起始地址", "first address"),
    Column("last", "终止地址", "last address"),
    Column("count", "地址数量", "addresses", "int"),
    Column("prefix", "地址段", "prefix"),
    Column("holder", "使用方名称", "holder"),
    Column("holder_type", "使用方类型", "holder type", "term"),
    Column("holder_kind", "使用方性质", "holder kind", "term"),
    Column("id_type", "证件类型", "identity type", "term"),
    Column("id_number", "证件号码", "identity number"),
    Column("purpose", "用途", "purpose"),
    Column("address", "联系地址", "postal address"),
    Column("contact", "联系人及电话", "contact"),
    Column("customer", "所属客户", "customer"),
)

COLUMNS = (
    *SEGMENT,
    Column("start", "起始日期", "start date", "date"),
    Column("status", "状态", "status", "term"),
)

CHANGE_COLUMNS = (
    Column("change", "变更类型", "change", "term"),
    Column("changed_at", "变更时间", "changed at", "instant"),
    *SEGMENT,
    Column("detail", "说明", "detail"),
    Column("deadline", "报备期限", "filing deadline", "date"),
    Column("filing", "报备状态", "filing state", "term"),
    Column("filed_in", "报备报告编号", "filed in report"),
)


def _filters(session: Session, q, model, params: Params, scope: Scope, customer_col):
    q = scope.restrict(q, customer_col)
    if params.customer_id is not None:
        q = q.where(customer_col == params.customer_id)
    if params.pool_id is not None:
        pool = session.get(Pool, params.pool_id)
        q = q.where(inside(model, pool.block))
    return q


def _customer_cells(snap: dict, mask: Masker) -> tuple:
    contacts = snap.get("contacts") or snap.get("responsible_persons") or []
    return (
        snap.get("name"),
        "customer",
        snap.get("kind"),
        "uscc",
        snap.get("uscc"),  # an organisation's code: not personal data
        None,
        "",
        mask.people(contacts[:1]),
        snap.get("name"),
    )


def _sublessee_cells(snap: dict, customer_name: str, mask: Masker) -> tuple:
    contact = {"name": snap.get("contact_person"), "phone": snap.get("phone")}
    return (
        snap.get("name"),
        "sublessee",
        snap.get("kind"),
        snap.get("id_type"),
        mask.id_number(snap.get("id_number")),
        snap.get("purpose"),
        snap.get("address"),
        mask.people([contact]),
        customer_name,
    )


def _allocations(session: Session, params: Params, scope: Scope, at: datetime, where):
    q = select(
        Allocation.id,
        Allocation.family,
        Allocation.first,
        Allocation.last,
        Allocation.prefixlen,
        Allocation.purpose,
        Allocation.valid_from,
        Allocation.valid_to,
        Allocation.end_reason,
        customer_at(Allocation.customer_id, at),
    ).where(where)
    q = _filters(session, q, Allocation, params, scope, Allocation.customer_id)
    return q


def _subleases(session: Session, params: Params, scope: Scope, at: datetime, where):
    q = (
        select(
            Sublease.id,
            Sublease.family,
            Sublease.first,
            Sublease.last,
            Sublease.prefixlen,
            Sublease.valid_from,
            Sublease.valid_to,
            Sublease.end_reason,
            sublessee_at(Sublease.sublessee_id, at),
            Customer.name,
        )
        .join(Allocation, Allocation.id == Sublease.allocation_id)
        .join(Customer, Customer.id == Allocation.customer_id)
        .where(where)
    )
    return _filters(session, q, Sublease, params, scope, Allocation.customer_id)


def segments(session: Session, params: Params, scope: Scope):
    """Every allocated, then every sub-leased, segment at `params.at` (default now)."""
    at = params.at or utcnow()
    mask = Masker(params.reveal)
    q = _allocations(session, params, scope, at, current_at(Allocation, at))
    order = (Allocation.family, Allocation.first)
    for _a_id, fam, first, last, plen, purpose, since, _to, _end, snap in stream(
        session, q.order_by(*order)
    ):
        cells = list(_customer_cells(snap or {}, mask))
        cells[5] = purpose
        yield (*span(fam, first, last, plen), *cells, since, "allocated")
    q = _subleases(session, params, scope, at, current_at(Sublease, at))
    for _s, fam, first, last, plen, since, _to, _end, snap, cname in stream(
        session, q.order_by(Sublease.family, Sublease.first)
    ):
        yield (
            *span(fam, first, last, plen),
            *_sublessee_cells(snap or {}, cname, mask),
            since,
            "subleased",
        )


def _filed(session: Session) -> list[tuple[datetime, datetime, datetime, int]]:
    """(start, end, issued_at, id) of every issued changes report."""
    out = []
    for rid, p, issued in session.execute(
        select(IssuedReport.id, IssuedReport.params, IssuedReport.issued_at).where(
            IssuedReport.name == "ip_filing_changes"
        )
    ):
        try:
            start, end = datetime.fromisoformat(p["start"]), datetime.fromisoformat(p["end"])
        except (KeyError, TypeError, ValueError):
            continue
        out.append((start, end, issued, rid))
    return out


def _events(session: Session, params: Params, scope: Scope):
    """Sorted streams of (time, change, cells...) for each kind of change in the period."""
    start, end = params.start, params.end
    mask = Masker(params.reveal)

    def allocs(column, change):
        where = and_(column >= start, column < end)
        q = _allocations(session, params, scope, end, where).order_by(column, Allocation.id)
        for a_id, fam, first, last, plen, purpose, since, until, reason, snap in stream(session, q):
            when = since if change == "new" else until
            cells = list(_customer_cells(snap or {}, mask))
            cells[5] = purpose
            detail = f"allocation {a_id}" + (f" ({reason})" if change == "ended" else "")
            yield (when, change, *span(fam, first, last, plen), *cells, detail)

    def subs(column, change):
        where = and_(column >= start, column < end)
        q = _subleases(session, params, scope, end, where).order_by(column, Sublease.id)
        for s_id, fam, first, last, plen, since, until, reason, snap, cname in stream(session, q):
            when = since if change == "new" else until
            detail = f"sublease {s_id}" + (f" ({reason})" if change == "ended" else "")
            yield (
                when,
                change,
                *span(fam, first, last, plen),
                *_sublessee_cells(snap or {}, cname, mask),
                detail,
            )

    def revisions(model, key):
        # Revisions of the period that follow an earlier one of the same record (a record's
        # first revision is its registration, not a change), streamed in time order.
        earlier = model.__table__.alias("earlier")
        q = (
            select(key, model.recorded_at)
            .where(model.recorded_at >= start, model.recorded_at < end)
            .where(
                select(earlier.c.id)
                .where(earlier.c[key.key] == key, earlier.c.id < model.id)
                .exists()
            )
            .order_by(model.recorded_at, model.id)
        )
        return stream(session, q)

    def customer_changes():
        # A customer's revision changes the holder data of every segment it held then.
        for cid, when in revisions(CustomerRevision, CustomerRevision.customer_id):
            where = and_(current_at(Allocation, when), Allocation.customer_id == cid)
            q = _allocations(session, params, scope, when, where).order_by(Allocation.first)
            for a_id, fam, first, last, plen, purpose, *_rest, snap in session.execute(q):
                cells = list(_customer_cells(snap or {}, mask))
                cells[5] = purpose
                yield (when, "changed", *span(fam, first, last, plen), *cells,
                       f"customer data revised (allocation {a_id})")  # fmt: skip

    def sublessee_changes():
        for sid, when in revisions(SublesseeRevision, SublesseeRevision.sublessee_id):
            where = and_(current_at(Sublease, when), Sublease.sublessee_id == sid)
            q = _subleases(session, params, scope, when, where).order_by(Sublease.first)
            for s_id, fam, first, last, plen, *_rest, snap, cname in session.execute(q):
                yield (when, "changed", *span(fam, first, last, plen),
                       *_sublessee_cells(snap or {}, cname, mask),
                       f"sublessee data revised (sublease {s_id})")  # fmt: skip

    return [
        allocs(Allocation.valid_from, "new"),
        allocs(Allocation.valid_to, "ended"),
        subs(Sublease.valid_from, "new"),
        subs(Sublease.valid_to, "ended"),
        customer_changes(),
        sublessee_changes(),
    ]


def changes(session: Session, params: Params, scope: Scope):
    """The period's changes in time order, each with its deadline and whether it was filed."""
    now = utcnow()
    filed = _filed(session)
    days = timedelta(days=params.deadline_days)
    for when, change, *cells in heapq.merge(*_events(session, params, scope), key=lambda r: r[0]):
        deadline = when + days
        report = next(
            (rid for s, e, issued, rid in filed if s <= when < e and issued >= when), None
        )
        state = "filed" if report else ("overdue" if now > deadline else "pending")
        yield (change, when, *cells, deadline, state, f"#{report}" if report else "")


REPORT = Report(
    "ip_filing",
    "IP地址备案表",
    "IP address filing",
    COLUMNS,
    segments,
    uses=frozenset({"at", "customer", "pool"}),
    customers_may=True,
    description=(
        "每个已分配和已转租的地址段：起止地址、数量、使用方、证件、用途、联系人、起始日期。",
        "Every allocated and sub-leased segment: range, count, holder, identity, purpose, "
        "contact, start date.",
    ),
)

CHANGES = Report(
    "ip_filing_changes",
    "IP地址备案变更表",
    "IP address filing: changes",
    CHANGE_COLUMNS,
    changes,
    uses=frozenset({"period", "customer", "pool", "deadline"}),
    customers_may=True,
    description=(
        "期间内新增、变更、注销的地址段及其报备期限；超过期限未报备的标为逾期。",
        "Segments new, changed or ended in the period, with their filing deadline; those "
        "not filed in time are overdue.",
    ),
    defaults=period_defaults,
)
