"""Allocations in the JSON API: list, allocate, end."""

from __future__ import annotations

from sqlalchemy import select

from ipam import allocation, pools
from ipam.addresses import parse_address, to_bytes
from ipam.models import Allocation

from ..access import OWN, STAFF, actor
from ..extensions import db
from ..schemas.common import Page
from ..schemas.ledger import AllocationIn, AllocationOut, AllocationQuery, EndIn
from ..usecase import run
from .endpoint import endpoint
from .helpers import page, quarantine_days, scoped_customer


@endpoint("GET", "/allocations", access=OWN, query=AllocationQuery, out=Page[AllocationOut])
def allocations_list(query: AllocationQuery):
    """Allocations"""
    statement = select(Allocation).order_by(Allocation.family, Allocation.first, Allocation.id)
    cust = scoped_customer(query.customer)
    if cust is not None:
        statement = statement.where(Allocation.customer_id == cust)
    if query.pool:
        statement = statement.where(Allocation.pool_id == pools.get_pool(db.session, query.pool).id)
    if query.current is not None:
        statement = statement.where(
            Allocation.valid_to.is_(None) if query.current else Allocation.valid_to.isnot(None)
        )
    if query.contains:
        a = parse_address(query.contains, "contains")
        key = to_bytes(a.first)
        statement = statement.where(
            Allocation.family == a.family, Allocation.first <= key, Allocation.last >= key
        )
    return page(statement, query)


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
