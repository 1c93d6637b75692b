"""Who held address A at instant T: pool, allocation, customer, sublease, sublessee.

Customer and sublessee data come from their revisions in force at T, so a
later change of contacts never changes an old answer. One indexed query
answers the common case (the covering allocations are found by equality on
their masked `first`, see lookup.py); unallocated addresses take two more.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from datetime import datetime

from sqlalchemy import JSON, Integer, LargeBinary, String, bindparam, select, text
from sqlalchemy.orm import Session

from . import audit
from .addresses import Block, parse_address, to_bytes
from .db import UTCDateTime, utcnow
from .lookup import covering
from .models import Pool, Quarantine
from .validation import instant, mask


@dataclass
class Attribution:
    """The answer to "who held `address` at `at`"."""

    address: str
    at: datetime
    status: str  # allocated | subleased | quarantined | free | unmanaged
    pool: dict | None = None
    allocation: dict | None = None
    customer: dict | None = None
    sublease: dict | None = None
    sublessee: dict | None = None
    quarantine: dict | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return audit.jsonable(asdict(self))

    def masked(self) -> Attribution:
        """Return a copy with ID numbers and phone numbers masked (invariant 9)."""
        out = copy.deepcopy(self)
        for person in (out.customer or {}).get("contacts", []) + (out.customer or {}).get(
            "responsible_persons", []
        ):
            for key in ("phone", "id_number"):
                if key in person:
                    person[key] = mask(person[key])
        if out.sublessee:
            out.sublessee["id_number"] = mask(out.sublessee.get("id_number"), 4, 4)
            out.sublessee["phone"] = mask(out.sublessee.get("phone"))
        return out


def _revision_sql(table: str, key: str, ref: str) -> str:
    # The version in force at :t; before the first one, the first one.
    return f"""COALESCE(
        (SELECT r.snapshot FROM {table} r WHERE r.{key} = {ref} AND r.recorded_at <= :t
         ORDER BY r.recorded_at DESC, r.id DESC LIMIT 1),
        (SELECT r.snapshot FROM {table} r WHERE r.{key} = {ref}
         ORDER BY r.recorded_at, r.id LIMIT 1))"""


def _statement(family: int):
    width = 32 if family == 4 else 128
    masks = ", ".join(f":m{i}" for i in range(width + 1))
    sql = f"""
    SELECT a.id AS allocation_id, a.first AS a_first, a.prefixlen AS a_plen, a.purpose,
           a.valid_from AS a_from, a.valid_to AS a_to, a.end_reason AS a_end,
           p.id AS pool_id, p.name AS pool_name, p.first AS p_first, p.prefixlen AS p_plen,
           {_revision_sql("customer_revision", "customer_id", "a.customer_id")} AS customer,
           s.id AS sublease_id, s.first AS s_first, s.prefixlen AS s_plen,
           s.valid_from AS s_from, s.valid_to AS s_to,
           {_revision_sql("sublessee_revision", "sublessee_id", "s.sublessee_id")} AS sublessee
    FROM allocation a
    JOIN pool p ON p.id = a.pool_id
    LEFT JOIN sublease s ON s.allocation_id = a.id AND s.first <= :a AND s.last >= :a
         AND s.valid_from <= :t AND (s.valid_to IS NULL OR s.valid_to > :t)
    WHERE a.family = :f AND a.first IN ({masks}) AND a.last >= :a
      AND a.valid_from <= :t AND (a.valid_to IS NULL OR a.valid_to > :t)
    """
    params = [
        bindparam("t", type_=UTCDateTime),
        bindparam("a", type_=LargeBinary),
        bindparam("f", type_=Integer),
    ]
    params += [bindparam(f"m{i}", type_=LargeBinary) for i in range(width + 1)]
    return (
        text(sql)
        .bindparams(*params)
        .columns(
            allocation_id=Integer,
            a_first=LargeBinary,
            a_plen=Integer,
            purpose=String,
            a_from=UTCDateTime,
            a_to=UTCDateTime,
            a_end=String,
            pool_id=Integer,
            pool_name=String,
            p_first=LargeBinary,
            p_plen=Integer,
            customer=JSON,
            sublease_id=Integer,
            s_first=LargeBinary,
            s_plen=Integer,
            s_from=UTCDateTime,
            s_to=UTCDateTime,
            sublessee=JSON,
        )
    )


_STATEMENTS = {4: _statement(4), 6: _statement(6)}


def _prefix(family: int, first: bytes, plen: int) -> str:
    return str(Block.of(family, first, plen))


def attribution(session: Session, address, at=None) -> Attribution:
    """Return who held `address` at instant `at` (default now), as they were then.

    A single address is expected (IPv4-mapped IPv6 is read as IPv4). Status is
    "subleased", "allocated", "quarantined", "free" (inside a pool, unheld) or
    "unmanaged" (in no pool).
    """
    block = parse_address(address, "address")
    at = instant(at, "at") or utcnow()
    params = {"t": at, "a": to_bytes(block.first), "f": block.family}
    for i, (first, _plen) in enumerate(block.covering_firsts()[::-1]):
        params[f"m{i}"] = to_bytes(first)
    row = session.execute(_STATEMENTS[block.family], params).first()
    fam = block.family
    if row is not None:
        result = Attribution(
            address=str(block),
            at=at,
            status="subleased" if row.sublease_id else "allocated",
            pool={
                "id": row.pool_id,
                "name": row.pool_name,
                "prefix": _prefix(fam, row.p_first, row.p_plen),
            },
            allocation={
                "id": row.allocation_id,
                "prefix": _prefix(fam, row.a_first, row.a_plen),
                "purpose": row.purpose,
                "valid_from": row.a_from,
                "valid_to": row.a_to,
                "end_reason": row.a_end,
            },
            customer=row.customer,
        )
        if row.sublease_id:
            result.sublease = {
                "id": row.sublease_id,
                "prefix": _prefix(fam, row.s_first, row.s_plen),
                "valid_from": row.s_from,
                "valid_to": row.s_to,
            }
            result.sublessee = row.sublessee
        return result
    pool = session.execute(
        select(Pool).where(covering(Pool, block)).order_by(Pool.prefixlen.desc()).limit(1)
    ).scalar_one_or_none()
    if pool is None:
        return Attribution(
            address=str(block),
            at=at,
            status="unmanaged",
            notes=["the address lies in none of the provider's pools"],
        )
    pool_info = {"id": pool.id, "name": pool.name, "prefix": pool.prefix}
    q = session.execute(
        select(Quarantine)
        .where(
            covering(Quarantine, block),
            Quarantine.since <= at,
            (Quarantine.released_at.is_(None)) | (Quarantine.released_at > at),
        )
        .limit(1)
    ).scalar_one_or_none()
    if q is not None:
        return Attribution(
            address=str(block),
            at=at,
            status="quarantined",
            pool=pool_info,
            quarantine={
                "id": q.id,
                "prefix": q.prefix,
                "since": q.since,
                "until": q.until,
                "reason": q.reason,
                "allocation_id": q.allocation_id,
            },
        )
    return Attribution(address=str(block), at=at, status="free", pool=pool_info)


def attribute_many(session: Session, items) -> list[Attribution]:
    """Attribute many (address, at) pairs in one session (abuse batches, reports)."""
    return [attribution(session, address, at) for address, at in items]


def reveal(session: Session, address, at=None, *, actor: str, reason: str) -> Attribution:
    """Return the unmasked answer, recording who looked and why (invariant 9)."""
    from .validation import required

    reason = required(reason, "reason", 2000)
    result = attribution(session, address, at)
    audit.record(
        session,
        actor,
        "attribution.reveal",
        "attribution",
        {"address": result.address, "at": result.at, "reason": reason},
    )
    return result
