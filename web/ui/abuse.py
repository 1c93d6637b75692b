"""Abuse cases in the UI: the list, a case with its evidence and history, its actions."""

from __future__ import annotations

from flask import render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from ipam.abuse import cases
from ipam.errors import IpamError
from ipam.models import AbuseCase, AbuseCaseEvent, AbuseReport, AbuseReportCase, Sanction

from ..access import actor, customer_scope
from ..extensions import db
from . import attempt, form_errors, ui


@ui.app_template_global()
def abuse_cases_of(customer_id: int):
    """A customer's cases, newest first (its page lists them)."""
    return (
        db.session.execute(
            select(AbuseCase)
            .where(AbuseCase.customer_id == customer_id)
            .order_by(AbuseCase.id.desc())
            .limit(50)
        )
        .scalars()
        .all()
    )


@ui.get("/abuse/cases")
def abuse_cases_page():
    q = select(AbuseCase).order_by(AbuseCase.updated_at.desc(), AbuseCase.id.desc())
    state = request.args.get("state", "")
    if state:
        q = q.where(AbuseCase.state == state)
    rows = db.session.execute(q.limit(200)).scalars().all()
    return render_template("abuse_cases.html", rows=rows, state=state)


def _case_page(case: AbuseCase, error: IpamError | None = None):
    reports = (
        db.session.execute(
            select(AbuseReport)
            .join(AbuseReportCase, AbuseReportCase.report_id == AbuseReport.id)
            .where(AbuseReportCase.case_id == case.id)
            .order_by(AbuseReport.event_at)
        )
        .scalars()
        .all()
    )
    events = (
        db.session.execute(
            select(AbuseCaseEvent)
            .where(AbuseCaseEvent.case_id == case.id)
            .order_by(AbuseCaseEvent.id)
        )
        .scalars()
        .all()
    )
    sanctions = (
        db.session.execute(
            select(Sanction).where(Sanction.customer_id == case.customer_id).order_by(Sanction.id)
        )
        .scalars()
        .all()
    )
    return render_template(
        "abuse_case.html",
        case=case,
        reports=reports,
        events=events,
        sanctions=sanctions,
        errors=form_errors(error),
        form=request.form,
        own=customer_scope() is not None,
    ), (error.status if error else 200)


@ui.get("/abuse/cases/<int:case_id>")
def abuse_case_page(case_id):
    return _case_page(cases.get_case(db.session, case_id))


@ui.post("/abuse/cases/<int:case_id>/action")
def abuse_case_action(case_id):
    """Staff: a transition, or proposing or confirming a sanction."""
    case = cases.get_case(db.session, case_id)
    form = request.form
    action = form.get("action", "")

    def change(s):
        if action == "sanction":
            return cases.propose_sanction(s, case.id, form.get("comment"), actor=actor())
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


@ui.post("/abuse/cases/<int:case_id>/answer")
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
