"""Clause 6: per customer, its sites and URLs, contacts, admin accounts and responsible persons,
as the register stood at an instant (the periodic report to the police via the provider)."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ..db import utcnow
from ..listing import Scope
from ..lookup import current_at
from ..models import Customer, Site, Sublessee
from .base import Column, Masker, Params, Report
from .sql import customer_at, site_at, stream

COLUMNS = (
    Column("customer", "客户名称", "customer"),
    Column("uscc", "统一社会信用代码", "credit code"),
    Column("responsible", "安全责任人", "responsible persons"),
    Column("contacts", "联系人", "contacts"),
    Column("operator", "网站运营方", "operated by"),
    Column("site", "网站名称", "site"),
    Column("domain", "域名", "domain"),
    Column("urls", "网址", "URLs"),
    Column("icp_number", "ICP备案号", "ICP number"),
    Column("category", "服务类别", "category", "term"),
    Column("approval", "前置审批文号", "sector approval"),
    Column("interactive", "交互式服务", "interactive", "term"),
    Column("admins", "管理员账号", "admin accounts"),
    Column("addresses", "服务地址", "served from"),
)


def rows(session: Session, params: Params, scope: Scope):
    at = params.at or utcnow()
    mask = Masker(params.reveal)
    cq = select(Customer.id, customer_at(Customer.id, at)).where(
        Customer.created_at <= at, or_(Customer.exited_at.is_(None), Customer.exited_at > at)
    )
    cq = scope.restrict(cq, Customer.id)
    sq = (
        select(Site.customer_id, Sublessee.name, site_at(Site.id, at))
        .outerjoin(Sublessee, Sublessee.id == Site.sublessee_id)
        .where(current_at(Site, at))
    )
    sq = scope.restrict(sq, Site.customer_id)
    if params.customer_id is not None:
        cq = cq.where(Customer.id == params.customer_id)
        sq = sq.where(Site.customer_id == params.customer_id)
    sites = stream(session, sq.order_by(Site.customer_id, Site.id))
    pending = next(sites, None)
    for cid, snap in stream(session, cq.order_by(Customer.id)):
        snap = snap or {}
        head = (
            snap.get("name"),
            snap.get("uscc"),
            mask.people(snap.get("responsible_persons")),
            mask.people(snap.get("contacts")),
        )
        while pending is not None and pending[0] < cid:
            pending = next(sites, None)
        if pending is None or pending[0] != cid:
            yield (*head, None, None, None, None, None, None, None, None, None, None)
            continue
        while pending is not None and pending[0] == cid:
            _c, sublessee, site = pending
            site = site or {}
            yield (
                *head,
                sublessee or snap.get("name"),
                site.get("name"),
                site.get("domain"),
                " ".join(site.get("urls") or []),
                site.get("icp_number"),
                site.get("category"),
                site.get("approval_ref"),
                site.get("interactive") or "no",
                mask.accounts(site.get("admin_accounts")),
                " ".join(site.get("addresses") or []),
            )
            pending = next(sites, None)


REPORT = Report(
    "clause6",
    "第6条报告：网站、网址、联系人及管理员账号",
    "Clause 6 report: sites, URLs, contacts, admin accounts",
    COLUMNS,
    rows,
    uses=frozenset({"at", "customer"}),
    description=(
        "某一时刻每个客户的网站、网址、联系人、管理员账号和安全责任人。",
        "Per customer at an instant: sites, URLs, contacts, admin accounts, responsible persons.",
    ),
)
