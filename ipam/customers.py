"""Customers (Party A): registration data, validated, with every version kept.

Each create or update appends a CustomerRevision so attribution can answer
with the contacts and filings as they were at any past instant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit, validation
from .db import utcnow
from .errors import NotFound, ValidationError
from .listing import ALL, EVERYONE, Scope, Window, fetch
from .lookup import find_by_ref
from .models import Customer, CustomerKind, CustomerRevision, CustomerStatus

FIELDS = (
    "name",
    "uscc",
    "kind",
    "status",
    "isp_licence_number",
    "isp_licence_scope",
    "isp_licence_expires",
    "icp_number",
    "connected_on",
    "psb_filing_number",
    "psb_filed_on",
    "responsible_persons",
    "contacts",
    "domains",
)


def snapshot(customer: Customer) -> dict:
    """Return the customer's registration data as plain JSON values."""
    return audit.jsonable({"id": customer.id, **{f: getattr(customer, f) for f in FIELDS}})


def _clean(data: dict, *, partial: bool) -> dict:
    """Validate the given fields; unknown fields are refused by name."""
    if "status" in data:
        raise ValidationError("changes only by exit, suspension or reinstatement", "status")
    unknown = set(data) - set(FIELDS)
    if unknown:
        field = sorted(unknown)[0]
        raise ValidationError("is not a customer field", field)
    out = {}
    checks = {
        "name": lambda v: validation.line(v, "name"),
        "uscc": lambda v: validation.credit_code(v, "uscc"),
        "kind": lambda v: validation.choice(CustomerKind, v, "kind"),
        "isp_licence_number": lambda v: validation.optional(v, "isp_licence_number", 64),
        "isp_licence_scope": lambda v: validation.optional(v, "isp_licence_scope", 2000),
        "isp_licence_expires": lambda v: validation.day(v, "isp_licence_expires"),
        "icp_number": lambda v: validation.optional(v, "icp_number", 64),
        "connected_on": lambda v: validation.day(v, "connected_on"),
        "psb_filing_number": lambda v: validation.optional(v, "psb_filing_number", 64),
        "psb_filed_on": lambda v: validation.day(v, "psb_filed_on"),
        "responsible_persons": lambda v: validation.person_list(v, "responsible_persons"),
        "contacts": lambda v: validation.person_list(v, "contacts"),
        "domains": lambda v: validation.domain_list(v, "domains"),
    }
    for field, check in checks.items():
        if field in data:
            out[field] = check(data[field])
        elif not partial and field in ("name", "uscc", "kind"):
            raise ValidationError("is required", field)
    return out


def _check_whole(values: dict) -> None:
    """Cross-field rules: a reseller of access names its ISP licence (clause 1)."""
    if values.get("kind") == CustomerKind.ISP and not values.get("isp_licence_number"):
        raise ValidationError(
            "is required for a customer that resells access (clause 1)", "isp_licence_number"
        )


def get_customer(session: Session, ref, field: str = "customer") -> Customer:
    """Find a customer by id, unified social credit code or exact name."""
    customer = find_by_ref(
        session,
        Customer,
        ref,
        field,
        "customer",
        lambda key: (Customer.uscc == key.upper()) | (Customer.name == key),
    )
    if customer is None:
        raise NotFound("no customer {ref!r}", field, ref=ref)
    return customer


def _revise(session: Session, customer: Customer, at: datetime) -> None:
    session.add(
        CustomerRevision(customer_id=customer.id, recorded_at=at, snapshot=snapshot(customer))
    )


def name_free(session: Session, name, customer_id: int | None = None) -> None:
    """A customer's name is how people look it up: no two customers may share one."""
    if name is None:
        return
    taken = session.execute(
        select(Customer.id).where(Customer.name == name, Customer.id != (customer_id or 0))
    ).first()
    if taken:
        raise ValidationError("another customer is named {name!r} already", "name", name=name)


def add_customer(
    session: Session, data: dict, *, actor: str, at: datetime | None = None
) -> Customer:
    """Register a customer; `at` backdates its first revision (imports, demo)."""
    values = _clean(data, partial=False)
    _check_whole(values)
    if session.execute(select(Customer.id).where(Customer.uscc == values["uscc"])).first():
        raise ValidationError(
            "a customer with code {uscc} exists already", "uscc", uscc=values["uscc"]
        )
    name_free(session, values.get("name"))
    at = validation.instant(at, "at") or utcnow()
    values.setdefault("responsible_persons", [])
    values.setdefault("contacts", [])
    customer = Customer(**values, status=CustomerStatus.ACTIVE, created_at=at, updated_at=at)
    session.add(customer)
    session.flush()
    _revise(session, customer, at)
    audit.record(session, actor, "customer.add", customer, snapshot(customer))
    return customer


def update_customer(
    session: Session, customer, changes: dict, *, actor: str, at: datetime | None = None
) -> Customer:
    """Change registration data; the old version stays answerable for its time."""
    customer = get_customer(session, customer)
    if "uscc" in changes:
        raise ValidationError("cannot be changed: it identifies the customer", "uscc")
    values = _clean(changes, partial=True)
    merged = {f: getattr(customer, f) for f in FIELDS} | values
    _check_whole(merged)
    if "name" in values:
        name_free(session, values["name"], customer.id)
    at = validation.instant(at, "at") or utcnow()
    before = snapshot(customer)
    for field, value in values.items():
        setattr(customer, field, value)
    customer.updated_at = at
    session.flush()
    after = snapshot(customer)
    changed = {k: {"from": before[k], "to": after[k]} for k in after if before[k] != after[k]}
    if changed:
        _revise(session, customer, at)
        audit.record(session, actor, "customer.update", customer, {"changes": changed})
    return customer


def set_status(
    session: Session,
    customer: Customer,
    status: CustomerStatus,
    at: datetime,
    actor: str,
    reason: str,
) -> None:
    """Record a status change (exit, suspension) as a new revision."""
    before = customer.status
    customer.status = status
    customer.updated_at = at
    if status == CustomerStatus.EXITED:
        customer.exited_at = at
    session.flush()
    _revise(session, customer, at)
    audit.record(
        session,
        actor,
        "customer.status",
        customer,
        {"from": before.value, "to": status.value, "reason": reason},
    )


@dataclass(frozen=True)
class CustomerFilter:
    status: CustomerStatus | None = None
    name_contains: str | None = None
    active_only: bool = False  # not exited (filings, the allocate form)
    order: str = "id"  # id | name


def list_customers(
    session: Session,
    flt: CustomerFilter = CustomerFilter(),
    scope: Scope = EVERYONE,
    window: Window = ALL,
) -> tuple[list[Customer], int]:
    """Customers matching `flt` that the scope may see: (rows, total)."""
    q = scope.restrict(select(Customer), Customer.id)
    if flt.status is not None:
        q = q.where(Customer.status == flt.status)
    if flt.active_only:
        q = q.where(Customer.status != CustomerStatus.EXITED)
    if flt.name_contains:
        q = q.where(Customer.name.contains(flt.name_contains, autoescape=True))  # % and _ literal
    q = q.order_by(Customer.name if flt.order == "name" else Customer.id)
    return fetch(session, q, window)
