"""Clause 18: usage and filing data change only through an approved change request.

A customer submits the changes it wants; they are validated at once (so a
request that could never apply is refused on submission), and applied by the
same functions an engineer would call directly when approved.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import audit, sites, validation
from .allocation import get_allocation, set_purpose
from .customers import _clean as clean_customer
from .customers import get_customer, name_free, update_customer
from .db import utcnow
from .errors import NotFound, StateConflict, ValidationError
from .listing import ALL, EVERYONE, Scope, Window, fetch
from .lookup import as_id
from .models import ChangeRequest, ChangeStatus

TARGETS = ("customer", "allocation", "site")
# A registered site's filing data (clause 18); its customer registers or closes it directly.
SITE_FIELDS = ("name", "domain", "urls", "icp_number", "category", "approval_ref",
               "interactive", "admin_accounts", "addresses")  # fmt: skip
ALLOCATION_FIELDS = ("purpose",)


def _check_changes(session: Session, customer, target: str, target_id, changes) -> int:
    """Validate the requested changes; return the target's id."""
    if not isinstance(changes, dict) or not changes:
        raise ValidationError("name at least one field to change", "changes")
    if target == "customer":
        if "uscc" in changes or "status" in changes:
            field = "uscc" if "uscc" in changes else "status"
            raise ValidationError("cannot be changed by request", field)
        values = clean_customer(changes, partial=True)
        if "name" in values:  # refused now, not only when an engineer approves it
            name_free(session, values["name"], customer.id)
        return customer.id
    if target == "site":
        site = sites.get_site(session, target_id or 0, "target_id")
        if site.customer_id != customer.id or site.valid_to is not None:
            raise NotFound(
                "no current site {target_id!r} of this customer", "target_id", target_id=target_id
            )
        unknown = set(changes) - set(SITE_FIELDS)
        if unknown:
            raise ValidationError("cannot be changed by request", sorted(unknown)[0])
        sites.check_changes(session, site, changes)
        return site.id
    alloc = get_allocation(session, target_id, "target_id")
    if alloc.customer_id != customer.id or alloc.valid_to is not None:
        raise NotFound(
            "no current allocation {target_id!r} of this customer", "target_id", target_id=target_id
        )
    unknown = set(changes) - set(ALLOCATION_FIELDS)
    if unknown:
        raise ValidationError(
            "only the purpose of an allocation can be changed", sorted(unknown)[0]
        )
    validation.optional(changes["purpose"], "purpose", 2000)
    return alloc.id


def submit(
    session: Session, customer, target, changes, *, reason, actor: str, target_id=None
) -> ChangeRequest:
    """Record a customer's request to change its filing data or an allocation's purpose."""
    customer = get_customer(session, customer)
    target = validation.required(target, "target", 32)
    if target not in TARGETS:
        raise ValidationError(
            "{target!r} is not one of: {choices}",
            "target",
            target=target,
            choices=", ".join(TARGETS),
        )
    reason = validation.required(reason, "reason", 2000)
    tid = _check_changes(session, customer, target, target_id, changes)
    req = ChangeRequest(
        customer_id=customer.id,
        target=target,
        target_id=tid,
        changes=audit.jsonable(changes),
        reason=reason,
        status=ChangeStatus.PENDING,
        submitted_by=actor,
        submitted_at=utcnow(),
    )
    session.add(req)
    session.flush()
    audit.record(
        session,
        actor,
        "change_request.submit",
        req,
        {"target": target, "target_id": tid, "changes": req.changes},
    )
    return req


def get_request(session: Session, ref, field: str = "change_request") -> ChangeRequest:
    if isinstance(ref, ChangeRequest):
        return ref
    req = session.get(ChangeRequest, as_id(ref)) if as_id(ref) is not None else None
    if req is None:
        raise NotFound("no change request {ref!r}", field, ref=ref)
    return req


def _pending(session: Session, ref) -> ChangeRequest:
    req = get_request(session, ref)
    if req.status != ChangeStatus.PENDING:
        raise StateConflict("was {status} already", "change_request", status=req.status)
    return req


def approve(session: Session, ref, *, actor: str, comment: str | None = None) -> ChangeRequest:
    """Apply the requested changes through the normal update functions and close the request."""
    req = _pending(session, ref)
    if req.target == "customer":
        update_customer(session, req.customer_id, dict(req.changes), actor=actor)
    elif req.target == "site":
        sites.update_site(session, req.target_id, dict(req.changes), actor=actor)
    else:
        set_purpose(session, req.target_id, req.changes.get("purpose"), actor=actor)
    return _decide(
        session, req, ChangeStatus.APPROVED, actor, validation.optional(comment, "comment", 2000)
    )


def reject(session: Session, ref, *, actor: str, comment) -> ChangeRequest:
    """Close the request unapplied; the customer is told why."""
    req = _pending(session, ref)
    return _decide(
        session, req, ChangeStatus.REJECTED, actor, validation.required(comment, "comment", 2000)
    )


def _decide(session, req: ChangeRequest, status, actor: str, comment) -> ChangeRequest:
    req.status = status
    req.decided_by = actor
    req.decided_at = utcnow()
    req.comment = comment
    session.flush()
    audit.record(session, actor, f"change_request.{status.value}", req, {"comment": comment})
    return req


def list_requests(
    session: Session,
    *,
    customer_id=None,
    status=None,
    scope: Scope = EVERYONE,
    window: Window = ALL,
) -> tuple[list[ChangeRequest], int]:
    """Change requests, newest first, of one customer or status if given: (rows, total)."""
    query = scope.restrict(select(ChangeRequest), ChangeRequest.customer_id)
    if customer_id is not None:
        query = query.where(ChangeRequest.customer_id == customer_id)
    if status:
        query = query.where(
            ChangeRequest.status == validation.choice(ChangeStatus, status, "status")
        )
    return fetch(session, query.order_by(ChangeRequest.id.desc()), window)


def count_pending(session: Session) -> int:
    """How many change requests wait for an engineer."""
    return session.scalar(select(func.count()).where(ChangeRequest.status == ChangeStatus.PENDING))
