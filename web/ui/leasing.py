"""Sublessees and subleases (clause 19) in the UI."""

from __future__ import annotations

from flask import (
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _

from ipam import (
    allocation,
    leasing,
)
from ipam.errors import NotFound
from ipam.models import (
    IdType,
    Sublease,
    SublesseeKind,
)

from ..access import (
    OWN_WRITE,
    actor,
    customer_scope,
    load,
)
from ..extensions import db
from .helpers import act, attempt, form_errors, view


def sublessee_form(form, *, partial: bool = False) -> dict:
    """The sublessee fields of a form (partial: only those sent); domains space-separated."""
    data = {k: form.get(k, "") for k in leasing.FIELDS if not partial or k in form}
    if "domains" in data:
        data["domains"] = [d for d in data["domains"].replace(",", " ").split() if d]
    return data


@view("/sublessees/new", methods=["GET", "POST"], access=OWN_WRITE)
def sublessee_new():
    scope = customer_scope()
    customer_ref = scope if scope is not None else request.values.get("customer")
    c = load("customer", customer_ref) if customer_ref not in (None, "") else None
    error = None
    if request.method == "POST":
        data = sublessee_form(request.form)
        if c is None:
            error = NotFound(_("choose a customer"), "customer")
        else:
            response, error = attempt(
                lambda s: leasing.register_sublessee(s, c.id, data, actor=actor()),
                _("Sublessee registered."),
                url_for("ui.customer", customer_id=c.id),
            )
            if response:
                return response
    return render_template(
        "sublessee_new.html",
        customer=c,
        errors=form_errors(error),
        form=request.form,
        kinds=list(SublesseeKind),
        id_types=list(IdType),
    ), (error.status if error else 200)


@view("/sublessees/<int:sublessee_id>/edit", methods=["GET", "POST"], access=OWN_WRITE)
def sublessee_edit(sublessee_id):
    """Keep a sublessee's details current (clause 19); every version stays answerable."""
    sub = leasing.get_sublessee(db.session, sublessee_id)
    error = None
    if request.method == "POST":
        data = sublessee_form(request.form, partial=True)
        response, error = attempt(
            lambda s: leasing.update_sublessee(s, sub.id, data, actor=actor()),
            _("Sublessee updated."),
            url_for("ui.customer", customer_id=sub.customer_id),
        )
        if response:
            return response
    current = {k: getattr(sub, k) for k in leasing.FIELDS}
    current["domains"] = " ".join(sub.domains or [])
    current["kind"], current["id_type"] = sub.kind.value, sub.id_type.value
    return render_template(
        "sublessee_new.html",
        customer=sub.customer,
        sublessee=sub,
        errors=form_errors(error),
        form=request.form if request.method == "POST" else current,
        kinds=list(SublesseeKind),
        id_types=list(IdType),
    ), (error.status if error else 200)


@view("/subleases/new", methods=["GET", "POST"], access=OWN_WRITE)
def sublease_new():
    scope = customer_scope()
    customer_ref = scope if scope is not None else request.values.get("customer")
    c = load("customer", customer_ref)
    error = None
    if request.method == "POST":
        f = request.form

        def lease(s):
            alloc = load("allocation", f.get("allocation"))
            sub = load("sublessee", f.get("sublessee"))
            return leasing.sublease(
                s,
                alloc,
                sub,
                prefix=f.get("prefix") or None,
                prefixlen=f.get("prefixlen") or None,
                actor=actor(),
            )

        response, error = attempt(
            lease, _("Sublease recorded."), url_for("ui.customer", customer_id=c.id)
        )
        if response:
            return response
    allocs = allocation.held_by(db.session, c.id)
    subs = leasing.list_sublessees(
        db.session, leasing.SublesseeFilter(customer_id=c.id, order="name")
    )[0]
    return render_template(
        "sublease_new.html",
        customer=c,
        allocations=allocs,
        sublessees=subs,
        errors=form_errors(error),
        form=request.form,
    ), (error.status if error else 200)


@view("/subleases/<int:sublease_id>/end", methods=["POST"], access=OWN_WRITE)
def sublease_end(sublease_id):
    lease = db.session.get(Sublease, sublease_id)
    if lease is None:
        raise NotFound("no sublease {sublease_id}", "sublease", sublease_id=sublease_id)
    owner = lease.allocation.customer_id
    return act(
        lambda s: leasing.end_sublease(s, sublease_id, actor=actor()),
        _("Sublease ended."),
        url_for("ui.customer", customer_id=owner),
    )
