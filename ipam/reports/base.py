"""What every report shares: its columns in Chinese and English, its parameters, its rows.

A report is a generator of plain rows (tuples in column order: text, whole
numbers, dates, instants, or a term translated by TERMS) over a Params and a
Scope. The UI's table, the API, the CLI and every file format read the same
generator; nothing builds a report in memory.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from .. import privacy, validation
from ..db import utcnow
from ..errors import ValidationError
from ..listing import EVERYONE, Scope

LANGUAGES = ("zh", "en")
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)  # no period of this ledger starts before
LONGEST = timedelta(days=3660)  # ten years: longer is a typing mistake
STREAM_CHUNK = 1000


@dataclass(frozen=True)
class Column:
    key: str
    zh: str
    en: str
    kind: str = "text"  # text | int | date | instant | term

    def title(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en


# Words that appear as values (states, kinds), in both languages.
TERMS: dict[str, tuple[str, str]] = {
    "customer": ("客户", "customer"),
    "sublessee": ("转租方", "sublessee"),
    "allocated": ("已分配", "allocated"),
    "subleased": ("已转租", "subleased"),
    "new": ("新增", "new"),
    "changed": ("变更", "changed"),
    "ended": ("注销", "ended"),
    "filed": ("已报备", "filed"),
    "pending": ("待报备", "pending"),
    "overdue": ("逾期", "overdue"),
    "met": ("已满足", "met"),
    "due": ("即将到期", "due"),
    "missing": ("缺失", "missing"),
    "person": ("个人", "person"),
    "organisation": ("单位", "organisation"),
    "organization": ("单位", "organisation"),
    "isp": ("接入服务商", "ISP"),
    "hosting": ("托管/主机", "hosting"),
    "enterprise": ("企业", "enterprise"),
    "exit": ("客户退出", "customer exit"),
    "reclaimed": ("违约收回", "reclaimed"),
    "allocation_ended": ("随分配注销", "ended with its allocation"),
    "resident_id": ("居民身份证", "resident ID"),
    "uscc": ("统一社会信用代码", "unified social credit code"),
    "passport": ("护照", "passport"),
    "other": ("其他", "other"),
    "illegal_content": ("违法信息（第7条）", "illegal content (7)"),
    "state_secrets": ("国家秘密（第8条）", "state secrets (8)"),
    "public_order": ("扰乱公共秩序（第9条）", "public order (9)"),
    "attack": ("网络攻击（第10条）", "attack (10)"),
    "spam": ("垃圾邮件（第11条）", "spam (11)"),
    "infringement": ("侵权（第12条）", "infringement (12)"),
    "malware": ("恶意程序（第13条）", "malware (13)"),
    "unapproved_content": ("未经审批内容（第14条）", "unapproved content (14)"),
    "warning": ("警告", "warning"),
    "suspension": ("暂停服务", "suspension"),
    "reclamation": ("收回地址", "reclamation"),
    "termination": ("终止协议", "termination"),
    "released": ("释放", "released"),
    "quarantined": ("冷却隔离", "quarantined"),
    "free": ("未分配", "free"),
    "unmanaged": ("不在地址池内", "unmanaged"),
    "case": ("投诉案件", "abuse case"),
    "incident": ("安全事件", "incident"),
    "open": ("待处理", "open"),
    "notified": ("已通知", "notified"),
    "acknowledged": ("已确认", "acknowledged"),
    "resolved": ("已解决", "resolved"),
    "escalated": ("已升级", "escalated"),
    "reported": ("已报告", "reported"),
    "closed": ("已关闭", "closed"),
    "in_time": ("按时", "in time"),
    "late": ("超时", "late"),
    "yes": ("是", "yes"),
    "no": ("否", "no"),
    "psb_filing": ("公安备案（第5条）", "PSB filing (clause 5)"),
    "isp_licence": ("ISP许可证（第1条）", "ISP licence (clause 1)"),
    "icp_number": ("ICP备案号（第2条）", "ICP number (clause 2)"),
    "site_icp": ("网站ICP备案号（第2条）", "site ICP number (clause 2)"),
    "site_approval": ("前置审批（第3条）", "sector approval (clause 3)"),
    "site_dedicated": ("专用固定地址（第4条）", "dedicated fixed address (clause 4)"),
    "general": ("一般", "general"),
    "ecommerce": ("电子商务", "e-commerce"),
    "news": ("新闻", "news"),
    "publishing": ("出版", "publishing"),
    "education": ("教育", "education"),
    "medical": ("医疗保健", "medical"),
    "drugs": ("药品和医疗器械", "drugs"),
    "culture": ("文化", "culture"),
    "broadcasting": ("广播电影电视", "broadcasting"),
    "forum": ("论坛", "forum"),
    "bbs": ("电子公告", "bulletin board"),
    "blog": ("博客", "blog"),
    "chat": ("聊天室", "chat"),
    "active": ("正常", "active"),
    "suspended": ("暂停", "suspended"),
    "exited": ("已退出", "exited"),
    "none": ("未答复", "no answer"),
    "run_queued": ("排队中", "queued"),
    "run_running": ("运行中", "running"),
    "run_done": ("已完成", "done"),
    "run_failed": ("失败", "failed"),
    "run_schedule": ("按计划", "scheduled"),
    "run_manual": ("手动", "manual"),
    "unallocated": ("未分配", "unallocated"),
    "held": ("已持有", "held"),
    "request_pending": ("待审批", "pending"),
    "request_approved": ("已批准", "approved"),
    "request_rejected": ("已驳回", "rejected"),
    "allocation": ("分配", "allocation"),
    "site": ("网站", "site"),
    "current": ("当前", "current"),
    "all": ("全部", "all"),
    "unallocated_in_use": ("未分配地址在用", "unallocated in use"),
    "quarantined_in_use": ("隔离期地址在用", "quarantined in use"),
    "reclaimed_in_use": ("收回后地址在用", "reclaimed in use"),
    "allocated_dark": ("已分配地址无应答", "allocated, dark"),
    "ptr_unregistered": ("反向解析域名未登记", "PTR not registered"),
    "ptr_mismatch": ("反向解析不一致", "PTR mismatch"),
    "blocklisted": ("被列入黑名单", "blocklisted"),
    "site_no_icp": ("网站无 ICP 备案号", "site without ICP number"),
    "site_no_approval": ("网站无主管部门审核", "site without sector approval"),
    "site_interactive_shared": (
        "交互式网站未用专用地址",
        "interactive site not on a dedicated address",
    ),
}


def term(value, lang: str) -> str:
    if value is None or value == "":
        return ""
    pair = TERMS.get(str(value))
    if pair is None:
        return str(value)
    return pair[0] if lang == "zh" else pair[1]


@dataclass(frozen=True)
class Params:
    """What a report is asked for; instants are UTC. `start`/`end`: the period [start, end)."""

    start: datetime | None = None
    end: datetime | None = None
    at: datetime | None = None
    customer_id: int | None = None
    pool_id: int | None = None
    reveal: bool = False  # personal data in full (checked and audited by the caller)
    deadline_days: int = 30  # IP filing changes: days to file a change
    zone: str = "Asia/Shanghai"  # dates and times are shown in it, and named
    actor: str | None = None  # the audit log's filters
    object_type: str | None = None
    action: str | None = None

    def as_dict(self) -> dict:
        out = {}
        for key, value in asdict(self).items():
            if value is None or value is False or key == "deadline_days" and value == 30:
                continue
            out[key] = value.isoformat() if isinstance(value, datetime) else value
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Params:
        values = dict(data)
        for key in ("start", "end", "at"):
            if values.get(key):
                values[key] = datetime.fromisoformat(values[key])
        return cls(**{k: v for k, v in values.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Report:
    name: str
    zh: str
    en: str
    columns: tuple[Column, ...]
    rows: Callable[[Session, Params, Scope], Iterator[tuple]]
    uses: frozenset = frozenset()  # of "period", "at", "customer", "pool"
    customers_may: bool = False  # a customer user may pull it for its own space
    description: tuple[str, str] = ("", "")
    # Fills the parameters it needs and cannot do without (the period's default, ...).
    defaults: Callable[[Params, datetime], Params] = field(default=lambda p, now: p)

    def title(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en

    def headings(self, lang: str) -> list[str]:
        return [c.title(lang) for c in self.columns]


def month_before(now: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The calendar month before `now` in `zone`, as a UTC period."""
    local = now.astimezone(zone)
    first = datetime.combine(local.date().replace(day=1), time(), zone)
    prev = datetime.combine((first - timedelta(days=1)).date().replace(day=1), time(), zone)
    return prev.astimezone(UTC), first.astimezone(UTC)


def period_defaults(params: Params, now: datetime, zone: ZoneInfo | None = None) -> Params:
    """No period given: the last 30 days up to now."""
    if params.start is None and params.end is None:
        return replace(params, start=now - timedelta(days=30), end=now)
    if params.end is None:
        return replace(params, end=now)
    if params.start is None:
        return replace(params, start=params.end - timedelta(days=30))
    return params


def _moment(value, field: str, zone: str, *, end: bool = False) -> datetime | None:
    """A date (local midnight; as an end: the next midnight, so the day is included) or a
    time typed by a person (local without a zone), as UTC."""
    if value is None or str(value).strip() == "":
        return None
    if isinstance(value, datetime):
        return validation.instant(value, field)
    text = str(value).strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        day = validation.day(text, field)
        if end:
            day = day + timedelta(days=1)
        return datetime.combine(day, time(), ZoneInfo(zone)).astimezone(UTC)
    return validation.local_instant(text, field, zone)


def parse_params(
    *,
    start=None,
    end=None,
    at=None,
    customer_id=None,
    pool_id=None,
    zone: str,
    reveal: bool = False,
    deadline_days=None,
    now: datetime | None = None,
    actor=None,
    object_type=None,
    action=None,
) -> Params:
    """Check what a person asked for; a clear error names the field and changes nothing."""
    now = now or utcnow()
    s = _moment(start, "from", zone)
    e = _moment(end, "to", zone, end=True)
    a = _moment(at, "at", zone)
    slack = timedelta(minutes=5)
    if a is not None and a > now + slack:
        raise ValidationError("is in the future: the ledger cannot say what will be held", "at")
    for value, name in ((s, "from"), (e, "to"), (a, "at")):
        if value is not None and value < EARLIEST:
            raise ValidationError("is before 2000: no record of this ledger is that old", name)
    if s is not None and s > now + slack:
        raise ValidationError("is in the future", "from")
    if s is not None and e is not None:
        if e <= s:
            raise ValidationError("must be after the start of the period (from)", "to")
        if e - s > LONGEST:
            raise ValidationError("the period is longer than ten years", "to")
    days = 30
    if deadline_days not in (None, ""):
        try:
            days = int(deadline_days)
        except (TypeError, ValueError):
            raise ValidationError(
                "{deadline_days!r} is not a whole number", "deadline", deadline_days=deadline_days
            ) from None
        if not 1 <= days <= 365:
            raise ValidationError("must be between 1 and 365 days", "deadline")
    filters = {
        "actor": validation.optional(actor, "actor", 200),
        "object_type": validation.optional(object_type, "object", 64),
        "action": validation.optional(action, "action", 64),
    }
    return Params(s, e, a, customer_id, pool_id, bool(reveal), days, zone, **filters)


class Masker:
    """Personal values as the report may show them (invariant 9)."""

    def __init__(self, reveal: bool):
        self.reveal = reveal

    def id_number(self, value):
        return value if self.reveal else privacy.mask_id(value)

    def phone(self, value):
        return value if self.reveal else privacy.mask(value)

    def people(self, items) -> str:
        """People as one cell: name (role) phone email; ..."""
        out = []
        for p in items or []:
            if not isinstance(p, dict):
                continue
            bits = [str(p.get("name") or "")]
            if p.get("role"):
                bits.append(f"({p['role']})")
            if p.get("phone"):
                bits.append(self.phone(p["phone"]))
            if p.get("email"):
                bits.append(p["email"])
            if p.get("id_number"):
                bits.append(self.id_number(p["id_number"]))
            out.append(" ".join(b for b in bits if b))
        return "; ".join(out)

    def accounts(self, items) -> str:
        out = []
        for a in items or []:
            if not isinstance(a, dict):
                continue
            bits = [str(a.get("account") or "")]
            if a.get("name"):
                bits.append(f"({a['name']})")
            if a.get("phone"):
                bits.append(self.phone(a["phone"]))
            out.append(" ".join(bits))
        return "; ".join(out)


def everyone_or(scope: Scope | None) -> Scope:
    return scope or EVERYONE


def local_date(value: datetime | None, zone: ZoneInfo) -> date | None:
    return value.astimezone(zone).date() if value is not None else None
