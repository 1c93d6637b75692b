"""Clause 18 change requests (ipam/change_requests.py)."""

import pytest

from ipam import allocation, change_requests
from ipam.errors import NotFound, StateConflict, ValidationError
from ipam.models import ChangeStatus
from tests import factories


def test_approval_applies_and_keeps_history(session):
    cust = factories.customer(session)
    req = change_requests.submit(
        session, cust, "customer", {"icp_number": "京ICP备1号"}, reason="new", actor="c"
    )
    assert cust.icp_number is None  # nothing changes before approval
    change_requests.approve(session, req.id, actor="e", comment="ok")
    assert req.status == ChangeStatus.APPROVED and cust.icp_number == "京ICP备1号"
    with pytest.raises(StateConflict):
        change_requests.reject(session, req.id, actor="e", comment="late")


def test_allocation_purpose_request(session):
    cust = factories.customer(session)
    pool = factories.pool(session)
    alloc = allocation.allocate(session, pool, cust, prefixlen=30, purpose="web", actor="t")
    req = change_requests.submit(
        session,
        cust,
        "allocation",
        {"purpose": "mail"},
        target_id=alloc.id,
        reason="moved",
        actor="c",
    )
    change_requests.approve(session, req, actor="e")
    assert alloc.purpose == "mail"
    other = factories.customer(session)
    with pytest.raises(NotFound):
        change_requests.submit(
            session,
            other,
            "allocation",
            {"purpose": "x"},
            target_id=alloc.id,
            reason="r",
            actor="c",
        )


@pytest.mark.parametrize(
    ("target", "changes", "field"),
    [
        ("customer", {}, "changes"),
        ("customer", {"uscc": "x"}, "uscc"),
        ("customer", {"psb_filed_on": "yesterday"}, "psb_filed_on"),
        ("customer", {"colour": "red"}, "colour"),
        ("planet", {"name": "x"}, "target"),
    ],
)
def test_bad_requests_are_refused_at_submission(session, unchanged, target, changes, field):
    cust = factories.customer(session)
    with unchanged(), pytest.raises(ValidationError) as err:
        change_requests.submit(session, cust, target, changes, reason="r", actor="c")
    assert err.value.field == field


def test_rejection_needs_a_comment(session, unchanged):
    cust = factories.customer(session)
    req = change_requests.submit(
        session, cust, "customer", {"name": "新名字有限公司"}, reason="renamed", actor="c"
    )
    with unchanged(), pytest.raises(ValidationError) as err:
        change_requests.reject(session, req.id, actor="e", comment=" ")
    assert err.value.field == "comment"
