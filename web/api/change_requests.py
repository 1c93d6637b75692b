"""Change requests (clause 18) in the JSON API: customers submit, engineers decide."""

from __future__ import annotations

from sqlalchemy import select

from ipam import change_requests
from ipam.models import ChangeRequest

from ..access import CUSTOMER, OWN, STAFF, actor, customer_scope
from ..extensions import db
from ..schemas.common import Page
from ..schemas.ledger import ChangeRequestIn, ChangeRequestOut, ChangeRequestQuery, CommentIn
from ..usecase import run
from .endpoint import endpoint
from .helpers import page, scoped_customer


@endpoint(
    "GET", "/change-requests", access=OWN, query=ChangeRequestQuery, out=Page[ChangeRequestOut]
)
def change_requests_list(query: ChangeRequestQuery):
    """Change requests"""
    statement = select(ChangeRequest).order_by(ChangeRequest.id.desc())
    cust = scoped_customer(query.customer)
    if cust is not None:
        statement = statement.where(ChangeRequest.customer_id == cust)
    if query.status:
        statement = statement.where(ChangeRequest.status == query.status)
    return page(statement, query)


@endpoint(
    "POST", "/change-requests", access=frozenset({CUSTOMER}), body=ChangeRequestIn,
    out=ChangeRequestOut, status=201,
)  # fmt: skip
def change_request_add(body: ChangeRequestIn):
    """Submit a change to your filing data, a sublessee or an allocation's purpose"""
    cust = customer_scope()
    return run(
        lambda s: change_requests.submit(
            s, cust, body.target, body.changes, reason=body.reason, target_id=body.target_id,
            actor=actor(),
        )
    )  # fmt: skip


@endpoint("GET", "/change-requests/<int:request_id>", access=OWN, out=ChangeRequestOut)
def change_request(request_id):
    """A change request"""
    return change_requests.get_request(db.session, request_id)


@endpoint(
    "POST", "/change-requests/<int:request_id>/approve", access=STAFF, body=CommentIn,
    out=ChangeRequestOut,
)  # fmt: skip
def change_request_approve(request_id, body: CommentIn):
    """Approve a change request: the change is applied"""
    return run(
        lambda s: change_requests.approve(s, request_id, actor=actor(), comment=body.comment)
    )


@endpoint(
    "POST", "/change-requests/<int:request_id>/reject", access=STAFF, body=CommentIn,
    out=ChangeRequestOut,
)  # fmt: skip
def change_request_reject(request_id, body: CommentIn):
    """Reject a change request (a comment is required)"""
    return run(lambda s: change_requests.reject(s, request_id, actor=actor(), comment=body.comment))
