"""Pools: the provider's own space, nested, and how full each one is."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import audit, freespace
from .addresses import Block, parse_block, to_bytes
from .db import lock_named, lock_rows, utcnow
from .errors import AddressConflict, NotFound, ValidationError
from .listing import ALL, Window, fetch
from .lookup import covering, inside
from .models import Allocation, FreeTally, Pool, Quarantine
from .validation import required


def lock_pool(session: Session, pool: Pool | int) -> None:
    """Serialise changes to one pool's space until commit; other pools do not wait."""
    lock_rows(session, "pool", [pool if isinstance(pool, int) else pool.id])


def get_pool(session: Session, ref, field: str = "pool") -> Pool:
    """Find a pool by id, name or exact prefix."""
    if isinstance(ref, Pool):
        return ref
    pool = None
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        pool = session.get(Pool, int(ref))
    elif isinstance(ref, str) and ref.strip():
        pool = session.execute(select(Pool).where(Pool.name == ref.strip())).scalar_one_or_none()
        if pool is None and ("." in ref or ":" in ref):
            try:
                block = parse_block(ref, field)
            except ValidationError:
                block = None
            if block is not None:
                pool = session.execute(
                    select(Pool).where(
                        Pool.family == block.family,
                        Pool.first == to_bytes(block.first),
                        Pool.prefixlen == block.prefixlen,
                    )
                ).scalar_one_or_none()
    if pool is None:
        raise NotFound("no pool {ref!r}", field, ref=ref)
    return pool


def innermost_pool(session: Session, block: Block) -> Pool | None:
    """Return the deepest pool that contains `block`, or None."""
    return session.execute(
        select(Pool).where(covering(Pool, block)).order_by(Pool.prefixlen.desc()).limit(1)
    ).scalar_one_or_none()


def add_pool(
    session: Session, prefix, name, *, actor: str, description: str = "", parent=None
) -> Pool:
    """Add a pool; inside an existing pool it becomes that pool's child and its space is carved out.

    Refuses host bits, a duplicate, overlap with a sibling pool or with current
    holdings in the parent, and a new pool that would contain existing ones.
    """
    block = parse_block(prefix, "prefix")
    name = required(name, "name")
    # Pools are added rarely: serialise all additions so two overlapping top-level
    # pools cannot race in. Taken before any pool row, like nothing else does: no cycle.
    lock_named(session, "pool structure")
    if session.execute(select(Pool.id).where(Pool.name == name)).first():
        raise ValidationError("a pool named {name!r} exists already", "name", name=name)
    inner = session.execute(select(Pool).where(inside(Pool, block)).limit(1)).scalar_one_or_none()
    if inner is not None:
        if inner.block == block:
            raise AddressConflict(
                "{block} is pool {name!r} already", "prefix", block=block, name=inner.name
            )
        raise AddressConflict(
            "{block} would contain the existing pool {name!r} ({prefix}); add the larger pool "
            "first",
            "prefix",
            block=block,
            name=inner.name,
            prefix=inner.prefix,
        )
    container = innermost_pool(session, block)
    if parent is not None:
        parent_pool = get_pool(session, parent, "parent")
        if not parent_pool.block.contains(block) or parent_pool.block == block:
            raise ValidationError(
                "{block} is not inside the parent pool {prefix}",
                "prefix",
                block=block,
                prefix=parent_pool.prefix,
            )
        if container is not None and container.id != parent_pool.id:
            raise ValidationError(
                "{block} lies in pool {name!r}, which is inside {parent_pool_name!r}; give that "
                "pool as the parent",
                "parent",
                block=block,
                name=container.name,
                parent_pool_name=parent_pool.name,
            )
    if container is not None:
        lock_pool(session, container)
        if not freespace.take(session, container.id, block):
            raise AddressConflict(
                "{block} is not free in pool {name!r}: part of it is allocated or quarantined",
                "prefix",
                block=block,
                name=container.name,
            )
    pool = Pool(
        name=name,
        **block.columns(),
        parent_id=container.id if container else None,
        description=description or "",
        created_at=utcnow(),
    )
    session.add(pool)
    session.flush()
    freespace.add_blocks(session, pool.id, [block])
    audit.record(
        session,
        actor,
        "pool.add",
        pool,
        {
            "prefix": str(block),
            "name": name,
            "parent_id": pool.parent_id,
        },
    )
    return pool


@dataclass
class Utilization:
    pool_id: int
    name: str
    prefix: str
    size: int
    allocated: int
    quarantined: int
    child_pools: int
    free: int

    @property
    def used_ratio(self) -> float:
        return (self.size - self.free) / self.size if self.size else 0.0


def _sum_sizes(session, model, *where, weight=None) -> int:
    """Addresses in the blocks of `model` matching `where` (each counted `weight` times)."""
    count = func.sum(weight) if weight is not None else func.count()
    rows = session.execute(
        select(model.family, model.prefixlen, count)
        .where(*where)
        .group_by(model.family, model.prefixlen)
    ).all()
    return sum((n or 0) << (Block(f, 0, p).width - p) for f, p, n in rows)


def utilization(session: Session, pool) -> Utilization:
    """Return counts of addresses allocated, quarantined, in child pools and free, now.

    Costs the same at a million holdings as at ten: the free size comes from the
    free tally (free blocks counted per length), quarantine and child pools are
    few, and what is allocated is the rest, since a pool's space is exactly its
    free blocks, its current holdings, its quarantine and its child pools.
    """
    pool = get_pool(session, pool)
    quarantined = _sum_sizes(
        session, Quarantine, Quarantine.pool_id == pool.id, Quarantine.released_at.is_(None)
    )
    children = _sum_sizes(session, Pool, Pool.parent_id == pool.id)
    free = _sum_sizes(session, FreeTally, FreeTally.pool_id == pool.id, weight=FreeTally.n)
    size = pool.block.size
    return Utilization(
        pool.id, pool.name, pool.prefix, size, size - free - quarantined - children,
        quarantined, children, free,
    )  # fmt: skip


def utilization_scanned(session: Session, pool) -> Utilization:
    """utilization() the long way, from every current holding and free block: for checks."""
    pool = get_pool(session, pool)
    allocated = _sum_sizes(
        session, Allocation, Allocation.pool_id == pool.id, Allocation.valid_to.is_(None)
    )
    quarantined = _sum_sizes(
        session, Quarantine, Quarantine.pool_id == pool.id, Quarantine.released_at.is_(None)
    )
    children = _sum_sizes(session, Pool, Pool.parent_id == pool.id)
    return Utilization(
        pool.id, pool.name, pool.prefix, pool.block.size, allocated, quarantined, children,
        freespace.free_size(session, pool.id),
    )  # fmt: skip


def list_pools(
    session: Session, *, family: int | None = None, window: Window = ALL
) -> tuple[list[Pool], int]:
    """Pools (of one family if given) in address order: (rows, total)."""
    q = select(Pool).order_by(Pool.family, Pool.first)
    if family is not None:
        q = q.where(Pool.family == family)
    return fetch(session, q, window)


def utilization_history(session: Session, pool, instants: list) -> list[tuple[object, int, int]]:
    """(instant, addresses held, pool size) at each of `instants`, for the pool's picture.

    Held space at an instant is read from the allocations current then (each instant one
    grouped count over the pool's allocations): a page of its own, not the pool page.
    """
    pool = get_pool(session, pool)
    out = []
    for at in instants:
        held = _sum_sizes(
            session,
            Allocation,
            Allocation.pool_id == pool.id,
            Allocation.valid_from <= at,
            (Allocation.valid_to.is_(None)) | (Allocation.valid_to > at),
        )
        out.append((at, held, pool.block.size))
    return out


def utilization_all(session: Session) -> list[Utilization]:
    """Every pool's utilization, a parent's figures including its child pools' (so a /8 split
    into /16 pools reads as what its children hold, not as 100 % used by children).

    `child_pools` stays the space handed to child pools; allocated, quarantined and free add
    up the whole subtree, so used_ratio is the subtree's.
    """
    rows = list_pools(session)[0]
    own = {p.id: utilization(session, p) for p in rows}
    children: dict[int, list[int]] = {}
    for p in rows:
        if p.parent_id is not None:
            children.setdefault(p.parent_id, []).append(p.id)

    def total(pid: int) -> Utilization:
        u = own[pid]
        allocated, quarantined, free = u.allocated, u.quarantined, u.free
        for child in children.get(pid, ()):
            c = total(child)
            allocated, quarantined, free = (
                allocated + c.allocated,
                quarantined + c.quarantined,
                free + c.free,
            )
        return Utilization(
            u.pool_id, u.name, u.prefix, u.size, allocated, quarantined, u.child_pools, free
        )

    return [total(p.id) for p in rows]
