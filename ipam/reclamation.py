"""Ending a customer's rights: exit, reclamation for a violation, and quarantine release.

Clause 19: usage rights end automatically when the customer exits; the
provider may reclaim addresses for false information or a violation. Either
way the addresses cool down in quarantine before they are allocated again.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import audit, freespace
from .allocation import QUARANTINE_DAYS, effective_time, end_allocation, get_allocation
from .customers import get_customer, set_status
from .errors import NotFound, StateConflict, ValidationError
from .models import Allocation, CustomerStatus, EndReason, Pool, Quarantine
from .pools import lock_pool
from .validation import required


def _current_allocations(session: Session, customer_id: int) -> list[Allocation]:
    return list(
        session.execute(
            select(Allocation)
            .where(Allocation.customer_id == customer_id, Allocation.valid_to.is_(None))
            .order_by(Allocation.pool_id, Allocation.id)
        ).scalars()
    )


def _end_all(session, allocs, reason: EndReason, note, at, actor, quarantine_days) -> None:
    """End allocations together, locking their pools in one order (no deadlocks)."""
    for pool_id in sorted({a.pool_id for a in allocs}):
        lock_pool(session, pool_id)
    for alloc in allocs:
        end_allocation(
            session,
            alloc,
            actor=actor,
            at=at,
            reason=reason,
            note=note,
            quarantine_days=quarantine_days,
        )


def customer_exit(
    session: Session,
    customer,
    *,
    actor: str,
    at=None,
    quarantine_days: int = QUARANTINE_DAYS,
    note: str = "customer exited",
) -> list[Allocation]:
    """End every allocation and sublease of the customer at once and mark it exited."""
    customer = get_customer(session, customer)
    if customer.status == CustomerStatus.EXITED:
        raise StateConflict("{name} exited already", "customer", name=customer.name)
    at = effective_time(at)
    allocs = _current_allocations(session, customer.id)
    _end_all(session, allocs, EndReason.EXIT, note, at, actor, quarantine_days)
    set_status(session, customer, CustomerStatus.EXITED, at, actor, note)
    return allocs


def reclaim(
    session: Session,
    customer,
    *,
    reason: str,
    actor: str,
    allocations=None,
    at=None,
    quarantine_days: int = QUARANTINE_DAYS,
) -> list[Allocation]:
    """Reclaim a customer's allocations (all, or the given ones) for a recorded violation."""
    reason = required(reason, "reason", 2000)
    customer = get_customer(session, customer)
    at = effective_time(at)
    if allocations is None:
        allocs = _current_allocations(session, customer.id)
    else:
        allocs = [get_allocation(session, a) for a in allocations]
        for alloc in allocs:
            if alloc.customer_id != customer.id:
                raise ValidationError(
                    "{prefix} is not held by {name}",
                    "allocations",
                    prefix=alloc.prefix,
                    name=customer.name,
                )
    if not allocs:
        raise StateConflict("{name} holds no current allocation", "customer", name=customer.name)
    _end_all(session, allocs, EndReason.RECLAIMED, reason, at, actor, quarantine_days)
    return allocs


def release_quarantine(
    session: Session, *, actor: str, at=None, quarantine_id=None, early_reason: str | None = None
) -> list[Quarantine]:
    """Return quarantined blocks to their pools' free space.

    Without an id, releases every block whose cool-down has ended; with an id,
    releases that block now, early release needing a recorded reason.
    """
    at = effective_time(at)
    query = select(Quarantine).where(Quarantine.released_at.is_(None))
    if quarantine_id is not None:
        query = query.where(Quarantine.id == int(quarantine_id))
    else:
        query = query.where(Quarantine.until <= at)
    due = list(session.execute(query.order_by(Quarantine.pool_id, Quarantine.id)).scalars())
    if quarantine_id is not None:
        if not due:
            raise NotFound(
                "no quarantined block {quarantine_id}", "quarantine_id", quarantine_id=quarantine_id
            )
        if due[0].until > at and not (early_reason and early_reason.strip()):
            raise ValidationError(
                "is required to release a block before its cool-down ends", "reason"
            )
    for pool_id in sorted({q.pool_id for q in due}):
        lock_pool(session, pool_id)
    for q in due:
        pool = session.get(Pool, q.pool_id)
        freespace.give_back(session, q.pool_id, pool.block, q.block)
        q.released_at = at
        audit.record(
            session,
            actor,
            "quarantine.release",
            q,
            {
                "prefix": q.prefix,
                "released_at": at,
                "early_reason": early_reason,
            },
        )
    return due


def quarantined(session: Session, at: datetime | None = None) -> list[Quarantine]:
    """Return the blocks in quarantine now (not yet released)."""
    return list(
        session.execute(
            select(Quarantine)
            .where(Quarantine.released_at.is_(None))
            .order_by(Quarantine.family, Quarantine.first)
        ).scalars()
    )


def count_quarantined(session: Session) -> int:
    """How many blocks are in quarantine now (the dashboard's figure, without loading them)."""
    return session.scalar(
        select(func.count()).select_from(Quarantine).where(Quarantine.released_at.is_(None))
    )
