"""Lists anyone can filter, sort, page and export: the ledger's records as tables.

Each list names its columns (in Chinese and English, as the reports do), the
filters that apply to it and the columns it sorts by; `page` answers one page
of rows with the total, `stream` every row that matches, for a CSV of exactly
what is filtered. The web page, the API and the CLI call these and nothing
else, so a list filters, sorts and scopes the same way wherever it is read.

Customer users see their own records only (the Scope); the audit log is for
the provider's staff and auditors (the web's access rule says so).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session, aliased

from . import models, validation
from .addresses import Block
from .customers import get_customer
from .errors import NotFound, ValidationError
from .listing import Scope, Window
from .models import (
    AbuseCase,
    AbuseReport,
    Allocation,
    AuditLog,
    ChangeRequest,
    Customer,
    Finding,
    Incident,
    Pool,
    ProbeRun,
    ProbeSchedule,
    Quarantine,
    Site,
    Sublease,
    Sublessee,
)
from .pools import get_pool
from .privacy import mask, mask_id
from .reports import files
from .reports.base import _moment
from .sites import CATEGORIES as SITE_CATEGORIES

MAX_PAGE = 500
# Counting stops here: past it a list says "10,000+" (counting a million rows on every page
# costs more than the page; bench/pages.py measures it).
COUNT_CAP = 10_000
FIRST_PAGE = Window(50)
STREAM_CHUNK = 1000


@dataclass(frozen=True)
class Col:
    """A column: its key, its titles, and the SQL it sorts by (None: not sortable)."""

    key: str
    zh: str
    en: str
    sort: object = None
    kind: str = "text"  # text | int | instant | term (a state or kind, shown by its label)

    def title(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en


@dataclass(frozen=True)
class Filt:
    """A filter: its key, titles and what it takes (choice, text, customer, pool, from, to)."""

    key: str
    zh: str
    en: str
    kind: str = "text"
    choices: tuple[str, ...] = ()
    words: str = ""  # a prefix of the choices' TERMS keys where a word means two things

    def title(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en


@dataclass(frozen=True)
class ListDef:
    name: str
    zh: str
    en: str
    cols: tuple[Col, ...]
    filters: tuple[Filt, ...]
    query: Callable[[dict, Scope], Select]
    row: Callable[[tuple], tuple]
    default_sort: str
    staff_only: bool = False
    extra: dict = field(default_factory=dict)

    def title(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en


def _prefix(family, first, prefixlen) -> str:
    return str(Block.of(family, first, prefixlen))


def _period(q: Select, column, values: dict) -> Select:
    if values.get("from"):
        q = q.where(column >= values["from"])
    if values.get("to"):
        q = q.where(column < values["to"])
    return q


def _state(q: Select, model, values: dict) -> Select:
    state = values.get("state") or "current"
    if state == "current":
        return q.where(model.valid_to.is_(None))
    if state == "ended":
        return q.where(model.valid_to.is_not(None))
    return q


def _choices(enum_name: str) -> tuple[str, ...]:
    return tuple(m.value for m in getattr(models, enum_name))


CURRENT = Filt("state", "状态", "state", "choice", ("current", "ended", "all"))
CUSTOMER = Filt("customer", "客户", "customer", "customer")
FROM = Filt("from", "起始日期", "from", "from")
TO = Filt("to", "截止日期（含）", "to (included)", "to")


# --------------------------------------------------------------------------- the lists


def _allocations(values: dict, scope: Scope) -> Select:
    q = (
        select(
            Allocation.id,
            Allocation.family,
            Allocation.first,
            Allocation.prefixlen,
            Customer.name,
            Pool.name,
            Allocation.purpose,
            Allocation.valid_from,
            Allocation.valid_to,
            Allocation.end_reason,
        )
        .join(Customer, Customer.id == Allocation.customer_id)
        .join(Pool, Pool.id == Allocation.pool_id)
    )
    q = scope.restrict(_state(q, Allocation, values), Allocation.customer_id)
    if values.get("customer"):
        q = q.where(Allocation.customer_id == values["customer"])
    if values.get("pool"):
        q = q.where(Allocation.pool_id == values["pool"])
    return _period(q, Allocation.valid_from, values)


ALLOCATIONS = ListDef(
    "allocations",
    "分配",
    "Allocations",
    (
        Col("id", "编号", "id", Allocation.id, "int"),
        Col("prefix", "地址段", "prefix", (Allocation.family, Allocation.first)),
        Col("customer", "客户", "customer", Customer.name),
        Col("pool", "地址池", "pool", Pool.name),
        Col("purpose", "用途", "purpose", Allocation.purpose),
        Col("valid_from", "开始", "from", Allocation.valid_from, "instant"),
        Col("valid_to", "结束", "to", Allocation.valid_to, "instant"),
        Col("end_reason", "结束原因", "end reason", Allocation.end_reason, "term"),
    ),
    (CURRENT, CUSTOMER, Filt("pool", "地址池", "pool", "pool"), FROM, TO),
    _allocations,
    lambda r: (r[0], _prefix(r[1], r[2], r[3]), *r[4:]),
    "-id",  # newest first along the primary key: no sort of a million rows
)


def _subleases(values: dict, scope: Scope) -> Select:
    q = (
        select(
            Sublease.id,
            Sublease.family,
            Sublease.first,
            Sublease.prefixlen,
            Sublessee.name,
            Customer.name,
            Sublease.valid_from,
            Sublease.valid_to,
            Sublease.end_reason,
        )
        .join(Sublessee, Sublessee.id == Sublease.sublessee_id)
        .join(Customer, Customer.id == Sublessee.customer_id)
    )
    q = scope.restrict(_state(q, Sublease, values), Sublessee.customer_id)
    if values.get("customer"):
        q = q.where(Sublessee.customer_id == values["customer"])
    if values.get("q"):
        q = q.where(Sublessee.name.contains(values["q"], autoescape=True))
    return _period(q, Sublease.valid_from, values)


SUBLEASES = ListDef(
    "subleases",
    "转租",
    "Subleases",
    (
        Col("id", "编号", "id", Sublease.id, "int"),
        Col("prefix", "地址段", "prefix", (Sublease.family, Sublease.first)),
        Col("sublessee", "转租方", "sublessee", Sublessee.name),
        Col("customer", "客户", "customer", Customer.name),
        Col("valid_from", "开始", "from", Sublease.valid_from, "instant"),
        Col("valid_to", "结束", "to", Sublease.valid_to, "instant"),
        Col("end_reason", "结束原因", "end reason", Sublease.end_reason, "term"),
    ),
    (CURRENT, CUSTOMER, Filt("q", "转租方名称包含", "sublessee name contains"), FROM, TO),
    _subleases,
    lambda r: (r[0], _prefix(r[1], r[2], r[3]), *r[4:]),
    "-id",
)


def _sublessees(values: dict, scope: Scope) -> Select:
    held = (
        select(func.count())
        .select_from(Sublease)
        .where(Sublease.sublessee_id == Sublessee.id, Sublease.valid_to.is_(None))
        .scalar_subquery()
    )
    q = select(
        Sublessee.id,
        Sublessee.name,
        Sublessee.kind,
        Customer.name,
        Sublessee.id_number,
        Sublessee.contact_person,
        Sublessee.phone,
        held,
    ).join(Customer, Customer.id == Sublessee.customer_id)
    q = scope.restrict(q, Sublessee.customer_id)
    if values.get("customer"):
        q = q.where(Sublessee.customer_id == values["customer"])
    if values.get("kind"):
        q = q.where(Sublessee.kind == values["kind"])
    if values.get("q"):
        q = q.where(Sublessee.name.contains(values["q"], autoescape=True))
    return q


SUBLESSEES = ListDef(
    "sublessees",
    "转租方",
    "Sublessees",
    (
        Col("id", "编号", "id", Sublessee.id, "int"),
        Col("name", "名称", "name", Sublessee.name),
        Col("kind", "类型", "kind", Sublessee.kind, "term"),
        Col("customer", "客户", "customer", Customer.name),
        Col("id_number", "证件号码", "identity number"),
        Col("contact", "联系人", "contact", Sublessee.contact_person),
        Col("phone", "电话", "phone"),
        Col("subleases", "当前转租", "current subleases", None, "int"),
    ),
    (
        CUSTOMER,
        Filt("kind", "类型", "kind", "choice", _choices("SublesseeKind")),
        Filt("q", "名称包含", "name contains"),
    ),
    _sublessees,
    lambda r: (r[0], r[1], r[2], r[3], mask_id(r[4]), r[5], mask(r[6]), r[7]),
    "name",
)


def _cases(values: dict, scope: Scope) -> Select:
    q = select(
        AbuseCase.id,
        AbuseCase.category,
        AbuseCase.state,
        Customer.name,
        AbuseCase.report_count,
        AbuseCase.opened_at,
        AbuseCase.deadline,
        AbuseCase.updated_at,
        AbuseCase.owner,
    ).join(Customer, Customer.id == AbuseCase.customer_id)
    q = scope.restrict(q, AbuseCase.customer_id)
    for key, column in (("state", AbuseCase.state), ("category", AbuseCase.category)):
        if values.get(key):
            q = q.where(column == values[key])
    if values.get("customer"):
        q = q.where(AbuseCase.customer_id == values["customer"])
    if values.get("owner"):
        q = q.where(AbuseCase.owner == values["owner"])
    return _period(q, AbuseCase.opened_at, values)


CASES = ListDef(
    "cases",
    "滥用案件",
    "Abuse cases",
    (
        Col("id", "编号", "id", AbuseCase.id, "int"),
        Col("category", "类别", "category", AbuseCase.category, "term"),
        Col("state", "状态", "state", AbuseCase.state, "term"),
        Col("customer", "客户", "customer", Customer.name),
        Col("reports", "报告数", "reports", AbuseCase.report_count, "int"),
        Col("opened_at", "立案时间", "opened", AbuseCase.opened_at, "instant"),
        Col("deadline", "答复期限", "deadline", AbuseCase.deadline, "instant"),
        Col("updated_at", "更新时间", "updated", AbuseCase.updated_at, "instant"),
        Col("owner", "处理人", "worked by", AbuseCase.owner),
    ),
    (
        Filt("state", "状态", "state", "choice", _choices("CaseState")),
        Filt("category", "类别", "category", "choice", _choices("AbuseCategory")),
        CUSTOMER,
        Filt("owner", "处理人（用户名）", "worked by (username)"),
        FROM,
        TO,
    ),
    _cases,
    lambda r: r,
    "-updated_at",
)


def _findings(values: dict, scope: Scope) -> Select:
    q = select(
        Finding.id,
        Finding.kind,
        Finding.family,
        Finding.first,
        Finding.prefixlen,
        Finding.status,
        Customer.name,
        Finding.count,
        Finding.first_seen,
        Finding.last_seen,
    ).outerjoin(Customer, Customer.id == Finding.customer_id)
    if scope.customer_id is not None:
        q = q.where(Finding.customer_id == scope.customer_id)
    for key, column in (("status", Finding.status), ("kind", Finding.kind)):
        if values.get(key):
            q = q.where(column == values[key])
    if values.get("customer"):
        q = q.where(Finding.customer_id == values["customer"])
    if values.get("pool"):
        q = q.where(Finding.pool_id == values["pool"])
    return _period(q, Finding.last_seen, values)


FINDINGS = ListDef(
    "findings",
    "探测发现",
    "Probe findings",
    (
        Col("id", "编号", "id", Finding.id, "int"),
        Col("kind", "类型", "kind", Finding.kind, "term"),
        Col("prefix", "地址段", "prefix", (Finding.family, Finding.first)),
        Col("status", "状态", "status", Finding.status, "term"),
        Col("customer", "客户", "customer", Customer.name),
        Col("count", "次数", "times", Finding.count, "int"),
        Col("first_seen", "首次发现", "first seen", Finding.first_seen, "instant"),
        Col("last_seen", "最近发现", "last seen", Finding.last_seen, "instant"),
    ),
    (
        Filt("status", "状态", "status", "choice", ("open", "resolved")),
        Filt("kind", "类型", "kind", "choice", _choices("FindingKind")),
        CUSTOMER,
        Filt("pool", "地址池", "pool", "pool"),
        FROM,
        TO,
    ),
    _findings,
    lambda r: (r[0], r[1], _prefix(r[2], r[3], r[4]), *r[5:]),
    "-last_seen",
)


def _incidents(values: dict, scope: Scope) -> Select:
    q = select(
        Incident.id,
        Incident.title,
        Incident.category,
        Incident.state,
        Customer.name,
        Incident.declared_at,
        Incident.deadline,
        Incident.reported_at,
    ).outerjoin(Customer, Customer.id == Incident.customer_id)
    if scope.customer_id is not None:
        q = q.where(Incident.customer_id == scope.customer_id)
    for key, column in (("state", Incident.state), ("category", Incident.category)):
        if values.get(key):
            q = q.where(column == values[key])
    return _period(q, Incident.declared_at, values)


INCIDENTS = ListDef(
    "incidents",
    "安全事件",
    "Incidents",
    (
        Col("id", "编号", "id", Incident.id, "int"),
        Col("title", "标题", "title", Incident.title),
        Col("category", "类别", "category", Incident.category, "term"),
        Col("state", "状态", "state", Incident.state, "term"),
        Col("customer", "客户", "customer", Customer.name),
        Col("declared_at", "宣布时间", "declared", Incident.declared_at, "instant"),
        Col("deadline", "报告期限", "deadline", Incident.deadline, "instant"),
        Col("reported_at", "报告时间", "reported", Incident.reported_at, "instant"),
    ),
    (
        Filt("state", "状态", "state", "choice", _choices("IncidentState")),
        Filt("category", "类别", "category", "choice", _choices("AbuseCategory")),
        FROM,
        TO,
    ),
    _incidents,
    lambda r: r,
    "-declared_at",
    staff_only=True,
)


def _customers(values: dict, scope: Scope) -> Select:
    q = select(
        Customer.id,
        Customer.name,
        Customer.uscc,
        Customer.kind,
        Customer.status,
        Customer.icp_number,
        Customer.psb_filing_number,
        Customer.isp_licence_expires,
    )
    q = scope.restrict(q, Customer.id)
    for key, column in (("status", Customer.status), ("kind", Customer.kind)):
        if values.get(key):
            q = q.where(column == values[key])
    if values.get("q"):
        text = values["q"]
        q = q.where(
            or_(Customer.name.contains(text, autoescape=True), Customer.uscc == text.upper())
        )
    return q


CUSTOMERS = ListDef(
    "customers",
    "客户",
    "Customers",
    (
        Col("id", "编号", "id", Customer.id, "int"),
        Col("name", "名称", "name", Customer.name),
        Col("uscc", "统一社会信用代码", "credit code", Customer.uscc),
        Col("kind", "类型", "kind", Customer.kind, "term"),
        Col("status", "状态", "status", Customer.status, "term"),
        Col("icp_number", "ICP 备案号", "ICP number", Customer.icp_number),
        Col("psb_filing", "公安备案号", "PSB filing", Customer.psb_filing_number),
        Col("licence_expires", "许可证到期", "licence expires", Customer.isp_licence_expires),
    ),
    (
        Filt("status", "状态", "status", "choice", _choices("CustomerStatus")),
        Filt("kind", "类型", "kind", "choice", _choices("CustomerKind")),
        Filt("q", "名称或信用代码", "name or credit code"),
    ),
    _customers,
    lambda r: r,
    "name",
)


def _audit(values: dict, scope: Scope) -> Select:
    q = select(
        AuditLog.seq,
        AuditLog.recorded_at,
        AuditLog.actor,
        AuditLog.action,
        AuditLog.object_type,
        AuditLog.object_id,
    )
    if values.get("actor"):
        q = q.where(AuditLog.actor == values["actor"])
    if values.get("object"):
        q = q.where(AuditLog.object_type == values["object"])
    if values.get("action"):
        q = q.where(AuditLog.action.startswith(values["action"], autoescape=True))
    return _period(q, AuditLog.recorded_at, values)


AUDIT = ListDef(
    "audit",
    "审计日志",
    "Audit log",
    (
        Col("seq", "序号", "seq", AuditLog.seq, "int"),
        Col("at", "时间", "time", AuditLog.recorded_at, "instant"),
        Col("actor", "操作人", "actor", AuditLog.actor, "actor"),
        Col("action", "操作", "action", AuditLog.action),
        Col("object_type", "对象类型", "object type", AuditLog.object_type),
        Col("object_id", "对象编号", "object id", AuditLog.object_id),
    ),
    (
        Filt("actor", "操作人", "actor"),
        Filt("object", "对象类型", "object type"),
        Filt("action", "操作（或其开头）", "action (or its start)"),
        FROM,
        TO,
    ),
    _audit,
    lambda r: r,
    "-seq",
    staff_only=True,
)


def _requests(values: dict, scope: Scope) -> Select:
    q = select(
        ChangeRequest.id,
        Customer.name,
        ChangeRequest.target,
        ChangeRequest.target_id,
        ChangeRequest.status,
        ChangeRequest.submitted_by,
        ChangeRequest.submitted_at,
        ChangeRequest.decided_by,
        ChangeRequest.decided_at,
    ).join(Customer, Customer.id == ChangeRequest.customer_id)
    q = scope.restrict(q, ChangeRequest.customer_id)
    for key, column in (("status", ChangeRequest.status), ("target", ChangeRequest.target)):
        if values.get(key):
            q = q.where(column == values[key])
    if values.get("customer"):
        q = q.where(ChangeRequest.customer_id == values["customer"])
    return _period(q, ChangeRequest.submitted_at, values)


REQUESTS = ListDef(
    "requests",
    "变更申请",
    "Change requests",
    (
        Col("id", "编号", "id", ChangeRequest.id, "int"),
        Col("customer", "客户", "customer", Customer.name),
        Col("target", "对象", "target", ChangeRequest.target, "term"),
        Col("target_id", "对象编号", "target id", ChangeRequest.target_id, "int"),
        Col("status", "状态", "status", ChangeRequest.status, "term"),
        Col("submitted_by", "提交人", "submitted by", ChangeRequest.submitted_by),
        Col("submitted_at", "提交时间", "submitted", ChangeRequest.submitted_at, "instant"),
        Col("decided_by", "决定人", "decided by", ChangeRequest.decided_by),
        Col("decided_at", "决定时间", "decided", ChangeRequest.decided_at, "instant"),
    ),
    (
        Filt("status", "状态", "status", "choice", _choices("ChangeStatus"), "request_"),
        Filt("target", "对象", "target", "choice", ("customer", "allocation", "sublessee", "site")),
        CUSTOMER,
        FROM,
        TO,
    ),
    _requests,
    lambda r: (*r[:4], f"request_{r[4].value}", *r[5:]),
    "-submitted_at",
)


def _quarantine(values: dict, scope: Scope) -> Select:
    q = select(
        Quarantine.id,
        Quarantine.family,
        Quarantine.first,
        Quarantine.prefixlen,
        Pool.name,
        Quarantine.since,
        Quarantine.until,
        Quarantine.released_at,
        Quarantine.reason,
    ).join(Pool, Pool.id == Quarantine.pool_id)
    state = values.get("state") or "current"
    if state == "current":
        q = q.where(Quarantine.released_at.is_(None))
    elif state == "ended":
        q = q.where(Quarantine.released_at.is_not(None))
    if values.get("pool"):
        q = q.where(Quarantine.pool_id == values["pool"])
    return _period(q, Quarantine.since, values)


QUARANTINE = ListDef(
    "quarantine",
    "隔离期地址",
    "Quarantine",
    (
        Col("id", "编号", "id", Quarantine.id, "int"),
        Col("prefix", "地址段", "prefix", (Quarantine.family, Quarantine.first)),
        Col("pool", "地址池", "pool", Pool.name),
        Col("since", "隔离开始", "since", Quarantine.since, "instant"),
        Col("until", "隔离至", "until", Quarantine.until, "instant"),
        Col("released_at", "释放时间", "released", Quarantine.released_at, "instant"),
        Col("reason", "原因", "reason"),
    ),
    (CURRENT, Filt("pool", "地址池", "pool", "pool"), FROM, TO),
    _quarantine,
    lambda r: (r[0], _prefix(r[1], r[2], r[3]), *r[4:]),
    "-since",
    staff_only=True,
)


def _unattributed(values: dict, scope: Scope) -> Select:
    q = select(
        AbuseReport.id,
        AbuseReport.holding,
        AbuseReport.family,
        AbuseReport.first,
        AbuseReport.prefixlen,
        AbuseReport.category,
        AbuseReport.event_at,
        AbuseReport.received_at,
        AbuseReport.source,
        AbuseReport.reporter,
    ).where(AbuseReport.holding != "held")
    for key, column in (("holding", AbuseReport.holding), ("category", AbuseReport.category)):
        if values.get(key):
            q = q.where(column == values[key])
    return _period(q, AbuseReport.event_at, values)


UNATTRIBUTED = ListDef(
    "unattributed",
    "无人持有地址的投诉",
    "Unattributed complaints",
    (
        Col("id", "编号", "id", AbuseReport.id, "int"),
        Col("holding", "当时状态", "space then", AbuseReport.holding, "term"),
        Col("prefix", "地址段", "prefix", (AbuseReport.family, AbuseReport.first)),
        Col("category", "类别", "category", AbuseReport.category, "term"),
        Col("event_at", "事件时间", "event", AbuseReport.event_at, "instant"),
        Col("received_at", "收到时间", "received", AbuseReport.received_at, "instant"),
        Col("source", "来源", "source", AbuseReport.source),
        Col("reporter", "报告者", "reporter", AbuseReport.reporter),
    ),
    (
        Filt("holding", "当时状态", "space then", "choice", ("unallocated", "quarantined")),
        Filt("category", "类别", "category", "choice", _choices("AbuseCategory")),
        FROM,
        TO,
    ),
    _unattributed,
    lambda r: (r[0], r[1], _prefix(r[2], r[3], r[4]), *r[5:]),
    "-id",
    staff_only=True,
)


def _sites(values: dict, scope: Scope) -> Select:
    sub = aliased(Sublessee)
    q = (
        select(
            Site.id,
            Customer.name,
            sub.name,
            Site.name,
            Site.domain,
            Site.icp_number,
            Site.category,
            Site.approval_ref,
            Site.interactive,
            Site.addresses,
            Site.valid_from,
            Site.valid_to,
        )
        .join(Customer, Customer.id == Site.customer_id)
        .outerjoin(sub, sub.id == Site.sublessee_id)
    )
    q = scope.restrict(_state(q, Site, values), Site.customer_id)
    if values.get("customer"):
        q = q.where(Site.customer_id == values["customer"])
    if values.get("category"):
        q = q.where(Site.category == values["category"])
    if values.get("q"):
        q = q.where(Site.domain.contains(values["q"], autoescape=True))
    return q


def _site_row(r: tuple) -> tuple:
    addresses = " ".join(str(a) for a in (r[9] or []))
    return (*r[:6], r[6], r[7], r[8] or "", addresses, r[10], r[11])


SITES = ListDef(
    "sites",
    "网站登记",
    "Sites register",
    (
        Col("id", "编号", "id", Site.id, "int"),
        Col("customer", "客户", "customer", Customer.name),
        Col("sublessee", "转租方", "sublessee"),
        Col("name", "网站名称", "name", Site.name),
        Col("domain", "域名", "domain", Site.domain),
        Col("icp_number", "ICP 备案号", "ICP number", Site.icp_number),
        Col("category", "类别", "category", Site.category, "term"),
        Col("approval_ref", "主管部门审核", "sector approval", Site.approval_ref),
        Col("interactive", "交互式服务", "interactive", Site.interactive, "term"),
        Col("addresses", "地址", "addresses"),
        Col("valid_from", "登记", "registered", Site.valid_from, "instant"),
        Col("valid_to", "关闭", "closed", Site.valid_to, "instant"),
    ),
    (
        CURRENT,
        CUSTOMER,
        Filt("category", "类别", "category", "choice", SITE_CATEGORIES),
        Filt("q", "域名包含", "domain contains"),
    ),
    _sites,
    _site_row,
    "domain",
)


def _runs(values: dict, scope: Scope) -> Select:
    q = select(
        ProbeRun.id,
        ProbeSchedule.name,
        ProbeRun.trigger,
        ProbeRun.status,
        ProbeRun.queued_at,
        ProbeRun.finished_at,
        ProbeRun.targets,
        ProbeRun.answered,
        ProbeRun.findings_raised,
        ProbeRun.error,
    ).join(ProbeSchedule, ProbeSchedule.id == ProbeRun.schedule_id)
    if values.get("status"):
        q = q.where(ProbeRun.status == values["status"])
    if values.get("q"):
        q = q.where(ProbeSchedule.name.contains(values["q"], autoescape=True))
    return _period(q, ProbeRun.queued_at, values)


RUNS = ListDef(
    "runs",
    "探测运行",
    "Probe runs",
    (
        Col("id", "编号", "id", ProbeRun.id, "int"),
        Col("schedule", "计划", "schedule", ProbeSchedule.name),
        Col("trigger", "触发", "trigger", ProbeRun.trigger, "term"),
        Col("status", "状态", "status", ProbeRun.status, "term"),
        Col("queued_at", "排队时间", "queued", ProbeRun.queued_at, "instant"),
        Col("finished_at", "完成时间", "finished", ProbeRun.finished_at, "instant"),
        Col("targets", "目标数", "targets", ProbeRun.targets, "int"),
        Col("answered", "应答数", "answered", ProbeRun.answered, "int"),
        Col("findings", "新发现", "findings raised", ProbeRun.findings_raised, "int"),
        Col("error", "错误", "error"),
    ),
    (
        Filt("status", "状态", "status", "choice", _choices("RunStatus"), "run_"),
        Filt("q", "计划名称包含", "schedule name contains"),
        FROM,
        TO,
    ),
    _runs,
    lambda r: (*r[:2], f"run_{r[2].value}", f"run_{r[3].value}", *r[4:]),
    "-id",
    staff_only=True,
)


LISTS: dict[str, ListDef] = {
    d.name: d
    for d in (
        ALLOCATIONS,
        SUBLEASES,
        SUBLESSEES,
        CUSTOMERS,
        CASES,
        INCIDENTS,
        FINDINGS,
        REQUESTS,
        QUARANTINE,
        UNATTRIBUTED,
        SITES,
        RUNS,
        AUDIT,
    )
}


# --------------------------------------------------------------------------- reading


def get_list(name: str) -> ListDef:
    found = LISTS.get(str(name))
    if found is None:
        raise NotFound("no list {name!r}; the lists are: {choices}", "list", name=name,
                       choices=", ".join(LISTS))  # fmt: skip
    return found


def parse(session: Session, listdef: ListDef, args: Mapping, zone: str) -> dict:
    """The filters a person gave, checked; a bad one is a ValidationError naming it."""
    values: dict = {}
    for f in listdef.filters:
        raw = args.get(f.key)
        if raw is None or str(raw).strip() == "":
            continue
        raw = str(raw).strip()
        if f.kind == "choice":
            if raw != "all" and raw not in f.choices:
                raise ValidationError(
                    "{value!r} is not one of: {choices}", f.key, value=raw,
                    choices=", ".join(f.choices),
                )  # fmt: skip
            values[f.key] = raw
        elif f.kind == "customer":
            values[f.key] = get_customer(session, raw, f.key).id
        elif f.kind == "pool":
            values[f.key] = get_pool(session, raw, f.key).id
        elif f.kind in ("from", "to"):
            values[f.key] = _moment(raw, f.key, zone, end=f.kind == "to")
        else:
            values[f.key] = validation.required(raw, f.key, 200)
    if values.get("from") and values.get("to") and values["to"] <= values["from"]:
        raise ValidationError("must be after the start of the period (from)", "to")
    return values


SORT = re.compile(r"-?[a-z_]+")


def _order(listdef: ListDef, sort: str | None):
    sort = sort or listdef.default_sort
    if not SORT.fullmatch(sort):
        raise ValidationError("{value!r} is not a column to sort by", "sort", value=sort)
    key, descending = sort.lstrip("-"), sort.startswith("-")
    col = next((c for c in listdef.cols if c.key == key and c.sort is not None), None)
    if col is None:
        sortable = ", ".join(c.key for c in listdef.cols if c.sort is not None)
        raise ValidationError(
            "{value!r} is not a column to sort by ({choices})", "sort", value=key,
            choices=sortable,
        )  # fmt: skip
    exprs = col.sort if isinstance(col.sort, tuple) else (col.sort,)
    first = listdef.cols[0].sort  # the id: a stable order among equal keys
    return [e.desc() if descending else e.asc() for e in (*exprs, first)]


def page(
    session: Session,
    listdef: ListDef,
    values: dict,
    scope: Scope,
    *,
    sort: str | None = None,
    window: Window = FIRST_PAGE,
) -> tuple[list[tuple], int | None]:
    """One page of the list's rows (shown values) and how many match in all, counted from the
    page on for at most COUNT_CAP + 1 rows (so a total above offset + COUNT_CAP means "more")."""
    q = listdef.query(values, scope).order_by(*_order(listdef, sort))
    limit = min(window.limit or MAX_PAGE, MAX_PAGE)
    rows = session.execute(q.limit(limit).offset(window.offset)).all()
    total = None
    if window.count:
        ahead = q.order_by(None).offset(window.offset).limit(COUNT_CAP + 1).subquery()
        total = window.offset + (session.scalar(select(func.count()).select_from(ahead)) or 0)
    return [listdef.row(tuple(r)) for r in rows], total


def stream(
    session: Session, listdef: ListDef, values: dict, scope: Scope, *, sort: str | None = None
) -> Iterator[tuple]:
    """Every matching row in the list's order, read in chunks (for exports)."""
    q = listdef.query(values, scope).order_by(*_order(listdef, sort))
    result = session.execute(q.execution_options(yield_per=STREAM_CHUNK))
    for r in result:
        yield listdef.row(tuple(r))


def shown(listdef: ListDef, row: tuple, lang: str, zone: str) -> list:
    """A row as people read it: states by their word, times local, in `lang`."""
    tz = ZoneInfo(zone)
    return [files.cell(c, v, lang, tz) for c, v in zip(listdef.cols, row, strict=True)]


def csv_chunks(listdef: ListDef, rows: Iterable[tuple], lang: str, zone: str) -> Iterator[bytes]:
    """Exactly the filtered rows as CSV (UTF-8 with BOM for spreadsheets, formulas defused)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([c.title(lang) for c in listdef.cols])
    yield codecs.BOM_UTF8 + buf.getvalue().encode()
    buf.seek(0)
    buf.truncate()
    for n, row in enumerate(rows, 1):
        writer.writerow([files.neutral(v) for v in shown(listdef, row, lang, zone)])
        if n % 500 == 0:
            yield buf.getvalue().encode()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue().encode()


__all__ = ["LISTS", "Col", "Filt", "ListDef", "csv_chunks", "get_list", "page", "parse", "shown"]
