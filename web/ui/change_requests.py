"""Change requests (clause 18) in the UI: customers submit, engineers decide."""

from __future__ import annotations

from flask import (
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _

from ipam import (
    allocation,
    change_requests,
    customers,
    sites,
)
from ipam.errors import IpamError
from ipam.models import (
    ChangeRequest,
)

from ..access import (
    CUSTOMER,
    OWN,
    STAFF,
    actor,
    customer_scope,
    scope,
)
from ..extensions import db
from .helpers import attempt, form_errors, view


@view("/change-requests", access=OWN)
def change_requests_page():
    status = request.args.get("status") or None
    rows = change_requests.list_requests(db.session, status=status, scope=scope())[0]
    return render_template("change_requests.html", requests=rows, status=status)


CUSTOMER_CHANGE_FIELDS = (
    "name",
    "isp_licence_number",
    "isp_licence_scope",
    "isp_licence_expires",
    "icp_number",
    "connected_on",
    "psb_filing_number",
    "psb_filed_on",
    "domains",
)


# A site's filing data a customer may ask to change (addresses and URLs space-separated).
SITE_CHANGE_FIELDS = ("icp_number", "category", "approval_ref", "interactive", "addresses", "urls")


@view("/change-requests/new", methods=["GET", "POST"], access=frozenset({CUSTOMER}))
def change_request_new():
    c = customers.get_customer(db.session, customer_scope())
    error = None
    if request.method == "POST":
        f = request.form
        target = f.get("target", "customer")
        target_id = f.get("allocation") or None
        if target == "allocation":
            changes = {"purpose": f.get("purpose", "")}
        elif target == "site":
            target_id = f.get("site") or None
            changes = {
                k: f.get(f"site_{k}") for k in SITE_CHANGE_FIELDS if f.get(f"site_{k}", "").strip()
            }
        else:
            changes = {k: f.get(k) for k in CUSTOMER_CHANGE_FIELDS if f.get(k, "").strip()}
        response, error = attempt(
            lambda s: change_requests.submit(
                s,
                c.id,
                target,
                changes,
                reason=f.get("reason"),
                target_id=target_id,
                actor=actor(),
            ),
            _("Change request submitted; an engineer will decide."),
            url_for("ui.change_requests_page"),
        )
        if response:
            return response
    allocs = allocation.held_by(db.session, c.id)
    return render_template(
        "change_request_new.html",
        customer=c,
        allocations=allocs,
        sites=sites.current_sites(db.session, c.id),
        site_fields=SITE_CHANGE_FIELDS,
        fields=CUSTOMER_CHANGE_FIELDS,
        errors=form_errors(error),
        form=request.form,
    ), (error.status if error else 200)


def _request_page(req: ChangeRequest, error: IpamError | None = None):
    history = change_requests.list_requests(db.session, customer_id=req.customer_id)[0]
    return render_template(
        "change_request.html", req=req, history=history, errors=form_errors(error)
    ), (error.status if error else 200)


@view("/change-requests/<int:request_id>", access=OWN)
def change_request(request_id):
    return _request_page(change_requests.get_request(db.session, request_id))


@view("/change-requests/<int:request_id>/decide", methods=["POST"], access=STAFF)
def change_request_decide(request_id):
    req = change_requests.get_request(db.session, request_id)
    decide = (
        change_requests.approve
        if request.form.get("decision") == "approve"
        else change_requests.reject
    )
    response, error = attempt(
        lambda s: decide(s, req.id, actor=actor(), comment=request.form.get("comment")),
        _("Decision recorded."),
        url_for("ui.change_request", request_id=req.id),
    )
    return response or _request_page(req, error)
