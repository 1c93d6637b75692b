"""Probe schedules, runs and findings in the UI (clause 19)."""

from __future__ import annotations

from flask import render_template, request, url_for
from flask_babel import gettext as _

from ipam import customers, findings, pools, probing
from ipam.errors import IpamError, ValidationError
from ipam.models import FindingKind

from ..access import (
    READERS,
    STAFF,
    actor,
)
from ..extensions import db
from ..scheduling import wake_scheduler
from . import ui
from .helpers import act, attempt, form_errors, int_arg, page_of, view

SCHEDULE_FORM = ("name", "pool", "customer", "cron", "methods", "tcp_ports", "dark_after")


def _schedule_data(form, *, edit: bool) -> dict:
    data = {k: form.get(k, "") for k in SCHEDULE_FORM if k in form}
    data["methods"] = form.getlist("methods")
    if edit:
        data["enabled"] = form.get("enabled") == "on"
        for key in ("pool", "customer"):
            data.pop(key, None)
    else:
        data["pool"] = form.get("pool") or None
        data["customer"] = form.get("customer") or None
    return data


def _probes_page(error: IpamError | None = None):
    runs, _total = probing.list_runs(db.session, limit=20)
    return render_template(
        "probes.html",
        schedules=probing.list_schedules(db.session)[0],
        runs=runs,
        pools=pools.list_pools(db.session)[0],
        customers=customers.list_customers(
            db.session, customers.CustomerFilter(active_only=True, order="name")
        )[0],
        methods=probing.METHODS,
        errors=form_errors(error),
        form=request.form,
    ), (error.status if error else 200)


@view("/probes", access=READERS)
def probes_page():
    return _probes_page()


@view("/probes", methods=["POST"], access=STAFF)
def probe_schedule_add():
    data = _schedule_data(request.form, edit=False)
    response, error = attempt(
        lambda s: probing.add_schedule(s, data, actor=actor()),
        _("Probe schedule added."),
        url_for("ui.probes_page"),
    )
    return response or _probes_page(error)


def _schedule_page(schedule, error: IpamError | None = None):
    runs, _total = probing.list_runs(db.session, schedule_id=schedule.id, limit=30)
    return render_template(
        "probe_schedule.html",
        schedule=schedule,
        runs=runs,
        methods=probing.METHODS,
        errors=form_errors(error),
        form=request.form,
    ), (error.status if error else 200)


@view("/probes/<int:schedule_id>", access=READERS)
def probe_schedule_page(schedule_id):
    return _schedule_page(probing.get_schedule(db.session, schedule_id))


@view("/probes/<int:schedule_id>", methods=["POST"], access=STAFF)
def probe_schedule_edit(schedule_id):
    schedule = probing.get_schedule(db.session, schedule_id)
    data = _schedule_data(request.form, edit=True)
    response, error = attempt(
        lambda s: probing.update_schedule(s, schedule.id, data, actor=actor()),
        _("Probe schedule saved."),
        url_for("ui.probe_schedule_page", schedule_id=schedule.id),
    )
    if error is not None:
        db.session.expire_all()
        schedule = probing.get_schedule(db.session, schedule_id)
    return response or _schedule_page(schedule, error)


@view("/probes/<int:schedule_id>/run", methods=["POST"], access=STAFF)
def probe_schedule_run(schedule_id):
    response = act(
        lambda s: probing.request_run(s, schedule_id, actor=actor()),
        _("Run queued: the scheduler starts it within seconds."),
        request.form.get("next") or url_for("ui.probe_schedule_page", schedule_id=schedule_id),
    )
    wake_scheduler()
    return response


@view("/probes/runs/<int:run_id>", access=READERS)
def probe_run_page(run_id):
    r = probing.get_run(db.session, run_id)
    obs = probing.run_observations(db.session, r.id, 1000, answered_first=True)
    raised = findings.raised_by_run(db.session, r)
    return render_template("probe_run.html", run=r, observations=obs, raised=raised)


@view("/findings", access=READERS)
def findings_page():
    args = request.args
    status = args.get("status") or "open"
    if status not in ("open", "resolved", "all"):
        raise ValidationError("{status!r} is not open, resolved or all", "status", status=status)
    limit, offset = int_arg("limit", 50, 1, 500), int_arg("offset", 0, 0, 2**31 - 1)
    customer_id = customers.get_customer(db.session, args["customer"]).id if args.get(
        "customer") else None  # fmt: skip
    pool_id = pools.get_pool(db.session, args["pool"]).id if args.get("pool") else None
    rows, total = findings.list_findings(
        db.session, status=None if status == "all" else status, kind=args.get("kind") or None,
        customer_id=customer_id, pool_id=pool_id, limit=limit, offset=offset,
    )  # fmt: skip
    listing = page_of(rows, total, limit, offset)
    if listing["next"] is not None:
        nxt = {**args.to_dict(), "offset": listing["next"]}
        listing["next"] = url_for("ui.findings_page", **nxt)
    return render_template(
        "findings.html",
        listing=listing,
        kinds=[k.value for k in FindingKind],
        counts=findings.open_counts(db.session),
        args=request.args,
        pools=pools.list_pools(db.session)[0],
    )


def _finding_page(f, error: IpamError | None = None):
    return render_template(
        "finding.html", finding=f, errors=form_errors(error), form=request.form
    ), (error.status if error else 200)


@view("/findings/<int:finding_id>", access=READERS)
def finding_page(finding_id):
    return _finding_page(findings.get_finding(db.session, finding_id))


@view("/findings/<int:finding_id>/resolve", methods=["POST"], access=STAFF)
def finding_resolve(finding_id):
    f = findings.get_finding(db.session, finding_id)
    response, error = attempt(
        lambda s: findings.resolve_finding(s, f.id, request.form.get("comment"), actor=actor()),
        _("Finding resolved."),
        url_for("ui.finding_page", finding_id=f.id),
    )
    return response or _finding_page(f, error)


@ui.app_template_global()
def open_findings(*, customer_id=None, pool_id=None, limit=20):
    """Open findings of one customer or pool, for their pages: (rows, total)."""
    rows, total = findings.list_findings(
        db.session, status="open", customer_id=customer_id, pool_id=pool_id, limit=limit
    )
    return rows, total
