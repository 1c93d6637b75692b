"""Filing compliance (clauses 1, 2, 3, 4 and 5) for a period: each customer's ISP licence, ICP
numbers, PSB filing and its 15-day deadline, and each site's ICP number and approvals, as they
stand at the period's end; `in period` marks the deadlines that fell inside it."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ..filings import filings
from ..listing import Scope
from ..models import Customer, Finding, FindingKind, Site
from ..sites import NEEDS_APPROVAL
from .base import Column, Params, Report, period_defaults
from .sql import stream

COLUMNS = (
    Column("customer", "客户名称", "customer"),
    Column("uscc", "统一社会信用代码", "credit code"),
    Column("clause", "协议条款", "clause", "int"),
    Column("item", "事项", "item", "term"),
    Column("subject", "对象", "subject"),
    Column("state", "状态", "state", "term"),
    Column("deadline", "期限", "deadline", "date"),
    Column("in_period", "期内到期", "due in period", "term"),
    Column("detail", "说明", "detail"),
)


def rows(session: Session, params: Params, scope: Scope):
    tz = ZoneInfo(params.zone)
    first_day = params.start.astimezone(tz).date()
    last_day = (params.end - timedelta(microseconds=1)).astimezone(tz).date()
    q = select(Customer).where(
        Customer.created_at < params.end,
        or_(Customer.exited_at.is_(None), Customer.exited_at >= params.start),
    )
    q = scope.restrict(q, Customer.id)
    if params.customer_id is not None:
        q = q.where(Customer.id == params.customer_id)
    for (customer,) in stream(session, q.order_by(Customer.id)):
        head = (customer.name, customer.uscc)
        for f in filings(customer, last_day):
            due = f.deadline is not None and first_day <= f.deadline <= last_day
            yield (
                *head,
                f.clause,
                f.name,
                "",
                f.state,
                f.deadline,
                "yes" if due else "no",
                f.detail,
            )
        sites = session.scalars(
            select(Site)
            .where(Site.customer_id == customer.id, Site.valid_from < params.end)
            .where(or_(Site.valid_to.is_(None), Site.valid_to >= params.start))
            .order_by(Site.id)
        )
        for site in sites:
            yield (
                *head,
                2,
                "site_icp",
                site.domain,
                "met" if site.icp_number else "missing",
                None,
                "no",
                site.icp_number or "",
            )
            if site.category in NEEDS_APPROVAL:
                yield (
                    *head,
                    3,
                    "site_approval",
                    site.domain,
                    "met" if site.approval_ref else "missing",
                    None,
                    "no",
                    site.approval_ref or site.category,
                )
            if site.interactive:
                shared = session.scalar(
                    select(Finding.summary)
                    .where(
                        Finding.kind == FindingKind.SITE_INTERACTIVE_SHARED,
                        Finding.open_key.startswith(f"site:{site.id}:"),
                    )
                    .limit(1)
                )
                yield (
                    *head,
                    4,
                    "site_dedicated",
                    site.domain,
                    "missing" if shared else "met",
                    None,
                    "no",
                    shared or " ".join(site.addresses or []),
                )


REPORT = Report(
    "compliance",
    "备案合规情况",
    "Filing compliance",
    COLUMNS,
    rows,
    uses=frozenset({"period", "customer"}),
    description=(
        "ISP许可证、ICP备案号、公安备案及其15日期限、网站前置审批和专用地址：期末状态与期内到期事项。",
        "ISP licences, ICP numbers, PSB filings and their 15-day deadlines, site approvals and "
        "dedicated addresses: the state at the period's end and what fell due in it.",
    ),
    defaults=period_defaults,
)
