"""The JSON API at /api/v1: parse, call one ipam/ function, serialise.

Every failure answers {"error": {"code", "message", "field"}} (web/errors.py);
access and customer scoping are applied before any view runs (web/access.py).
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify, request, url_for
from sqlalchemy import func, select

from ipam import (
    addressmap,
    allocation,
    attribution,
    change_requests,
    customers,
    leasing,
    pools,
    reclamation,
    users,
)
from ipam.addresses import parse_address, to_bytes
from ipam.errors import NotFound, ValidationError
from ipam.models import (
    Allocation,
    ChangeRequest,
    ChangeStatus,
    Customer,
    CustomerStatus,
    Pool,
    Sublease,
    Sublessee,
)
from ipam.validation import choice

from .. import serialize
from ..access import actor, customer_scope, load
from ..extensions import db
from ..usecase import run

api = Blueprint("api", __name__)


# helpers --------------------------------------------------------------------
def body() -> dict:
    """The request's JSON object; anything else is a 400 naming what was wrong."""
    data = request.get_json(silent=True)
    if data is None and request.content_length:
        abort(400, description="the body is not valid JSON (send Content-Type: application/json)")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        abort(400, description="the body must be a JSON object")
    return data


def int_arg(name: str, default: int, low: int, high: int | None = None) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError(f"{raw!r} is not a whole number", name) from None
    if value < low or (high is not None and value > high):
        upper = f" and {high}" if high is not None else ""
        raise ValidationError(f"must be between {low}{upper}" if high else f"must be ≥ {low}", name)
    return value


def bool_arg(name: str, default: bool | None) -> bool | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes"):
        return True
    if raw.lower() in ("0", "false", "no"):
        return False
    if raw.lower() == "all":
        return None
    raise ValidationError(f"{raw!r} is not true, false or all", name)


def page(query, shape) -> dict:
    """One page: ?limit= (1-500, default 50) and ?offset=, with the total and a next link."""
    limit = int_arg("limit", 50, 1, 500)
    offset = int_arg("offset", 0, 0)
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = db.session.execute(query.limit(limit).offset(offset)).scalars().all()
    nxt = None
    if offset + limit < total:
        args = {**request.args.to_dict(), "offset": offset + limit, "limit": limit}
        nxt = url_for(request.endpoint, **(request.view_args or {}), **args)
    return {
        "items": [shape(r) for r in rows],
        "total": total,
        "limit": limit,
        "offset": offset,
        "next": nxt,
    }


def created(data: dict):
    return jsonify(data), 201


def scoped_customer(ref=None) -> int | None:
    """The customer a list or a new object is for: a customer user's own, else the one named."""
    scope = customer_scope()
    if scope is not None:
        if ref not in (None, "") and load("customer", ref).id != scope:
            raise NotFound(f"no customer {ref!r}", "customer")
        return scope
    if ref in (None, ""):
        return None
    return customers.get_customer(db.session, ref).id


def quarantine_days(data: dict):
    value = data.get("quarantine_days", current_app.config["IPAM_QUARANTINE_DAYS"])
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"{value!r} is not a number of days (0 or more)", "quarantine_days")
    return value


# who am I, tokens, users ---------------------------------------------------------
@api.get("/me")
def me():
    from flask_login import current_user

    return jsonify(serialize.user(current_user))


@api.get("/tokens")
def tokens():
    from flask_login import current_user

    return jsonify(
        {"items": [serialize.token(t) for t in users.tokens_of(db.session, current_user)]}
    )


@api.post("/tokens")
def token_issue():
    from flask_login import current_user

    data = body()

    def issue(s):
        return users.issue_token(s, current_user.id, data.get("name"), actor=actor())

    return created(run(issue, lambda pair: {**serialize.token(pair[0]), "token": pair[1]}))


@api.delete("/tokens/<int:token_id>")
def token_revoke(token_id):
    return jsonify(run(lambda s: users.revoke_token(s, token_id, actor=actor()), serialize.token))


@api.get("/users")
def users_list():
    return jsonify({"items": [serialize.user(u) for u in users.list_users(db.session)]})


@api.post("/users")
def user_add():
    data = body()
    return created(
        run(
            lambda s: users.create_user(
                s,
                data.get("username"),
                data.get("password"),
                data.get("role"),
                customer=data.get("customer"),
                actor=actor(),
            ),
            serialize.user,
        )
    )


@api.patch("/users/<int:user_id>")
def user_update(user_id):
    data = body()

    def change(s):
        user = users.get_user(s, user_id)
        if "password" in data:
            users.set_password(s, user, data["password"], actor=actor())
        if "active" in data:
            if not isinstance(data["active"], bool):
                raise ValidationError("must be true or false", "active")
            users.set_active(s, user, data["active"], actor=actor())
        return user

    return jsonify(run(change, serialize.user))


# pools -----------------------------------------------------------------------
@api.get("/pools")
def pools_list():
    query = select(Pool).order_by(Pool.family, Pool.first)
    family = request.args.get("family")
    if family:
        if family not in ("4", "6"):
            raise ValidationError(f"{family!r} is not 4 or 6", "family")
        query = query.where(Pool.family == int(family))
    return jsonify(page(query, serialize.pool))


@api.post("/pools")
def pool_add():
    data = body()
    return created(
        run(
            lambda s: pools.add_pool(
                s,
                data.get("prefix"),
                data.get("name"),
                parent=data.get("parent"),
                description=data.get("description") or "",
                actor=actor(),
            ),
            serialize.pool,
        )
    )


@api.get("/pools/<int:pool_id>")
def pool(pool_id):
    p = pools.get_pool(db.session, pool_id)
    return jsonify(serialize.pool(p, pools.utilization(db.session, p)))


# customers -------------------------------------------------------------------
@api.get("/customers")
def customers_list():
    query = select(Customer).order_by(Customer.id)
    if customer_scope() is not None:
        query = query.where(Customer.id == customer_scope())
    if request.args.get("status"):
        query = query.where(
            Customer.status == choice(CustomerStatus, request.args["status"], "status")
        )
    if request.args.get("q"):
        query = query.where(Customer.name.contains(request.args["q"]))
    return jsonify(page(query, serialize.customer))


@api.post("/customers")
def customer_add():
    data = body()
    return created(
        run(lambda s: customers.add_customer(s, data, actor=actor()), serialize.customer)
    )


@api.get("/customers/<int:customer_id>")
def customer(customer_id):
    return jsonify(serialize.customer(customers.get_customer(db.session, customer_id)))


@api.patch("/customers/<int:customer_id>")
def customer_update(customer_id):
    data = body()
    return jsonify(
        run(
            lambda s: customers.update_customer(s, customer_id, data, actor=actor()),
            serialize.customer,
        )
    )


@api.post("/customers/<int:customer_id>/exit")
def customer_exit(customer_id):
    data = body()

    def leave(s):
        return reclamation.customer_exit(
            s,
            customer_id,
            actor=actor(),
            quarantine_days=quarantine_days(data),
            note=data.get("note") or "customer exited",
        )

    return jsonify(run(leave, lambda allocs: {"ended": [serialize.allocation(a) for a in allocs]}))


@api.post("/customers/<int:customer_id>/reclaim")
def customer_reclaim(customer_id):
    data = body()

    def take_back(s):
        return reclamation.reclaim(
            s,
            customer_id,
            reason=data.get("reason"),
            actor=actor(),
            allocations=data.get("allocations"),
            quarantine_days=quarantine_days(data),
        )

    return jsonify(
        run(take_back, lambda allocs: {"ended": [serialize.allocation(a) for a in allocs]})
    )


# allocations -----------------------------------------------------------------
@api.get("/allocations")
def allocations_list():
    query = select(Allocation).order_by(Allocation.family, Allocation.first, Allocation.id)
    cust = scoped_customer(request.args.get("customer"))
    if cust is not None:
        query = query.where(Allocation.customer_id == cust)
    if request.args.get("pool"):
        query = query.where(
            Allocation.pool_id == pools.get_pool(db.session, request.args["pool"]).id
        )
    current = bool_arg("current", True)
    if current is not None:
        query = query.where(
            Allocation.valid_to.is_(None) if current else Allocation.valid_to.isnot(None)
        )
    if request.args.get("contains"):
        a = parse_address(request.args["contains"], "contains")
        key = to_bytes(a.first)
        query = query.where(
            Allocation.family == a.family, Allocation.first <= key, Allocation.last >= key
        )
    return jsonify(page(query, serialize.allocation))


@api.post("/allocations")
def allocation_add():
    data = body()

    def allocate(s):
        return allocation.allocate(
            s,
            data.get("pool"),
            data.get("customer"),
            prefix=data.get("prefix"),
            prefixlen=data.get("prefixlen"),
            purpose=data.get("purpose") or "",
            actor=actor(),
        )

    return created(run(allocate, serialize.allocation))


@api.get("/allocations/<int:allocation_id>")
def allocation_get(allocation_id):
    return jsonify(serialize.allocation(allocation.get_allocation(db.session, allocation_id)))


@api.post("/allocations/<int:allocation_id>/end")
def allocation_end(allocation_id):
    data = body()

    def end(s):
        return allocation.end_allocation(
            s,
            allocation_id,
            actor=actor(),
            note=data.get("note"),
            quarantine_days=quarantine_days(data),
        )

    return jsonify(run(end, serialize.allocation))


# sublessees and subleases ----------------------------------------------------------
@api.get("/sublessees")
def sublessees_list():
    query = select(Sublessee).order_by(Sublessee.id)
    cust = scoped_customer(request.args.get("customer"))
    if cust is not None:
        query = query.where(Sublessee.customer_id == cust)
    return jsonify(page(query, serialize.sublessee))


@api.post("/sublessees")
def sublessee_add():
    data = body()
    cust = scoped_customer(data.pop("customer", None))
    if cust is None:
        raise ValidationError("is required", "customer")
    return created(
        run(
            lambda s: leasing.register_sublessee(s, cust, data, actor=actor()),
            serialize.sublessee,
        )
    )


@api.get("/sublessees/<int:sublessee_id>")
def sublessee(sublessee_id):
    return jsonify(serialize.sublessee(leasing.get_sublessee(db.session, sublessee_id)))


@api.patch("/sublessees/<int:sublessee_id>")
def sublessee_update(sublessee_id):
    data = body()
    return jsonify(
        run(
            lambda s: leasing.update_sublessee(s, sublessee_id, data, actor=actor()),
            serialize.sublessee,
        )
    )


@api.get("/subleases")
def subleases_list():
    query = (
        select(Sublease)
        .join(Allocation, Allocation.id == Sublease.allocation_id)
        .order_by(Sublease.family, Sublease.first, Sublease.id)
    )
    cust = scoped_customer(request.args.get("customer"))
    if cust is not None:
        query = query.where(Allocation.customer_id == cust)
    if request.args.get("sublessee"):
        query = query.where(
            Sublease.sublessee_id == load("sublessee", request.args["sublessee"]).id
        )
    current = bool_arg("current", True)
    if current is not None:
        query = query.where(
            Sublease.valid_to.is_(None) if current else Sublease.valid_to.isnot(None)
        )
    return jsonify(page(query, serialize.sublease))


@api.post("/subleases")
def sublease_add():
    data = body()

    def lease(s):
        alloc = load("allocation", data.get("allocation"))
        sub = load("sublessee", data.get("sublessee"))
        return leasing.sublease(
            s,
            alloc,
            sub,
            prefix=data.get("prefix"),
            prefixlen=data.get("prefixlen"),
            actor=actor(),
        )

    return created(run(lease, serialize.sublease))


@api.post("/subleases/<int:sublease_id>/end")
def sublease_end(sublease_id):
    data = body()
    return jsonify(
        run(
            lambda s: leasing.end_sublease(s, sublease_id, actor=actor(), note=data.get("note")),
            serialize.sublease,
        )
    )


# change requests (clause 18) --------------------------------------------------------
@api.get("/change-requests")
def change_requests_list():
    query = select(ChangeRequest).order_by(ChangeRequest.id.desc())
    cust = scoped_customer(request.args.get("customer"))
    if cust is not None:
        query = query.where(ChangeRequest.customer_id == cust)
    if request.args.get("status"):
        query = query.where(
            ChangeRequest.status == choice(ChangeStatus, request.args["status"], "status")
        )
    return jsonify(page(query, serialize.change_request))


@api.post("/change-requests")
def change_request_add():
    data = body()
    cust = customer_scope()

    def submit(s):
        return change_requests.submit(
            s,
            cust,
            data.get("target"),
            data.get("changes"),
            reason=data.get("reason"),
            target_id=data.get("target_id"),
            actor=actor(),
        )

    return created(run(submit, serialize.change_request))


@api.get("/change-requests/<int:request_id>")
def change_request(request_id):
    return jsonify(serialize.change_request(change_requests.get_request(db.session, request_id)))


@api.post("/change-requests/<int:request_id>/approve")
def change_request_approve(request_id):
    data = body()
    return jsonify(
        run(
            lambda s: change_requests.approve(
                s, request_id, actor=actor(), comment=data.get("comment")
            ),
            serialize.change_request,
        )
    )


@api.post("/change-requests/<int:request_id>/reject")
def change_request_reject(request_id):
    data = body()
    return jsonify(
        run(
            lambda s: change_requests.reject(
                s, request_id, actor=actor(), comment=data.get("comment")
            ),
            serialize.change_request,
        )
    )


# quarantine ------------------------------------------------------------------
@api.get("/quarantine")
def quarantine_list():
    return jsonify(
        {"items": [serialize.quarantine(q) for q in reclamation.quarantined(db.session)]}
    )


@api.post("/quarantine/<int:quarantine_id>/release")
def quarantine_release(quarantine_id):
    data = body()

    def release(s):
        return reclamation.release_quarantine(
            s, actor=actor(), quarantine_id=quarantine_id, early_reason=data.get("reason")
        )

    return jsonify(run(release, lambda qs: {"released": [serialize.quarantine(q) for q in qs]}))


# attribution -------------------------------------------------------------------
def attribute(address, at, reveal: bool, reason):
    """Who held `address` at `at`; customer users get answers about their own holdings only."""
    if reveal:
        if customer_scope() is not None:
            raise ValidationError("customer users cannot reveal personal data", "reveal")
        result = run(lambda s: attribution.reveal(s, address, at, actor=actor(), reason=reason))
    else:
        result = attribution.attribution(db.session, address, at).masked()
    scope = customer_scope()
    if scope is not None and (result.customer is None or result.customer.get("id") != scope):
        raise NotFound("no holding of yours at that address and time", "address")
    return result


@api.get("/attribution")
def attribution_get():
    if not request.args.get("address"):
        raise ValidationError("is required", "address")
    reveal = bool_arg("reveal", False)
    result = attribute(
        request.args["address"], request.args.get("at") or None, reveal, request.args.get("reason")
    )
    return jsonify(result.as_dict())


@api.get("/map")
def address_map():
    """The address map of ?prefix=: per cell, how many addresses are in each state."""
    amap = addressmap.address_map(db.session, request.args.get("prefix") or "")
    return jsonify(
        {
            "prefix": str(amap.block),
            "cell_prefixlen": amap.cell_prefixlen,
            "totals": amap.totals(),
            "cells": [
                {
                    "prefix": str(c.block),
                    "state": c.state,
                    "allocated": c.allocated,
                    "subleased": c.subleased,
                    "quarantined": c.quarantined,
                }
                for c in amap.cells
            ],
        }
    )


@api.get("/openapi.json")
def openapi():
    from .spec import spec

    return jsonify(spec(current_app))


@api.get("/docs")
def docs():
    from flask import render_template

    from .spec import spec

    return render_template("api_docs.html", spec=spec(current_app))


from . import abuse as _abuse  # noqa: E402,F401  (registers the abuse routes on `api`)
from . import incidents as _incidents  # noqa: E402,F401  (registers the incident routes on `api`)
from . import probes as _probes  # noqa: E402,F401  (registers the probe routes on `api`)
