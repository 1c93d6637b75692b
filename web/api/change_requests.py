"""Change requests (clause 18) in the JSON API: customers submit, engineers decide."""

from __future__ import annotations

from ipam import change_requests

from ..access import CUSTOMER, OWN, STAFF, actor, customer_scope, scope
from ..extensions import db
from ..schemas.common import Page
from ..schemas.ledger import ChangeRequestIn, ChangeRequestOut, ChangeRequestQuery, CommentIn
from ..usecase import run
from .endpoint import endpoint
from .helpers import paged, scoped_customer, window


@endpoint(
    "GET", "/change-requests", access=OWN, query=ChangeRequestQuery, out=Page[ChangeRequestOut]
)
def change_requests_list(query: ChangeRequestQuery):
    """Change requests"""
    rows, total = change_requests.list_requests(
        db.session, customer_id=scoped_customer(query.customer), status=query.status,
        scope=scope(), window=window(query),
    )  # fmt: skip
    return paged(rows, total, query)


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
