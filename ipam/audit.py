"""The audit log: every change appended with actor, time and data, hash-chained.

Each row's hash covers its sequence number, content and the previous row's
hash; the single audit_head row holds the chain's length and last hash. An
edited, deleted or inserted row breaks the chain, a removed tail disagrees
with the head: `verify` reports the first place it breaks.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from .db import utcnow
from .models import AuditHead, AuditLog

GENESIS = "0" * 64


def _default(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def jsonable(data: dict) -> dict:
    """Return data as plain JSON types (dates as ISO strings, enums as values)."""
    return json.loads(json.dumps(data, default=_default))


def _digest(
    prev_hash: str,
    seq: int,
    recorded_at: datetime,
    actor: str,
    action: str,
    object_type: str,
    object_id,
    data: dict,
) -> str:
    body = json.dumps(
        {
            "seq": seq,
            "recorded_at": recorded_at.isoformat(),
            "actor": actor,
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "data": data,
        },
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def record(session: Session, actor: str, action: str, obj, data: dict | None = None) -> AuditLog:
    """Append one audit entry for a change to `obj` (flushed, not committed)."""
    if not actor or not str(actor).strip():
        from .errors import ValidationError

        raise ValidationError("is required: say who makes the change", "actor")
    session.flush()  # obj needs its id
    # The UPDATE locks the head row to commit (PostgreSQL) so chains never fork.
    seq, prev = session.execute(
        text("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, last_hash")
    ).one()
    now = utcnow()
    payload = jsonable(data or {})
    object_type = obj.__tablename__ if hasattr(obj, "__tablename__") else str(obj)
    object_id = getattr(obj, "id", None)
    digest = _digest(prev, seq, now, actor, action, object_type, object_id, payload)
    entry = AuditLog(
        seq=seq,
        recorded_at=now,
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        data=payload,
        prev_hash=prev,
        hash=digest,
    )
    session.add(entry)
    session.execute(text("UPDATE audit_head SET last_hash = :h WHERE id = 1"), {"h": digest})
    return entry


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    problem: str | None = None
    seq: int | None = None


def verify(session: Session, batch: int = 5000) -> VerifyResult:
    """Walk the chain in order; return where it first breaks, if it does."""
    prev = GENESIS
    expected_seq = 1
    checked = 0
    last_seq = 0
    while True:
        rows = session.execute(
            select(
                AuditLog.seq,
                AuditLog.recorded_at,
                AuditLog.actor,
                AuditLog.action,
                AuditLog.object_type,
                AuditLog.object_id,
                AuditLog.data,
                AuditLog.prev_hash,
                AuditLog.hash,
            )
            .where(AuditLog.seq > last_seq)
            .order_by(AuditLog.seq)
            .limit(batch)
        ).all()
        if not rows:
            break
        for row in rows:
            if row.seq != expected_seq:
                return VerifyResult(
                    False, checked, f"entry {expected_seq} is missing", expected_seq
                )
            if row.prev_hash != prev:
                return VerifyResult(
                    False, checked, f"entry {row.seq} does not follow its predecessor", row.seq
                )
            digest = _digest(
                prev,
                row.seq,
                row.recorded_at,
                row.actor,
                row.action,
                row.object_type,
                row.object_id,
                row.data,
            )
            if digest != row.hash:
                return VerifyResult(False, checked, f"entry {row.seq} was altered", row.seq)
            prev = row.hash
            expected_seq += 1
            checked += 1
            last_seq = row.seq
    head = session.execute(
        select(AuditHead.seq, AuditHead.last_hash).where(AuditHead.id == 1)
    ).one_or_none()
    head_seq, head_hash = (head.seq, head.last_hash) if head else (0, GENESIS)
    if head_seq != checked or head_hash != prev:
        return VerifyResult(
            False,
            checked,
            f"the log ends at entry {checked} but the head records {head_seq}: "
            "entries were removed",
            checked + 1,
        )
    return VerifyResult(True, checked)
