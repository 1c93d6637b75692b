"""Customers (Party A) in the JSON API: registration, exit, reclamation."""

from __future__ import annotations

from ipam import customers, reclamation

from ..access import OWN, STAFF, actor, scope
from ..extensions import db
from ..schemas.common import Page
from ..schemas.ledger import (
    CustomerIn,
    CustomerOut,
    CustomerPatch,
    CustomerQuery,
    EndedOut,
    ExitIn,
    ReclaimIn,
)
from ..usecase import run
from .endpoint import endpoint
from .helpers import paged, quarantine_days, window


@endpoint("GET", "/customers", access=OWN, query=CustomerQuery, out=Page[CustomerOut])
def customers_list(query: CustomerQuery):
    """Customers"""
    flt = customers.CustomerFilter(status=query.status, name_contains=query.q)
    rows, total = customers.list_customers(db.session, flt, scope(), window(query))
    return paged(rows, total, query)


@endpoint("POST", "/customers", access=STAFF, body=CustomerIn, out=CustomerOut, status=201)
def customer_add(body: CustomerIn):
    """Register a customer"""
    data = body.model_dump(mode="json", exclude_unset=True)
    return run(lambda s: customers.add_customer(s, data, actor=actor()))


@endpoint("GET", "/customers/<int:customer_id>", access=OWN, out=CustomerOut)
def customer(customer_id):
    """A customer (personal data masked)"""
    return customers.get_customer(db.session, customer_id)


@endpoint(
    "PATCH", "/customers/<int:customer_id>", access=STAFF, body=CustomerPatch, out=CustomerOut
)
def customer_update(customer_id, body: CustomerPatch):
    """Change a customer's registration data (engineers)"""
    data = body.model_dump(mode="json", exclude_unset=True)
    return run(lambda s: customers.update_customer(s, customer_id, data, actor=actor()))


@endpoint("POST", "/customers/<int:customer_id>/exit", access=STAFF, body=ExitIn, out=EndedOut)
def customer_exit(customer_id, body: ExitIn):
    """The customer exits: every allocation ends, addresses to quarantine"""
    ended = run(
        lambda s: reclamation.customer_exit(
            s, customer_id, actor=actor(), quarantine_days=quarantine_days(body.quarantine_days),
            note=body.note or "customer exited",
        )
    )  # fmt: skip
    return {"ended": ended}


@endpoint(
    "POST", "/customers/<int:customer_id>/reclaim", access=STAFF, body=ReclaimIn, out=EndedOut
)
def customer_reclaim(customer_id, body: ReclaimIn):
    """Reclaim allocations for a recorded violation"""
    ended = run(
        lambda s: reclamation.reclaim(
            s, customer_id, reason=body.reason, actor=actor(), allocations=body.allocations,
            quarantine_days=quarantine_days(body.quarantine_days),
        )
    )  # fmt: skip
    return {"ended": ended}
