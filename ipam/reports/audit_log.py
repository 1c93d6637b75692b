"""The audit log for a period, filtered by actor, object and action (personal data masked).
The chain's state is shown beside it by the caller (ipam.audit.verify)."""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import privacy
from ..listing import Scope
from ..models import AuditLog
from .base import Column, Params, Report, period_defaults
from .sql import stream

COLUMNS = (
    Column("seq", "序号", "seq", "int"),
    Column("at", "时间", "time", "instant"),
    Column("actor", "操作人", "actor"),
    Column("action", "操作", "action"),
    Column("object_type", "对象类型", "object type"),
    Column("object_id", "对象编号", "object id", "int"),
    Column("data", "内容", "data"),
    Column("hash", "哈希", "hash"),
)


def rows(session: Session, params: Params, scope: Scope):
    q = select(
        AuditLog.seq,
        AuditLog.recorded_at,
        AuditLog.actor,
        AuditLog.action,
        AuditLog.object_type,
        AuditLog.object_id,
        AuditLog.data,
        AuditLog.hash,
    ).where(AuditLog.recorded_at >= params.start, AuditLog.recorded_at < params.end)
    if params.actor:
        q = q.where(AuditLog.actor == params.actor)
    if params.object_type:
        q = q.where(AuditLog.object_type == params.object_type)
    if params.action:
        q = q.where(AuditLog.action.startswith(params.action, autoescape=True))
    for seq, at, actor, action, otype, oid, data, digest in stream(
        session, q.order_by(AuditLog.seq)
    ):
        shown = data if params.reveal else privacy.masked(data)
        yield (
            seq,
            at,
            actor,
            action,
            otype,
            oid,
            json.dumps(shown, ensure_ascii=False, sort_keys=True, default=str),
            digest,
        )


REPORT = Report(
    "audit_log",
    "审计日志",
    "Audit log",
    COLUMNS,
    rows,
    uses=frozenset({"period", "audit"}),
    description=(
        "期间内的每一次变更：操作人、操作、对象、内容和哈希链。",
        "Every change of the period: actor, action, object, content and the hash chain.",
    ),
    defaults=period_defaults,
)
