"""Sublessees and subleases: the third parties a customer passes addresses to (clause 19).

A sublease lies inside its allocation in space and time, and no address is
sub-leased to two sublessees at the same instant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit, validation
from .addresses import Block, check_prefixlen, parse_block
from .allocation import _check_end, effective_time, get_allocation
from .customers import get_customer
from .db import utcnow
from .errors import AddressConflict, NotFound, ValidationError
from .listing import ALL, EVERYONE, Scope, Window, fetch
from .lookup import during, find_by_ref, overlapping
from .models import EndReason, IdType, Sublease, Sublessee, SublesseeKind, SublesseeRevision
from .pools import lock_pool

FIELDS = (
    "kind",
    "name",
    "id_type",
    "id_number",
    "contact_person",
    "phone",
    "email",
    "address",
    "purpose",
    "domains",
)


def snapshot(sub: Sublessee) -> dict:
    return audit.jsonable(
        {"id": sub.id, "customer_id": sub.customer_id, **{f: getattr(sub, f) for f in FIELDS}}
    )


def _clean(data: dict, merged: dict) -> dict:
    unknown = set(data) - set(FIELDS)
    if unknown:
        raise ValidationError("is not a sublessee field", sorted(unknown)[0])
    out = {}
    checks = {
        "kind": lambda v: validation.choice(SublesseeKind, v, "kind"),
        "name": lambda v: validation.line(v, "name"),
        "id_type": lambda v: validation.choice(IdType, v, "id_type"),
        "contact_person": lambda v: validation.required(v, "contact_person"),
        "phone": lambda v: validation.phone(v, "phone"),
        "email": lambda v: validation.email(v, "email"),
        "address": lambda v: validation.required(v, "address", 500),
        "purpose": lambda v: validation.required(v, "purpose", 2000),
        "domains": validation.domain_list,
    }
    for field, check in checks.items():
        if field in data:
            out[field] = check(data[field])
        elif merged.get(field) in (None, "") and field != "domains":
            raise ValidationError("is required", field)
    merged = merged | out
    id_type = merged.get("id_type")
    if "id_number" in data or "id_type" in data:
        number = data.get("id_number", merged.get("id_number"))
        if id_type == IdType.RESIDENT_ID:
            out["id_number"] = validation.resident_id(number, "id_number")
        elif id_type == IdType.USCC:
            out["id_number"] = validation.credit_code(number, "id_number")
        else:
            out["id_number"] = validation.required(number, "id_number", 64)
    elif not merged.get("id_number"):
        raise ValidationError("is required", "id_number")
    kind = merged.get("kind")
    if kind == SublesseeKind.ORGANISATION and id_type == IdType.RESIDENT_ID:
        raise ValidationError(
            "an organisation is identified by its unified social credit code", "id_type"
        )
    if kind == SublesseeKind.PERSON and id_type == IdType.USCC:
        raise ValidationError(
            "a person is identified by an identity document, not a credit code", "id_type"
        )
    return out


def get_sublessee(session: Session, ref, field: str = "sublessee") -> Sublessee:
    sub = find_by_ref(
        session, Sublessee, ref, field, "sublessee", lambda name: Sublessee.name == name
    )
    if sub is None:
        raise NotFound("no sublessee {ref!r}", field, ref=ref)
    return sub


def register_sublessee(session: Session, customer, data: dict, *, actor: str, at=None) -> Sublessee:
    """Register a third party the customer passes addresses to, with its true details."""
    customer = get_customer(session, customer)
    values = _clean(data, {})
    dup = session.execute(
        select(Sublessee.id).where(
            Sublessee.customer_id == customer.id,
            Sublessee.id_type == values["id_type"],
            Sublessee.id_number == values["id_number"],
        )
    ).first()
    if dup:
        raise ValidationError("a sublessee with this identity is registered already", "id_number")
    at = effective_time(at)
    values.setdefault("domains", [])
    sub = Sublessee(customer_id=customer.id, **values, created_at=at, updated_at=at)
    session.add(sub)
    session.flush()
    session.add(SublesseeRevision(sublessee_id=sub.id, recorded_at=at, snapshot=snapshot(sub)))
    audit.record(session, actor, "sublessee.add", sub, snapshot(sub))
    return sub


def update_sublessee(
    session: Session, sublessee, changes: dict, *, actor: str, at=None
) -> Sublessee:
    """Change a sublessee's details; the old version stays answerable for its time."""
    sub = get_sublessee(session, sublessee)
    current = {f: getattr(sub, f) for f in FIELDS}
    values = _clean(changes, current)
    at = effective_time(at)
    before = snapshot(sub)
    for field, value in values.items():
        setattr(sub, field, value)
    sub.updated_at = at
    session.flush()
    after = snapshot(sub)
    changed = {k: {"from": before[k], "to": after[k]} for k in after if before[k] != after[k]}
    if changed:
        session.add(SublesseeRevision(sublessee_id=sub.id, recorded_at=at, snapshot=after))
        audit.record(session, actor, "sublessee.update", sub, {"changes": changed})
    return sub


def _next_free_part(session: Session, alloc, size_plen: int, at: datetime) -> Block | None:
    """Return the lowest aligned /size_plen in the allocation not sub-leased from `at` on."""
    outer = alloc.block
    size = 1 << (outer.width - size_plen)
    cursor = outer.first
    taken = session.execute(
        select(Sublease.first, Sublease.last)
        .where(Sublease.allocation_id == alloc.id, during(Sublease, at, None))
        .order_by(Sublease.first)
    ).all()  # bounded by the allocation's size, and never left half-read
    for first, last in taken:
        start = -(-cursor // size) * size
        if start + size - 1 < int.from_bytes(first, "big"):
            return Block(outer.family, start, size_plen)
        cursor = max(cursor, int.from_bytes(last, "big") + 1)
    start = -(-cursor // size) * size
    if start + size - 1 <= outer.last:
        return Block(outer.family, start, size_plen)
    return None


def sublease(
    session: Session, allocation, sublessee, *, prefix=None, prefixlen=None, actor: str, at=None
) -> Sublease:
    """Pass part of an allocation to a registered sublessee of the same customer.

    Give a block inside the allocation, or a prefix length for the next free
    part (default: one address).
    """
    alloc = get_allocation(session, allocation)
    sub = get_sublessee(session, sublessee)
    at = effective_time(at, "valid_from")
    if sub.customer_id != alloc.customer_id:
        raise ValidationError(
            "{name} is not a registered sublessee of the allocation's customer",
            "sublessee",
            name=sub.name,
        )
    if alloc.valid_to is not None and alloc.valid_to <= at:
        raise ValidationError(
            "allocation {prefix} ended at {valid_to}",
            "allocation",
            prefix=alloc.prefix,
            valid_to=alloc.valid_to.isoformat(),
        )
    if at < alloc.valid_from:
        raise ValidationError(
            "{at} is before allocation {prefix} starts ({valid_from})",
            "valid_from",
            at=at.isoformat(),
            prefix=alloc.prefix,
            valid_from=alloc.valid_from.isoformat(),
        )
    lock_pool(session, alloc.pool_id)
    if prefix not in (None, ""):
        block = parse_block(prefix, "prefix")
        if not alloc.block.contains(block):
            raise ValidationError(
                "{block} is outside allocation {prefix}", "prefix", block=block, prefix=alloc.prefix
            )
        clash = session.execute(
            select(Sublease)
            .where(overlapping(Sublease, block), during(Sublease, at, None))
            .limit(1)
        ).scalar_one_or_none()
        if clash is not None:
            raise AddressConflict(
                "{block} overlaps {prefix}, sub-leased to {name}",
                "prefix",
                block=block,
                prefix=clash.prefix,
                name=clash.sublessee.name,
            )
    else:
        plen = (
            alloc.block.width
            if prefixlen in (None, "")
            else check_prefixlen(prefixlen, alloc.family)
        )
        if plen < alloc.prefixlen:
            raise ValidationError(
                "/{plen} is larger than allocation {prefix}",
                "prefixlen",
                plen=plen,
                prefix=alloc.prefix,
            )
        block = _next_free_part(session, alloc, plen, at)
        if block is None:
            raise AddressConflict(
                "allocation {prefix} has no free /{plen} left to sub-lease",
                "prefixlen",
                prefix=alloc.prefix,
                plen=plen,
            )
    lease = Sublease(
        allocation_id=alloc.id,
        sublessee_id=sub.id,
        **block.columns(),
        valid_from=at,
        created_at=utcnow(),
    )
    session.add(lease)
    audit.record(
        session,
        actor,
        "sublease.add",
        lease,
        {
            "prefix": str(block),
            "allocation_id": alloc.id,
            "sublessee_id": sub.id,
            "valid_from": at,
        },
    )
    return lease


def end_sublease(
    session: Session, lease, *, actor: str, at=None, note: str | None = None
) -> Sublease:
    """End a sublease; the addresses stay with the customer's allocation."""
    if not isinstance(lease, Sublease):
        found = session.get(Sublease, int(lease)) if str(lease).strip().isdigit() else None
        if found is None:
            raise NotFound("no sublease {lease!r}", "sublease", lease=lease)
        lease = found
    at = effective_time(at, "valid_to")
    _check_end(lease, at, "sublease")
    lock_pool(session, lease.allocation.pool_id)
    lease.valid_to = at
    lease.end_reason = EndReason.ENDED
    lease.end_note = note
    audit.record(
        session,
        actor,
        "sublease.end",
        lease,
        {"prefix": lease.prefix, "valid_to": at, "note": note},
    )
    return lease


def current_subleases(
    session: Session, customer_id: int, limit: int | None = None
) -> list[Sublease]:
    """A customer's current subleases in address order (the first `limit`), each with its
    sublessee loaded in the same round trip."""
    from sqlalchemy.orm import joinedload

    from .models import Allocation

    q = (
        select(Sublease)
        .join(Allocation)
        .options(joinedload(Sublease.sublessee))
        .where(Allocation.customer_id == customer_id, Sublease.valid_to.is_(None))
        .order_by(Sublease.family, Sublease.first)
    )
    if limit is not None:
        q = q.limit(limit)
    return list(session.execute(q).scalars())


@dataclass(frozen=True)
class SublesseeFilter:
    customer_id: int | None = None
    order: str = "id"  # id | name


def list_sublessees(
    session: Session,
    flt: SublesseeFilter = SublesseeFilter(),
    scope: Scope = EVERYONE,
    window: Window = ALL,
) -> tuple[list[Sublessee], int]:
    """Sublessees matching `flt` that the scope may see: (rows, total)."""
    q = scope.restrict(select(Sublessee), Sublessee.customer_id)
    if flt.customer_id is not None:
        q = q.where(Sublessee.customer_id == flt.customer_id)
    q = q.order_by(Sublessee.name if flt.order == "name" else Sublessee.id)
    return fetch(session, q, window)


@dataclass(frozen=True)
class SubleaseFilter:
    customer_id: int | None = None
    sublessee_id: int | None = None
    current: bool | None = True


def list_subleases(
    session: Session,
    flt: SubleaseFilter = SubleaseFilter(),
    scope: Scope = EVERYONE,
    window: Window = ALL,
) -> tuple[list[Sublease], int]:
    """Subleases matching `flt` that the scope may see (by their allocation's holder)."""
    from .models import Allocation

    q = select(Sublease).join(Allocation, Allocation.id == Sublease.allocation_id)
    q = scope.restrict(q, Allocation.customer_id)
    if flt.customer_id is not None:
        q = q.where(Allocation.customer_id == flt.customer_id)
    if flt.sublessee_id is not None:
        q = q.where(Sublease.sublessee_id == flt.sublessee_id)
    if flt.current is not None:
        q = q.where(Sublease.valid_to.is_(None) if flt.current else Sublease.valid_to.isnot(None))
    q = q.order_by(Sublease.family, Sublease.first, Sublease.id)
    return fetch(session, q, window)
