"""Sublessees and subleases (clause 19) in the JSON API."""

from __future__ import annotations

import pydantic
from flask import request
from pydantic import BaseModel, ConfigDict

from ipam import leasing
from ipam.errors import ValidationError

from ..access import OWN, OWN_WRITE, actor, load, scope
from ..extensions import db
from ..schemas.common import Page, Ref
from ..schemas.ledger import (
    NoteIn,
    SubleaseIn,
    SubleaseOut,
    SubleaseQuery,
    SublesseeIn,
    SublesseeOut,
    SublesseePatch,
    SublesseeQuery,
)
from ..usecase import run
from .endpoint import endpoint, parse_body
from .helpers import paged, scoped_customer, window


@endpoint("GET", "/sublessees", access=OWN, query=SublesseeQuery, out=Page[SublesseeOut])
def sublessees_list(query: SublesseeQuery):
    """Sublessees"""
    flt = leasing.SublesseeFilter(customer_id=scoped_customer(query.customer))
    rows, total = leasing.list_sublessees(db.session, flt, scope(), window(query))
    return paged(rows, total, query)


class NamedCustomer(BaseModel):
    """Only the customer a new object is for (the scope check comes first)."""

    model_config = ConfigDict(extra="ignore")
    customer: Ref | None = None


@endpoint(
    "POST", "/sublessees", access=OWN_WRITE, body=SublesseeIn, out=SublesseeOut, status=201,
    parse=False,
)  # fmt: skip
def sublessee_add():
    """Register a sublessee (clause 19)"""
    # Another customer's id answers 404 before any field is judged, as for every object.
    try:
        named = NamedCustomer.model_validate_json(request.get_data(cache=True) or b"{}")
    except pydantic.ValidationError:
        named = None
    if named is not None and named.customer is not None:
        scoped_customer(named.customer)
    data = parse_body(SublesseeIn).model_dump(mode="json", exclude_unset=True)
    cust = scoped_customer(data.pop("customer", None))
    if cust is None:
        raise ValidationError("is required", "customer")
    return run(lambda s: leasing.register_sublessee(s, cust, data, actor=actor()))


@endpoint("GET", "/sublessees/<int:sublessee_id>", access=OWN, out=SublesseeOut)
def sublessee(sublessee_id):
    """A sublessee (personal data masked)"""
    return leasing.get_sublessee(db.session, sublessee_id)


@endpoint(
    "PATCH", "/sublessees/<int:sublessee_id>", access=OWN_WRITE, body=SublesseePatch,
    out=SublesseeOut,
)  # fmt: skip
def sublessee_update(sublessee_id, body: SublesseePatch):
    """Change a sublessee's details"""
    data = body.model_dump(mode="json", exclude_unset=True)
    return run(lambda s: leasing.update_sublessee(s, sublessee_id, data, actor=actor()))


@endpoint("GET", "/subleases", access=OWN, query=SubleaseQuery, out=Page[SubleaseOut])
def subleases_list(query: SubleaseQuery):
    """Subleases"""
    flt = leasing.SubleaseFilter(
        customer_id=scoped_customer(query.customer),
        sublessee_id=load("sublessee", query.sublessee).id if query.sublessee else None,
        current=query.current,
    )
    rows, total = leasing.list_subleases(db.session, flt, scope(), window(query))
    return paged(rows, total, query)


@endpoint("POST", "/subleases", access=OWN_WRITE, body=SubleaseIn, out=SubleaseOut, status=201)
def sublease_add(body: SubleaseIn):
    """Sub-lease part of an allocation to a registered sublessee"""

    def lease(s):
        alloc = load("allocation", body.allocation)
        sub = load("sublessee", body.sublessee)
        return leasing.sublease(
            s, alloc, sub, prefix=body.prefix, prefixlen=body.prefixlen, actor=actor()
        )

    return run(lease)


@endpoint(
    "POST", "/subleases/<int:sublease_id>/end", access=OWN_WRITE, body=NoteIn, out=SubleaseOut
)
def sublease_end(sublease_id, body: NoteIn):
    """End a sublease"""
    return run(lambda s: leasing.end_sublease(s, sublease_id, actor=actor(), note=body.note))
