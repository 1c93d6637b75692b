"""Abuse cases in the UI: the list, a case with its evidence and history, its actions."""

from __future__ import annotations

from flask import Response, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ipam import validation
from ipam.abuse import cases, incidents, ingest, notices, notify
from ipam.errors import IpamError, NotFound, ValidationError
from ipam.listing import Window
from ipam.models import (
    AbuseCase,
    AbuseCategory,
    CaseState,
    RejectedReport,
)

from .. import mail, pictures
from ..access import (
    CUSTOMER,
    OWN,
    READERS,
    STAFF,
    actor,
    customer_scope,
)
from ..extensions import db
from ..messages import language
from ..usecase import run
from . import ui
from .helpers import attempt, form_errors, int_arg, page_of, view


@ui.app_template_global()
def abuse_cases_of(customer_id: int):
    """A customer's cases, newest first (its page lists them)."""
    return cases.list_cases(db.session, customer_id=customer_id, window=Window(50))[0]


WEEKS = 12  # the weekly picture's span


@view("/abuse/cases", access=READERS)
def abuse_cases_page():
    state = request.args.get("state", "")
    if state:
        state = validation.choice(CaseState, state, "state")
    mine = bool(request.args.get("mine"))
    rows, _total = cases.list_cases(
        db.session, state=state or None, order="updated", window=Window(200),
        owner=current_user.username if mine else None,
    )  # fmt: skip
    weeks = cases.opened_per_week(db.session, WEEKS, current_app.config["IPAM_TIMEZONE"])
    seen = sorted({cat for _, counts in weeks for cat in counts})
    return render_template(
        "abuse_cases.html", rows=rows, state=state, weeks=weeks, categories=seen, mine=mine,
        picture=pictures.weekly_bars_svg(weeks, seen),
    )  # fmt: skip


def _case_page(case: AbuseCase, error: IpamError | None = None):
    reports, events, sanctions = cases.case_record(db.session, case)
    incident_rows = incidents.incidents_of_case(db.session, case.id)
    return render_template(
        "abuse_case.html",
        case=case,
        reports=reports,
        events=events,
        sanctions=sanctions,
        incidents=incident_rows,
        actions=cases.allowed_actions(case),
        templates=list(notices.TEMPLATES),
        lang=language(),
        categories=list(AbuseCategory),
        errors=form_errors(error),
        form=request.form,
        own=customer_scope() is not None,
    ), (error.status if error else 200)


@view("/abuse/cases/<int:case_id>", access=OWN)
def abuse_case_page(case_id):
    return _case_page(cases.get_case(db.session, case_id))


@view("/abuse/cases/<int:case_id>/action", methods=["POST"], access=STAFF)
def abuse_case_action(case_id):
    """Staff: a transition, or proposing or confirming a sanction."""
    case = cases.get_case(db.session, case_id)
    form = request.form
    action = form.get("action", "")

    def change(s):
        if action == "mail":
            return notify.notify(
                s,
                case.id,
                actor=actor(),
                sender=mail.sender(),
                send=mail.send,
                with_sublessee=bool(form.get("with_sublessee")),
                template=form.get("template") or None,
                note=form.get("note", ""),
                zone=current_app.config["IPAM_TIMEZONE"],
            )
        if action in ("take", "release", "assign"):
            owner = {"take": current_user.username, "release": None}.get(action, form.get("owner"))
            return cases.assign(s, case.id, owner, actor=actor())
        if action == "sanction":
            return cases.propose_sanction(
                s, case.id, form.get("comment"), actor=actor(),
                rungs=current_app.config["IPAM_SANCTION_LADDER"],
            )  # fmt: skip
        if action == "confirm":
            return cases.confirm_sanction(s, form.get("sanction", ""), actor=actor())
        return cases.transition(s, case.id, action, actor=actor(), comment=form.get("comment"))

    response, error = attempt(
        change, _("Case updated."), url_for("ui.abuse_case_page", case_id=case.id)
    )
    if error is not None:
        db.session.expire_all()
        case = cases.get_case(db.session, case_id)
    return response or _case_page(case, error)


@view("/abuse/cases/<int:case_id>/answer", methods=["POST"], access=frozenset({CUSTOMER}))
def abuse_case_answer(case_id):
    """The customer's side: acknowledge, answer or dispute."""
    case = cases.get_case(db.session, case_id)
    form = request.form
    response, error = attempt(
        lambda s: cases.customer_answer(
            s, case.id, form.get("customer_status", ""), form.get("answer"), actor=actor()
        ),
        _("Your answer is recorded."),
        url_for("ui.abuse_case_page", case_id=case.id),
    )
    if error is not None:
        db.session.expire_all()
        case = cases.get_case(db.session, case_id)
    return response or _case_page(case, error)


@view("/abuse/reports/new", access=STAFF)
def abuse_report_form(error: IpamError | None = None):
    return render_template(
        "abuse_report_form.html",
        categories=list(AbuseCategory),
        errors=form_errors(error),
        form=request.form,
    ), (error.status if error else 200)


@view("/abuse/reports/new", methods=["POST"], access=STAFF)
def abuse_report_submit():
    """A complaint typed in (by phone, a letter): attributed at its time like any other."""
    data = {k: request.form.get(k, "") for k in ingest.FORM_FIELDS}
    try:
        result = run(
            lambda s: ingest.from_form(
                s, data, actor=actor(), policy=current_app.config["IPAM_ABUSE_POLICY"]
            )
        )
    except IpamError as exc:
        return abuse_report_form(exc)
    if result.duplicates:
        flash(_("This complaint is already recorded."))
        return redirect(url_for("ui.abuse_cases_page"))
    (report,) = result.reports
    case_id = cases.case_of_report(db.session, report.id)
    if case_id is None:
        flash(_("Report %(id)s kept: the address was %(holding)s at that time.",
                id=report.id, holding=_(report.holding)))  # fmt: skip
        return redirect(url_for("ui.abuse_cases_page"))
    flash(_("Report %(id)s recorded on this case.", id=report.id))
    return redirect(url_for("ui.abuse_case_page", case_id=case_id))


@view("/abuse/unattributed", access=READERS)
def abuse_unattributed_page():
    """Reports on space nobody held at the time: they opened no case, they are found here."""
    holding = request.args.get("holding") or None
    limit, offset = int_arg("limit", 100, 1, 500), int_arg("offset", 0, 0, 2**31 - 1)
    rows, total = ingest.list_unattributed(
        db.session, holding=holding, window=Window(limit, offset)
    )
    listing = page_of(rows, total, limit, offset)
    if listing["next"] is not None:
        listing["next"] = url_for(
            "ui.abuse_unattributed_page", **{**request.args.to_dict(), "offset": listing["next"]}
        )
    names, names_total = ingest.list_rejected(db.session, field="domain", window=Window(100))
    return render_template(
        "abuse_unattributed.html", listing=listing, holding=holding, names=names,
        names_total=names_total,
    )  # fmt: skip


@view("/abuse/rejected", access=READERS)
def abuse_rejected_page(error: IpamError | None = None, status: int = 200):
    rows, _total = ingest.list_rejected(db.session, status=None, window=Window(200))
    return render_template(
        "abuse_rejected.html", rows=rows, kinds=ingest.KINDS, errors=form_errors(error)
    ), status


@view("/abuse/rejected/<int:rejected_id>/raw", access=READERS)
def abuse_rejected_raw(rejected_id):
    """The input byte for byte, as text/plain (shown, never run)."""
    row = db.session.get(RejectedReport, rejected_id)
    if row is None:
        raise NotFound("no rejected report {rejected_id}", "rejected", rejected_id=rejected_id)
    return Response(
        bytes(row.raw),
        mimetype="text/plain",
        headers={"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"},
    )


@view("/abuse/rejected/<int:rejected_id>/retry", methods=["POST"], access=STAFF)
def abuse_rejected_retry(rejected_id):
    """Run a rejected input again, as detected or with the format chosen."""
    kind = request.form.get("format") or None
    try:
        if kind is not None and kind not in ingest.KINDS:
            raise ValidationError(
                "{kind!r} is not one of {choices}",
                "format",
                kind=kind,
                choices=", ".join(ingest.KINDS),
            )
        result = run(
            lambda s: ingest.retry_rejected(
                s,
                rejected_id,
                actor=actor(),
                kind=kind,
                policy=current_app.config["IPAM_ABUSE_POLICY"],
            )
        )
    except IpamError as exc:
        return abuse_rejected_page(exc, exc.status)
    if result.rejected_count:
        flash(_("Still refused: %(reason)s", reason=result.rejected[0].reason))
    else:
        flash(_("Accepted: %(n)s report(s).", n=result.stored))
    return redirect(url_for("ui.abuse_rejected_page"))
