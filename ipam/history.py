"""An address's or a prefix's history on one time axis: who held it, to whom it was
sub-leased, when it cooled down in quarantine, what the probes found and which abuse
cases it drew. The picture (web) and its text alternative are drawn from these spans.

Customer users see the spans of their own holdings, findings and cases only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from .addresses import Block, parse_block
from .db import utcnow
from .listing import Scope
from .lookup import overlapping
from .models import AbuseCase, Allocation, Customer, Finding, Quarantine, Sublease, Sublessee

LANES = ("holder", "sublease", "quarantine", "finding", "case")
PER_LANE = 100  # the latest spans of each lane; a /8 has more than a picture can show


@dataclass(frozen=True)
class Span:
    lane: str  # one of LANES
    label: str  # who or what: a customer, a sublessee, a finding's kind, a case's category
    prefix: str
    start: datetime
    end: datetime | None  # None: so until now
    kind: str = ""  # the link's kind (allocation, sublease, finding, case) with `ref`
    ref: int | None = None
    state: str = ""  # a case's or finding's state, a holding's end reason


@dataclass(frozen=True)
class Timeline:
    block: Block
    spans: list[Span]
    start: datetime
    end: datetime
    truncated: bool

    def lane(self, name: str) -> list[Span]:
        return [s for s in self.spans if s.lane == name]


def _latest(session, q, order) -> tuple[list, bool]:
    rows = session.execute(q.order_by(order.desc()).limit(PER_LANE + 1)).all()
    return rows[:PER_LANE], len(rows) > PER_LANE


def timeline(session: Session, text, scope: Scope, now: datetime | None = None) -> Timeline:
    """The spans of `text` (an address or prefix) on one axis, oldest first per lane."""
    block = parse_block(text, "address")
    now = now or utcnow()
    mine = scope.customer_id
    spans: list[Span] = []
    cut = False

    q = select(Allocation, Customer.name).join(Customer, Customer.id == Allocation.customer_id)
    q = q.where(overlapping(Allocation, block))
    if mine is not None:
        q = q.where(Allocation.customer_id == mine)
    rows, more = _latest(session, q, Allocation.valid_from)
    cut |= more
    for a, name in rows:
        reason = a.end_reason.value if a.end_reason else ""
        spans.append(
            Span("holder", name, a.prefix, a.valid_from, a.valid_to, "allocation", a.id, reason)
        )

    q = (
        select(Sublease, Sublessee.name)
        .join(Sublessee, Sublessee.id == Sublease.sublessee_id)
        .where(overlapping(Sublease, block))
    )
    if mine is not None:
        q = q.where(Sublessee.customer_id == mine)
    rows, more = _latest(session, q, Sublease.valid_from)
    cut |= more
    for s, name in rows:
        spans.append(Span("sublease", name, s.prefix, s.valid_from, s.valid_to, "sublease", s.id))

    q = select(Quarantine).where(overlapping(Quarantine, block))
    if mine is not None:
        q = q.join(Allocation, Allocation.id == Quarantine.allocation_id).where(
            Allocation.customer_id == mine
        )
    rows, more = _latest(session, q, Quarantine.since)
    cut |= more
    for (qr,) in rows:
        end = qr.released_at or qr.until
        spans.append(Span("quarantine", qr.reason, qr.prefix, qr.since, end, "quarantine", qr.id))

    q = select(Finding).where(overlapping(Finding, block))
    if mine is not None:
        q = q.where(Finding.customer_id == mine)
    rows, more = _latest(session, q, Finding.last_seen)
    cut |= more
    for (f,) in rows:
        end = f.resolved_at or (None if f.status == "open" else f.last_seen)
        spans.append(
            Span("finding", f.kind.value, f.prefix, f.first_seen, end, "finding", f.id, f.status)
        )

    q = select(AbuseCase).where(overlapping(AbuseCase, block))
    if mine is not None:
        q = q.where(AbuseCase.customer_id == mine)
    rows, more = _latest(session, q, AbuseCase.opened_at)
    cut |= more
    for (c,) in rows:
        end = None if c.state != "resolved" else c.updated_at
        spans.append(
            Span("case", c.category.value, c.prefix, c.first_event_at, end, "case", c.id, c.state)
        )

    spans.sort(key=lambda s: (LANES.index(s.lane), s.start))
    start = min((s.start for s in spans), default=now - timedelta(days=365))
    ends = [s.end for s in spans if s.end is not None]
    end = max([now, *ends])
    if end - start < timedelta(days=1):
        start = end - timedelta(days=1)
    return Timeline(block, spans, start, end, cut)
