"""The dashboard and the language switch."""

from __future__ import annotations

from datetime import date

from flask import (
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from ipam import (
    change_requests,
    customers,
    datacentres,
    filings,
    pools,
    probing,
    reclamation,
)
from ipam.abuse import cases, incidents
from ipam.db import utcnow

from ..access import (
    ANY,
    PUBLIC,
    customer_scope,
)
from ..extensions import LANGUAGES, db
from ..security import safe_next
from .helpers import view


@view("/lang/<code>", access=PUBLIC)
def set_language(code):
    if code in LANGUAGES:
        session["lang"] = code
    return redirect(safe_next(request.args.get("next")))


@view("/", access=ANY)
def dashboard():
    scope = customer_scope()
    if scope is not None:
        return redirect(url_for("ui.customer", customer_id=scope))
    utils = pools.utilization_all(db.session)
    pending = change_requests.count_pending(db.session)
    quarantine = reclamation.count_quarantined(db.session)
    today = date.today()
    overdue = [
        (c, f)
        for c in customers.list_customers(
            db.session, customers.CustomerFilter(active_only=True, order="name")
        )[0]
        for f in filings.filings(c, today)
        if f.state in ("overdue", "missing", "due")
    ]
    due, due_total = cases.due_soon(db.session, hours=DUE_HOURS)
    open_incidents = incidents.list_incidents(db.session, state="open")[0]
    return render_template(
        "dashboard.html",
        now=utcnow(),
        due=due,
        due_total=due_total,
        due_hours=DUE_HOURS,
        open_incidents=open_incidents,
        health=probing.health(db.session),
        # With a broker: each site's workers and waiting runs (embedded: none to show).
        sites=datacentres.health(db.session, current_app.config)
        if current_app.config.get("IPAM_BROKER_URL")
        else [],
        utils=utils,
        pending=pending,
        quarantine=quarantine,
        overdue=overdue[:OPEN_ITEMS],  # the first ones by name; the count says how many more
        overdue_total=len(overdue),
    )


OPEN_ITEMS = 20
DUE_HOURS = 48  # abuse cases whose answer falls due within this are listed
