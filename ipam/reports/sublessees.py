"""The sublessee register (clause 19): every sublessee holding a sublease at an instant, its
customer, its subleases and addresses, with its identity as registered then."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db import utcnow
from ..listing import Scope
from ..lookup import current_at
from ..models import Allocation, Customer, Sublease
from .base import Column, Masker, Params, Report
from .sql import span, stream, sublessee_at

COLUMNS = (
    Column("customer", "所属客户", "customer"),
    Column("sublessee", "转租方名称", "sublessee"),
    Column("kind", "性质", "kind", "term"),
    Column("id_type", "证件类型", "identity type", "term"),
    Column("id_number", "证件号码", "identity number"),
    Column("contact", "联系人", "contact person"),
    Column("phone", "联系电话", "phone"),
    Column("email", "电子邮箱", "e-mail"),
    Column("address", "联系地址", "postal address"),
    Column("purpose", "用途", "purpose"),
    Column("domains", "域名", "domains"),
    Column("prefix", "转租地址段", "subleased prefix"),
    Column("first", "起始地址", "first address"),
    Column("last", "终止地址", "last address"),
    Column("count", "地址数量", "addresses", "int"),
    Column("since", "转租起始时间", "subleased since", "instant"),
    Column("sublease_id", "转租编号", "sublease id", "int"),
)


def rows(session: Session, params: Params, scope: Scope):
    at = params.at or utcnow()
    mask = Masker(params.reveal)
    q = (
        select(
            Customer.name,
            sublessee_at(Sublease.sublessee_id, at),
            Sublease.family,
            Sublease.first,
            Sublease.last,
            Sublease.prefixlen,
            Sublease.valid_from,
            Sublease.id,
        )
        .join(Allocation, Allocation.id == Sublease.allocation_id)
        .join(Customer, Customer.id == Allocation.customer_id)
        .where(current_at(Sublease, at))
    )
    q = scope.restrict(q, Allocation.customer_id)
    if params.customer_id is not None:
        q = q.where(Allocation.customer_id == params.customer_id)
    q = q.order_by(Allocation.customer_id, Sublease.sublessee_id, Sublease.family, Sublease.first)
    for cname, snap, fam, first, last, plen, since, sid in stream(session, q):
        snap = snap or {}
        lo, hi, count, prefix = span(fam, first, last, plen)
        yield (
            cname,
            snap.get("name"),
            snap.get("kind"),
            snap.get("id_type"),
            mask.id_number(snap.get("id_number")),
            snap.get("contact_person"),
            mask.phone(snap.get("phone")),
            snap.get("email"),
            snap.get("address"),
            snap.get("purpose"),
            " ".join(snap.get("domains") or []),
            prefix,
            lo,
            hi,
            count,
            since,
            sid,
        )


REPORT = Report(
    "sublessees",
    "转租方登记表",
    "Sublessee register",
    COLUMNS,
    rows,
    uses=frozenset({"at", "customer"}),
    customers_may=True,
    description=(
        "某一时刻持有转租地址的每个转租方、其所属客户、转租地址段及登记信息（第19条）。",
        "Every sublessee holding a sublease at an instant, its customer, subleases and "
        "registered details (clause 19).",
    ),
)
