"""Customers in the UI: the list, registration, the customer page, exit and reclamation."""

from __future__ import annotations

from datetime import date

from flask import (
    current_app,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _

from ipam import (
    allocation,
    change_requests,
    customers,
    filings,
    leasing,
    reclamation,
)
from ipam.errors import ValidationError
from ipam.listing import Window

from ..access import (
    OWN,
    READERS,
    STAFF,
    actor,
)
from ..extensions import db
from .helpers import attempt, form_errors, int_arg, page_of, view


@view("/customers", access=READERS)
def customers_page():
    rows, _total = customers.list_customers(db.session, customers.CustomerFilter(order="name"))
    return render_template("customers.html", customers=rows)


@view("/customers/new", methods=["GET", "POST"], access=STAFF)
def customer_new():
    error = None
    if request.method == "POST":
        f = request.form
        data = {
            k: f.get(k)
            for k in (
                "name",
                "uscc",
                "kind",
                "isp_licence_number",
                "icp_number",
                "connected_on",
                "psb_filing_number",
                "psb_filed_on",
            )
            if f.get(k)
        }
        if f.get("contact_name"):
            data["contacts"] = [
                {
                    "name": f.get("contact_name"),
                    "phone": f.get("contact_phone"),
                    "email": f.get("contact_email"),
                    "role": "abuse",
                }
            ]
        response, error = attempt(
            lambda s: customers.add_customer(s, data, actor=actor()),
            _("Customer registered."),
            url_for("ui.customers_page"),
        )
        if response:
            return response
    return render_template("customer_new.html", errors=form_errors(error), form=request.form), (
        error.status if error else 200
    )


@view("/customers/<int:customer_id>", access=OWN)
def customer(customer_id):
    c = customers.get_customer(db.session, customer_id)
    limit, offset = int_arg("limit", 100, 1, 1000), int_arg("offset", 0, 0, 2**31 - 1)
    allocs, total = allocation.list_allocations(  # one page: a customer may hold a million
        db.session,
        allocation.AllocationFilter(customer_id=c.id, current=None, order="current_first"),
        window=Window(limit, offset),
    )
    page = page_of(allocs, total, limit, offset)
    if page["next"] is not None:
        page["next"] = url_for("ui.customer", customer_id=c.id, limit=limit, offset=page["next"])
    subs, _total = leasing.list_sublessees(
        db.session, leasing.SublesseeFilter(customer_id=c.id, order="name")
    )
    leases = leasing.current_subleases(db.session, c.id, limit=LEASES_SHOWN + 1)
    requests_ = change_requests.list_requests(db.session, customer_id=c.id)[0]
    return render_template(
        "customer.html",
        customer=c,
        allocations=allocs,
        allocations_page=page,
        sublessees=subs,
        leases=leases[:LEASES_SHOWN],
        more_leases=len(leases) > LEASES_SHOWN,
        requests=requests_,
        filings=filings.filings(c, date.today()),
    )


LEASES_SHOWN = 100  # the rest: the subleases list, filtered to the customer


def _confirm_action(customer_id: int, template: str, change, done: str):
    c = customers.get_customer(db.session, customer_id)
    error = None
    if request.method == "POST":
        if request.form.get("confirm") != c.uscc:
            error = ValidationError(
                _("type the customer's code %(code)s to confirm", code=c.uscc), "confirm"
            )
        else:
            response, error = attempt(
                lambda s: change(s, c), done, url_for("ui.customer", customer_id=c.id)
            )
            if response:
                return response
    current = allocation.held_by(db.session, c.id)
    return render_template(
        template, customer=c, allocations=current, errors=form_errors(error), form=request.form
    ), (error.status if error else 200)


@view("/customers/<int:customer_id>/exit", methods=["GET", "POST"], access=STAFF)
def customer_exit(customer_id):
    days = current_app.config["IPAM_QUARANTINE_DAYS"]
    return _confirm_action(
        customer_id,
        "customer_exit.html",
        lambda s, c: reclamation.customer_exit(
            s,
            c,
            actor=actor(),
            quarantine_days=days,
            note=request.form.get("note") or "customer exited",
        ),
        _("The customer has exited; its addresses are in quarantine."),
    )


@view("/customers/<int:customer_id>/reclaim", methods=["GET", "POST"], access=STAFF)
def customer_reclaim(customer_id):
    days = current_app.config["IPAM_QUARANTINE_DAYS"]
    return _confirm_action(
        customer_id,
        "customer_reclaim.html",
        lambda s, c: reclamation.reclaim(
            s,
            c,
            reason=request.form.get("reason"),
            actor=actor(),
            quarantine_days=days,
            allocations=request.form.getlist("allocations") or None,
        ),
        _("Addresses reclaimed; they are in quarantine."),
    )


@view("/allocations/<int:allocation_id>/end", methods=["GET", "POST"], access=STAFF)
def allocation_end(allocation_id):
    a = allocation.get_allocation(db.session, allocation_id)
    error = None
    if request.method == "POST":
        days = current_app.config["IPAM_QUARANTINE_DAYS"]
        response, error = attempt(
            lambda s: allocation.end_allocation(
                s, a.id, actor=actor(), quarantine_days=days, note=request.form.get("note") or None
            ),
            _("Allocation ended."),
            url_for("ui.customer", customer_id=a.customer_id),
        )
        if response:
            return response
    return render_template("allocation_end.html", allocation=a, errors=form_errors(error)), (
        error.status if error else 200
    )
