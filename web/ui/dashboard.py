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
from sqlalchemy import func, select

from ipam import (
    filings,
    pools,
    reclamation,
)
from ipam.models import (
    ChangeRequest,
    ChangeStatus,
    Customer,
)

from ..access import (
    ANY,
    PUBLIC,
    customer_scope,
)
from ..extensions import LANGUAGES, db
from .helpers import view


@view("/lang/<code>", access=PUBLIC)
def set_language(code):
    if code in LANGUAGES:
        session["lang"] = code
    target = request.args.get("next") or "/"
    return redirect(target if target.startswith("/") and not target.startswith("//") else "/")


@view("/", access=ANY)
def dashboard():
    scope = customer_scope()
    if scope is not None:
        return redirect(url_for("ui.customer", customer_id=scope))
    utils = [pools.utilization(db.session, p) for p in pools.list_pools(db.session)]
    pending = db.session.scalar(
        select(func.count()).where(ChangeRequest.status == ChangeStatus.PENDING)
    )
    quarantine = reclamation.quarantined(db.session)
    today = date.today()
    overdue = [
        (c, f)
        for c in db.session.execute(select(Customer).order_by(Customer.name)).scalars()
        if c.status.value != "exited"
        for f in filings.filings(c, today)
        if f.state in ("overdue", "missing", "due")
    ]
    return render_template(
        "dashboard.html", utils=utils, pending=pending, quarantine=quarantine, overdue=overdue
    )
