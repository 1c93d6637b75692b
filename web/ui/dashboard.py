"""The dashboard and the language switch."""

from __future__ import annotations

from datetime import date

from flask import (
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from ipam import (
    change_requests,
    customers,
    filings,
    pools,
    reclamation,
)

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
    utils = [pools.utilization(db.session, p) for p in pools.list_pools(db.session)[0]]
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
    return render_template(
        "dashboard.html",
        utils=utils,
        pending=pending,
        quarantine=quarantine,
        overdue=overdue[:OPEN_ITEMS],  # the first ones by name; the count says how many more
        overdue_total=len(overdue),
    )


OPEN_ITEMS = 20
