"""Pools, the address map and quarantine in the UI."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import (
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _

from ipam import (
    addressmap,
    allocation,
    customers,
    pools,
    reclamation,
)
from ipam.errors import IpamError
from ipam.listing import Window
from ipam.models import (
    CustomerStatus,
    Pool,
)

from .. import pictures
from ..access import (
    READERS,
    STAFF,
    actor,
)
from ..extensions import db
from ..usecase import run
from .helpers import act, form_errors, view

PICK_LIST = 500


@view("/pools", access=READERS)
def pools_page():
    all_pools = pools.list_pools(db.session)[0]
    children: dict[int | None, list[Pool]] = {}
    for p in all_pools:
        children.setdefault(p.parent_id, []).append(p)
    utils = {p.id: pools.utilization(db.session, p) for p in all_pools}
    return render_template("pools.html", children=children, utils=utils)


def _pool_page(p: Pool, error: IpamError | None = None):
    recent, _total = allocation.list_allocations(
        db.session,
        allocation.AllocationFilter(pool_id=p.id, order="recent"),
        window=Window(20, count=False),
    )
    active, total = customers.list_customers(  # a list to pick from while it is short
        db.session,
        customers.CustomerFilter(status=CustomerStatus.ACTIVE, order="name"),
        window=Window(PICK_LIST),
    )
    if total > PICK_LIST:
        active = None  # too many to list: the form takes a name or credit code
    return render_template(
        "pool.html",
        pool=p,
        util=pools.utilization(db.session, p),
        recent=recent,
        customers=active,
        errors=form_errors(error),
        form=request.form,
    ), (error.status if error else 200)


@view("/pools/<int:pool_id>", access=READERS)
def pool(pool_id):
    return _pool_page(pools.get_pool(db.session, pool_id))


@view("/pools/<int:pool_id>/history", access=READERS)
def pool_history(pool_id):
    """The pool's held share at the start of each of the last eleven months and now."""
    p = pools.get_pool(db.session, pool_id)
    zone = ZoneInfo(current_app.config["IPAM_TIMEZONE"])
    now = datetime.now(zone)
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    starts = []
    for back in range(11, 0, -1):
        month = first.month - back
        year = first.year + (month - 1) // 12
        starts.append(first.replace(year=year, month=(month - 1) % 12 + 1))
    instants = [*starts, now]
    points = pools.utilization_history(db.session, p, instants)
    return render_template(
        "pool_history.html", pool=p, points=points, picture=pictures.utilization_svg(points)
    )


@view("/pools/<int:pool_id>/allocate", methods=["POST"], access=STAFF)
def pool_allocate(pool_id):
    p = pools.get_pool(db.session, pool_id)
    form = request.form
    by_prefix = form.get("mode") == "prefix"

    def allocate(s):
        return allocation.allocate(
            s,
            p.id,
            form.get("customer"),
            prefix=form.get("prefix") if by_prefix else None,
            prefixlen=None if by_prefix else (form.get("prefixlen") or None),
            purpose=form.get("purpose", ""),
            actor=actor(),
        )

    try:
        allocated = run(allocate, lambda a: a.prefix)
    except IpamError as exc:
        return _pool_page(p, exc)
    flash(_("Allocated %(prefix)s.", prefix=allocated))
    return redirect(url_for("ui.pool", pool_id=p.id))


@view("/map", access=READERS)
def address_map():
    prefix = request.args.get("prefix", "")
    error, amap = None, None
    if prefix:
        try:
            amap = addressmap.address_map(db.session, prefix)
        except IpamError as exc:
            error = exc
    return render_template("map.html", prefix=prefix, amap=amap, errors=form_errors(error)), (
        error.status if error else 200
    )


@view("/quarantine", access=READERS)
def quarantine():
    return render_template("quarantine.html", rows=reclamation.quarantined(db.session))


@view("/quarantine/<int:quarantine_id>/release", methods=["POST"], access=STAFF)
def quarantine_release(quarantine_id):
    return act(
        lambda s: reclamation.release_quarantine(
            s,
            actor=actor(),
            quarantine_id=quarantine_id,
            early_reason=request.form.get("reason") or None,
        ),
        _("Released to the pool's free space."),
        url_for("ui.quarantine"),
    )
