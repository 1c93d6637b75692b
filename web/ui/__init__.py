"""The HTML UI: thin views that call one ipam/ function and render, with form errors inline."""

from __future__ import annotations

from datetime import date

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select

from ipam import (
    addressmap,
    allocation,
    change_requests,
    customers,
    filings,
    leasing,
    pools,
    reclamation,
    users,
)
from ipam.errors import IpamError, NotFound, ValidationError
from ipam.models import (
    Allocation,
    ChangeRequest,
    ChangeStatus,
    Customer,
    IdType,
    Pool,
    Role,
    Sublease,
    Sublessee,
    SublesseeKind,
)

from ..access import actor, customer_scope, load
from ..api import attribute
from ..extensions import LANGUAGES, db
from ..usecase import run

ui = Blueprint("ui", __name__)


def attempt(change, done_message: str, then_url: str):
    """Run a use case from a form: on success flash and redirect; on error return the error."""
    try:
        run(change)
    except IpamError as exc:
        return None, exc
    flash(done_message)
    return redirect(then_url), None


def act(change, done_message: str, back_url: str):
    """Run a one-button action: on success flash and go back; on error show why, with its status."""
    response, error = attempt(change, done_message, back_url)
    if error is None:
        return response
    return render_template(
        "error.html",
        status=error.status,
        code=error.code,
        message=error.message,
        field=error.field,
    ), error.status


def form_errors(exc: IpamError | None) -> dict:
    if exc is None:
        return {}
    return {exc.field or "_": exc.message}


@ui.get("/lang/<code>")
def set_language(code):
    if code in LANGUAGES:
        session["lang"] = code
    target = request.args.get("next") or "/"
    return redirect(target if target.startswith("/") and not target.startswith("//") else "/")


@ui.get("/")
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


# pools -----------------------------------------------------------------------
@ui.get("/pools")
def pools_page():
    all_pools = pools.list_pools(db.session)
    children: dict[int | None, list[Pool]] = {}
    for p in all_pools:
        children.setdefault(p.parent_id, []).append(p)
    utils = {p.id: pools.utilization(db.session, p) for p in all_pools}
    return render_template("pools.html", children=children, utils=utils)


def _pool_page(p: Pool, error: IpamError | None = None):
    recent = (
        db.session.execute(
            select(Allocation)
            .where(Allocation.pool_id == p.id, Allocation.valid_to.is_(None))
            .order_by(Allocation.id.desc())
            .limit(20)
        )
        .scalars()
        .all()
    )
    active = (
        db.session.execute(
            select(Customer).where(Customer.status == "active").order_by(Customer.name)
        )
        .scalars()
        .all()
    )
    return render_template(
        "pool.html",
        pool=p,
        util=pools.utilization(db.session, p),
        recent=recent,
        customers=active,
        errors=form_errors(error),
        form=request.form,
    ), (error.status if error else 200)


@ui.get("/pools/<int:pool_id>")
def pool(pool_id):
    return _pool_page(pools.get_pool(db.session, pool_id))


@ui.post("/pools/<int:pool_id>/allocate")
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


@ui.get("/map")
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


# customers -------------------------------------------------------------------------
@ui.get("/customers")
def customers_page():
    rows = db.session.execute(select(Customer).order_by(Customer.name)).scalars().all()
    return render_template("customers.html", customers=rows)


@ui.route("/customers/new", methods=["GET", "POST"])
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


@ui.get("/customers/<int:customer_id>")
def customer(customer_id):
    c = customers.get_customer(db.session, customer_id)
    allocs = (
        db.session.execute(
            select(Allocation)
            .where(Allocation.customer_id == c.id)
            .order_by(Allocation.valid_to.is_not(None), Allocation.family, Allocation.first)
        )
        .scalars()
        .all()
    )
    subs = (
        db.session.execute(
            select(Sublessee).where(Sublessee.customer_id == c.id).order_by(Sublessee.name)
        )
        .scalars()
        .all()
    )
    leases = leasing.current_subleases(db.session, c.id)
    requests_ = change_requests.list_requests(db.session, customer_id=c.id)
    return render_template(
        "customer.html",
        customer=c,
        allocations=allocs,
        sublessees=subs,
        leases=leases,
        requests=requests_,
        filings=filings.filings(c, date.today()),
    )


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
    current = (
        db.session.execute(
            select(Allocation).where(Allocation.customer_id == c.id, Allocation.valid_to.is_(None))
        )
        .scalars()
        .all()
    )
    return render_template(
        template, customer=c, allocations=current, errors=form_errors(error), form=request.form
    ), (error.status if error else 200)


@ui.route("/customers/<int:customer_id>/exit", methods=["GET", "POST"])
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


@ui.route("/customers/<int:customer_id>/reclaim", methods=["GET", "POST"])
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


@ui.route("/allocations/<int:allocation_id>/end", methods=["GET", "POST"])
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


# sublessees and subleases (clause 19) ---------------------------------------------------
def sublessee_form(form, *, partial: bool = False) -> dict:
    """The sublessee fields of a form (partial: only those sent); domains space-separated."""
    data = {k: form.get(k, "") for k in leasing.FIELDS if not partial or k in form}
    if "domains" in data:
        data["domains"] = [d for d in data["domains"].replace(",", " ").split() if d]
    return data


@ui.route("/sublessees/new", methods=["GET", "POST"])
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


@ui.route("/sublessees/<int:sublessee_id>/edit", methods=["GET", "POST"])
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


@ui.route("/subleases/new", methods=["GET", "POST"])
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
    allocs = (
        db.session.execute(
            select(Allocation).where(Allocation.customer_id == c.id, Allocation.valid_to.is_(None))
        )
        .scalars()
        .all()
    )
    subs = (
        db.session.execute(
            select(Sublessee).where(Sublessee.customer_id == c.id).order_by(Sublessee.name)
        )
        .scalars()
        .all()
    )
    return render_template(
        "sublease_new.html",
        customer=c,
        allocations=allocs,
        sublessees=subs,
        errors=form_errors(error),
        form=request.form,
    ), (error.status if error else 200)


@ui.post("/subleases/<int:sublease_id>/end")
def sublease_end(sublease_id):
    lease = db.session.get(Sublease, sublease_id)
    if lease is None:
        raise NotFound(f"no sublease {sublease_id}", "sublease")
    owner = lease.allocation.customer_id
    return act(
        lambda s: leasing.end_sublease(s, sublease_id, actor=actor()),
        _("Sublease ended."),
        url_for("ui.customer", customer_id=owner),
    )


# change requests (clause 18) ---------------------------------------------------------
@ui.get("/change-requests")
def change_requests_page():
    status = request.args.get("status") or None
    rows = change_requests.list_requests(db.session, customer_id=customer_scope(), status=status)
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


@ui.route("/change-requests/new", methods=["GET", "POST"])
def change_request_new():
    c = customers.get_customer(db.session, customer_scope())
    error = None
    if request.method == "POST":
        f = request.form
        target = f.get("target", "customer")
        if target == "allocation":
            changes = {"purpose": f.get("purpose", "")}
        else:
            changes = {k: f.get(k) for k in CUSTOMER_CHANGE_FIELDS if f.get(k, "").strip()}
        response, error = attempt(
            lambda s: change_requests.submit(
                s,
                c.id,
                target,
                changes,
                reason=f.get("reason"),
                target_id=f.get("allocation") or None,
                actor=actor(),
            ),
            _("Change request submitted; an engineer will decide."),
            url_for("ui.change_requests_page"),
        )
        if response:
            return response
    allocs = (
        db.session.execute(
            select(Allocation).where(Allocation.customer_id == c.id, Allocation.valid_to.is_(None))
        )
        .scalars()
        .all()
    )
    return render_template(
        "change_request_new.html",
        customer=c,
        allocations=allocs,
        fields=CUSTOMER_CHANGE_FIELDS,
        errors=form_errors(error),
        form=request.form,
    ), (error.status if error else 200)


def _request_page(req: ChangeRequest, error: IpamError | None = None):
    history = change_requests.list_requests(db.session, customer_id=req.customer_id)
    return render_template(
        "change_request.html", req=req, history=history, errors=form_errors(error)
    ), (error.status if error else 200)


@ui.get("/change-requests/<int:request_id>")
def change_request(request_id):
    return _request_page(change_requests.get_request(db.session, request_id))


@ui.post("/change-requests/<int:request_id>/decide")
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


# quarantine, attribution -----------------------------------------------------------
@ui.get("/quarantine")
def quarantine():
    return render_template("quarantine.html", rows=reclamation.quarantined(db.session))


@ui.post("/quarantine/<int:quarantine_id>/release")
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


@ui.get("/attribution")
def attribution_page():
    address = request.args.get("address", "").strip()
    at = request.args.get("at", "").strip()
    result, error = None, None
    if address:
        try:
            at_value = at or None
            if at and len(at) == 16 and "T" in at:  # from <input type=datetime-local>: Beijing time
                at_value = at + ":00+08:00"
            result = attribute(address, at_value, False, None)
        except IpamError as exc:
            error = exc
    return render_template(
        "attribution.html", address=address, at=at, result=result, errors=form_errors(error)
    ), (error.status if error else 200)


# tokens and users --------------------------------------------------------------------
def _tokens_page(secret: str | None = None, error: IpamError | None = None):
    return render_template(
        "tokens.html",
        tokens=users.tokens_of(db.session, current_user),
        secret=secret,
        errors=form_errors(error),
    ), (error.status if error else 200)


@ui.get("/tokens")
def tokens():
    return _tokens_page()


@ui.post("/tokens")
def token_issue():
    try:
        secret = run(
            lambda s: users.issue_token(
                s, current_user.id, request.form.get("name"), actor=actor()
            ),
            lambda pair: pair[1],
        )
    except IpamError as exc:
        return _tokens_page(error=exc)
    return _tokens_page(secret)


@ui.post("/tokens/<int:token_id>/revoke")
def token_revoke(token_id):
    return act(
        lambda s: users.revoke_token(s, token_id, actor=actor()),
        _("Token revoked."),
        url_for("ui.tokens"),
    )


@ui.route("/users", methods=["GET", "POST"])
def users_page():
    error = None
    if request.method == "POST":
        f = request.form
        response, error = attempt(
            lambda s: users.create_user(
                s,
                f.get("username"),
                f.get("password"),
                f.get("role"),
                customer=f.get("customer") or None,
                actor=actor(),
            ),
            _("User created."),
            url_for("ui.users_page"),
        )
        if response:
            return response
    all_customers = db.session.execute(select(Customer).order_by(Customer.name)).scalars().all()
    return render_template(
        "users.html",
        users=users.list_users(db.session),
        roles=list(Role),
        customers=all_customers,
        errors=form_errors(error),
        form=request.form,
    ), (error.status if error else 200)


@ui.post("/users/<int:user_id>")
def user_update(user_id):
    """Admin: disable or re-enable a login, or set a new password."""
    f = request.form

    def change(s):
        user = users.get_user(s, user_id)
        if f.get("password"):
            users.set_password(s, user, f.get("password"), actor=actor())
        if "active" in f:
            users.set_active(s, user, f.get("active") == "1", actor=actor())
        return user

    return act(change, _("User updated."), url_for("ui.users_page"))


@ui.route("/account", methods=["GET", "POST"])
def account():
    """Change your own password."""
    error = None
    if request.method == "POST":
        f = request.form
        response, error = attempt(
            lambda s: users.change_own_password(
                s, current_user.id, f.get("current_password"), f.get("password"), actor=actor()
            ),
            _("Password changed."),
            url_for("ui.account"),
        )
        if response:
            return response
    return render_template("account.html", errors=form_errors(error)), (
        error.status if error else 200
    )


from . import abuse as _abuse  # noqa: E402,F401  (registers the abuse pages on `ui`)
from . import incidents as _incidents  # noqa: E402,F401  (registers the incident pages on `ui`)
from . import probes as _probes  # noqa: E402,F401  (registers the probe pages on `ui`)
