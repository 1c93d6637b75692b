"""Allocating blocks to customers and ending allocations.

Allocation locks the pool row (a row lock on PostgreSQL, SQLite's write lock),
then re-reads the free space, so concurrent requests never get the same block
and a request that cannot be met gets a clean PoolExhausted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, text, true
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from . import audit, freespace
from .addresses import Block, check_prefixlen, parse_block, to_bytes
from .customers import get_customer
from .db import utcnow
from .errors import AddressConflict, NotFound, Phrase, PoolExhausted, StateConflict, ValidationError
from .listing import ALL, EVERYONE, Scope, Window, fetch
from .lookup import as_id, during, overlapping
from .models import (
    Allocation,
    Customer,
    CustomerStatus,
    EndReason,
    HoldingLength,
    Pool,
    Quarantine,
    Sublease,
)
from .pools import get_pool, lock_pool
from .validation import instant, optional

QUARANTINE_DAYS = 30
# A change dated further back than this is history being recorded: check it against history.
BACKDATED = timedelta(minutes=1)


def effective_time(at, field: str = "at") -> datetime:
    """Return the instant a change takes effect: now, or a past instant (imports, history)."""
    now = utcnow()
    when = instant(at, field) or now
    if when > now + timedelta(seconds=5):
        raise ValidationError(
            "{when} is in the future; changes take effect now or are recorded for the past",
            field,
            when=when.isoformat(),
        )
    return when


def get_allocation(session: Session, ref, field: str = "allocation") -> Allocation:
    """Find an allocation by id, or the current one of an exact prefix."""
    if isinstance(ref, Allocation):
        return ref
    alloc = None
    if isinstance(ref, int) or (isinstance(ref, str) and ref.strip().isdigit()):
        alloc = session.get(Allocation, int(ref))
    elif isinstance(ref, str):
        block = parse_block(ref, field)
        alloc = session.execute(
            select(Allocation).where(
                Allocation.family == block.family,
                Allocation.first == to_bytes(block.first),
                Allocation.prefixlen == block.prefixlen,
                Allocation.valid_to.is_(None),
            )
        ).scalar_one_or_none()
    if alloc is None:
        raise NotFound("no allocation {ref!r}", field, ref=ref)
    return alloc


def _holder_conflict(session: Session, block: Block, at: datetime) -> Phrase | None:
    """Describe a holding that meets `block` from `at` on, or quarantine, or None."""
    held = session.execute(
        select(Allocation)
        .where(overlapping(Allocation, block), during(Allocation, at, None))
        .limit(1)
    ).scalar_one_or_none()
    if held is not None:
        return Phrase(
            "overlaps {prefix}, held by {name} since {since}",
            prefix=held.prefix,
            name=held.customer.name,
            since=held.valid_from.isoformat(),
        )
    quarantined = session.execute(
        select(Quarantine)
        .where(overlapping(Quarantine, block), Quarantine.released_at.is_(None))
        .limit(1)
    ).scalar_one_or_none()
    if quarantined is not None:
        return Phrase(
            "overlaps {prefix}, quarantined until {until}",
            prefix=quarantined.prefix,
            until=quarantined.until.isoformat(),
        )
    return None


def usable_customer(session: Session, customer) -> Customer:
    customer = get_customer(session, customer)
    if customer.status != CustomerStatus.ACTIVE:
        raise StateConflict(
            "{name} is {status}; only active customers receive addresses",
            "customer",
            name=customer.name,
            status=customer.status,
        )
    return customer


# Built once (allocation's hot path): the pool's row locked on PostgreSQL (SQLite's
# BEGIN IMMEDIATE holds the database's lock), the customer read in the same round trip.
_POOL_AND_CUSTOMER = (
    select(Pool, Customer)
    .join_from(Pool, Customer, true())  # two single rows: a deliberate cross join
    .where(Pool.id == bindparam("pool"), Customer.id == bindparam("customer"))
    .with_for_update(of=Pool)
)


def _locked_pool_and_customer(session: Session, pool, customer) -> tuple[Pool, Customer]:
    """Find both and lock the pool (pools.lock_pool) until commit; by ids (the API's usual
    case) in one round trip, the pool's row locked by the same statement, else one by one."""
    _known_lengths(session)  # the memo of prefix lengths is refreshed before any lock
    pool_id, customer_id = as_id(pool), as_id(customer)
    if pool_id is not None and customer_id is not None:
        row = session.execute(_POOL_AND_CUSTOMER, {"pool": pool_id, "customer": customer_id})
        row = row.first()
        if row is not None:
            return row[0], usable_customer(session, row[1])
    pool, customer = get_pool(session, pool), usable_customer(session, customer)
    lock_pool(session, pool)
    return pool, customer


def allocate(
    session: Session,
    pool,
    customer,
    *,
    prefix=None,
    prefixlen=None,
    purpose: str = "",
    actor: str,
    at=None,
) -> Allocation:
    """Allocate a specific block, or the next free /prefixlen (default: one address).

    Raises ValidationError for bad input, AddressConflict when the block is not
    free, PoolExhausted when no block of that size is left.
    """
    pool, customer = _locked_pool_and_customer(session, pool, customer)
    at = effective_time(at, "valid_from")
    if prefix is not None and prefix != "":
        block = parse_block(prefix, "prefix")
        if block.family != pool.family:
            raise ValidationError(
                "{block} is IPv{family} but pool {name!r} is IPv{pool_family}",
                "prefix",
                block=block,
                family=block.family,
                name=pool.name,
                pool_family=pool.family,
            )
        if not pool.block.contains(block):
            raise ValidationError(
                "{block} is outside pool {name!r} ({prefix})",
                "prefix",
                block=block,
                name=pool.name,
                prefix=pool.prefix,
            )
        record_length(session, block)  # idempotent; known lengths cost no statement
        conflict = _holder_conflict(session, block, at)
        if conflict:
            raise AddressConflict("{block} {conflict}", "prefix", block=block, conflict=conflict)
        if not freespace.take(session, pool.id, block):
            child = session.execute(
                select(Pool).where(overlapping(Pool, block), Pool.parent_id == pool.id).limit(1)
            ).scalar_one_or_none()
            where = (
                Phrase("the child pool {name!r} ({prefix})", name=child.name, prefix=child.prefix)
                if child
                else Phrase("a holding")
            )
            raise AddressConflict(
                "{block} overlaps {where}; allocate from that pool",
                "prefix",
                block=block,
                where=where,
            )
    else:
        plen = (
            pool.block.width if prefixlen in (None, "") else check_prefixlen(prefixlen, pool.family)
        )
        if plen < pool.prefixlen:
            raise ValidationError(
                "/{plen} is larger than pool {name!r} ({prefix})",
                "prefixlen",
                plen=plen,
                name=pool.name,
                prefix=pool.prefix,
            )
        record_length(session, Block(pool.family, 0, plen))  # known lengths: no statement
        found = freespace.take_free(session, pool.id, plen)
        if found is None:
            raise PoolExhausted(
                "pool {name!r} ({prefix}) has no free /{plen} left",
                "prefixlen",
                name=pool.name,
                prefix=pool.prefix,
                plen=plen,
            )
        block, outer = found
        if at < utcnow() - BACKDATED:
            # Free now, but was it held after a backdated start? Never double-book history
            # (the block taken from the free space comes back with the rollback).
            conflict = _holder_conflict(session, block, at)
            if conflict:
                raise AddressConflict(
                    "{block} {conflict}", "valid_from", block=block, conflict=conflict
                )
    alloc = Allocation(
        pool_id=pool.id,
        customer_id=customer.id,
        **block.columns(),
        purpose=(purpose or "").strip(),
        valid_from=at,
        created_at=utcnow(),
    )
    session.add(alloc)
    audit.record(
        session,
        actor,
        "allocation.add",
        alloc,
        {
            "prefix": str(block),
            "pool": pool.name,
            "customer_id": customer.id,
            "purpose": alloc.purpose,
            "valid_from": at,
        },
    )
    return alloc


# Prefix lengths seen committed in holding_length, per PostgreSQL database. Rows there
# are never deleted, so a length read once stays true; it saves a round trip per allocation.
# The memo is only filled by a transaction that has written nothing yet, so every row
# it sees is committed (never this transaction's own, which may still roll back).
_KNOWN_LENGTHS: dict[str, tuple[float, frozenset]] = {}
KNOWN_LENGTHS_TTL = 30.0


def _known_lengths(session: Session) -> frozenset:
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":  # SQLite: the upsert costs no round trip
        return frozenset()
    key = bind.url.render_as_string(hide_password=False)
    now = time.monotonic()
    hit = _KNOWN_LENGTHS.get(key)
    if hit is None or now - hit[0] > KNOWN_LENGTHS_TTL:
        rows = session.execute(
            text(
                "SELECT pg_current_xact_id_if_assigned() IS NULL, family, prefixlen "
                "FROM holding_length"
            )
        ).all()
        if not rows or not rows[0][0]:
            return frozenset()
        hit = (now, frozenset((f, p) for _, f, p in rows))
        _KNOWN_LENGTHS[key] = hit
    return hit[1]


def forget_known_lengths() -> None:
    """Drop the memo (for tests that empty the tables between cases)."""
    _KNOWN_LENGTHS.clear()


def record_length(session: Session, block: Block) -> None:
    """Note the block's prefix length as one in use (see models.HoldingLength)."""
    if (block.family, block.prefixlen) in _known_lengths(session):
        return
    dialect = session.get_bind().dialect.name
    stmt = (pg_insert if dialect == "postgresql" else sqlite_insert)(HoldingLength).values(
        family=block.family, prefixlen=block.prefixlen
    )
    session.execute(stmt.on_conflict_do_nothing())


def rebuild_holding_lengths(session: Session) -> int:
    """Record every prefix length present in the ledger (after bulk loads); returns the count."""
    rows = session.execute(select(Allocation.family, Allocation.prefixlen).distinct()).all()
    for family, prefixlen in rows:
        record_length(session, Block(family, 0, prefixlen))
    return len(rows)


def _check_end(item, at: datetime, what: str) -> None:
    if item.valid_to is not None:
        raise StateConflict(
            "{what} {prefix} ended already at {valid_to}",
            what,
            what=Phrase(what),
            prefix=item.prefix,
            valid_to=item.valid_to.isoformat(),
        )
    if at < item.valid_from:
        raise ValidationError(
            "{at} is before valid_from {valid_from}",
            "valid_to",
            at=at.isoformat(),
            valid_from=item.valid_from.isoformat(),
        )


def end_subleases_of(session: Session, alloc: Allocation, at: datetime, actor: str) -> int:
    """End every current sublease of an allocation at `at` (invariant 2)."""
    subs = (
        session.execute(
            select(Sublease).where(Sublease.allocation_id == alloc.id, Sublease.valid_to.is_(None))
        )
        .scalars()
        .all()
    )
    for sub in subs:
        sub.valid_to = at
        sub.end_reason = EndReason.ALLOCATION_ENDED
        audit.record(
            session,
            actor,
            "sublease.end",
            sub,
            {
                "prefix": sub.prefix,
                "valid_to": sub.valid_to,
                "reason": EndReason.ALLOCATION_ENDED.value,
            },
        )
    return len(subs)


def end_allocation(
    session: Session,
    allocation,
    *,
    actor: str,
    at=None,
    reason: EndReason = EndReason.ENDED,
    note: str | None = None,
    quarantine_days: int | None = QUARANTINE_DAYS,
) -> Allocation:
    """End an allocation and its subleases; the block goes to quarantine (0 days: free now)."""
    alloc = get_allocation(session, allocation)
    at = effective_time(at, "valid_to")
    _check_end(alloc, at, "allocation")
    days = QUARANTINE_DAYS if quarantine_days is None else quarantine_days
    if not isinstance(days, int) or days < 0:
        raise ValidationError(
            "{days!r} is not a number of days (0 or more)", "quarantine_days", days=days
        )
    lock_pool(session, alloc.pool_id)
    later = session.execute(
        select(Sublease)
        .where(Sublease.allocation_id == alloc.id, Sublease.valid_from > at)
        .limit(1)
    ).scalar_one_or_none()
    if later is not None:  # its sublease would outlive it (invariant 2)
        raise ValidationError(
            "{at} is before sublease {prefix} starts ({valid_from})",
            "valid_to",
            at=at.isoformat(),
            prefix=later.prefix,
            valid_from=later.valid_from.isoformat(),
        )
    end_subleases_of(session, alloc, at, actor)
    alloc.valid_to = at
    alloc.end_reason = reason
    alloc.end_note = note
    block = alloc.block
    if days:
        session.add(
            Quarantine(
                pool_id=alloc.pool_id,
                allocation_id=alloc.id,
                **block.columns(),
                since=at,
                until=at + timedelta(days=days),
                reason=note or f"allocation ended ({reason.value})",
            )
        )
    else:
        freespace.give_back(session, alloc.pool_id, alloc.pool.block, block)
    audit.record(
        session,
        actor,
        "allocation.end",
        alloc,
        {
            "prefix": str(block),
            "valid_to": at,
            "reason": reason.value,
            "note": note,
            "quarantine_days": days,
        },
    )
    return alloc


def set_purpose(session: Session, allocation, purpose, *, actor: str) -> Allocation:
    """Change what an allocation is used for (clause 18: through an approved change request)."""
    alloc = get_allocation(session, allocation)
    if alloc.valid_to is not None:
        raise StateConflict(
            "{prefix} has ended; its purpose is history", "allocation", prefix=alloc.prefix
        )
    purpose = optional(purpose, "purpose", 2000) or ""
    before = alloc.purpose
    alloc.purpose = purpose
    session.flush()
    if before != purpose:
        audit.record(session, actor, "allocation.purpose", alloc, {"from": before, "to": purpose})
    return alloc


@dataclass(frozen=True)
class AllocationFilter:
    customer_id: int | None = None
    pool_id: int | None = None
    current: bool | None = True  # True: held now; False: ended; None: both
    contains: str | None = None  # an address the allocation holds
    order: str = "address"  # address | recent (newest first) | current_first


def list_allocations(
    session: Session,
    flt: AllocationFilter = AllocationFilter(),
    scope: Scope = EVERYONE,
    window: Window = ALL,
) -> tuple[list[Allocation], int]:
    """Allocations matching `flt` that the scope may see: (rows, total)."""
    from .addresses import parse_address

    q = scope.restrict(select(Allocation), Allocation.customer_id)
    if flt.customer_id is not None:
        q = q.where(Allocation.customer_id == flt.customer_id)
    if flt.pool_id is not None:
        q = q.where(Allocation.pool_id == flt.pool_id)
    if flt.current is not None:
        q = q.where(
            Allocation.valid_to.is_(None) if flt.current else Allocation.valid_to.isnot(None)
        )
    if flt.contains:
        a = parse_address(flt.contains, "contains")
        key = to_bytes(a.first)
        q = q.where(Allocation.family == a.family, Allocation.first <= key, Allocation.last >= key)
    if flt.order == "recent":
        q = q.order_by(Allocation.id.desc())
    elif flt.order == "current_first":
        q = q.order_by(Allocation.valid_to.is_not(None), Allocation.family, Allocation.first)
    else:
        q = q.order_by(Allocation.family, Allocation.first, Allocation.id)
    return fetch(session, q, window)


def held_by(session: Session, customer_id: int) -> list[Allocation]:
    """What a customer holds now, in address order (its forms offer these)."""
    return list_allocations(session, AllocationFilter(customer_id=customer_id, current=True))[0]
