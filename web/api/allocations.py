"""Allocations in the JSON API: list, allocate, end."""

from __future__ import annotations

from ipam import allocation, pools

from ..access import OWN, STAFF, actor, scope
from ..extensions import db
from ..schemas.common import Page
from ..schemas.ledger import AllocationIn, AllocationOut, AllocationQuery, EndIn
from ..usecase import run
from .endpoint import endpoint
from .helpers import paged, quarantine_days, scoped_customer, window


@endpoint("GET", "/allocations", access=OWN, query=AllocationQuery, out=Page[AllocationOut])
def allocations_list(query: AllocationQuery):
    """Allocations"""
    flt = allocation.AllocationFilter(
        customer_id=scoped_customer(query.customer),
        pool_id=pools.get_pool(db.session, query.pool).id if query.pool else None,
        current=query.current,
        contains=query.contains,
    )
    rows, total = allocation.list_allocations(db.session, flt, scope(), window(query))
    return paged(rows, total, query)


@endpoint("POST", "/allocations", access=STAFF, body=AllocationIn, out=AllocationOut, status=201)
def allocation_add(body: AllocationIn):
    """Allocate a specific prefix, or the next free block of a length"""
    return run(
        lambda s: allocation.allocate(
            s, body.pool, body.customer, prefix=body.prefix, prefixlen=body.prefixlen,
            purpose=body.purpose, actor=actor(),
        )
    )  # fmt: skip


@endpoint("GET", "/allocations/<int:allocation_id>", access=OWN, out=AllocationOut)
def allocation_get(allocation_id):
    """An allocation"""
    return allocation.get_allocation(db.session, allocation_id)


@endpoint(
    "POST", "/allocations/<int:allocation_id>/end", access=STAFF, body=EndIn, out=AllocationOut
)
def allocation_end(allocation_id, body: EndIn):
    """End an allocation and its subleases"""
    return run(
        lambda s: allocation.end_allocation(
            s, allocation_id, actor=actor(), note=body.note,
            quarantine_days=quarantine_days(body.quarantine_days),
        )
    )  # fmt: skip
