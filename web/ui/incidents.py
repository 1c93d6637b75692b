"""Clause 16 incidents in the UI: the list with its clocks, declaring, an incident's page."""

from __future__ import annotations

import json

from flask import Response, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ipam.abuse import incidents
from ipam.db import utcnow
from ipam.errors import IpamError, ValidationError
from ipam.models import AbuseCategory

from ..access import (
    READERS,
    STAFF,
    actor,
)
from ..extensions import db
from ..messages import catalogue, language
from ..usecase import run
from .helpers import attempt, form_errors, view


@view("/incidents", access=READERS)
def incidents_page(error: IpamError | None = None):
    return render_template(
        "incidents.html",
        rows=incidents.list_incidents(db.session)[0],
        categories=list(AbuseCategory),
        now=utcnow(),
        errors=form_errors(error),
        form=request.form or request.args,
    ), (error.status if error else 200)


@view("/incidents", methods=["POST"], access=STAFF)
def incident_declare():
    """Declare an incident, directly or from a case (the case page's form)."""
    form = request.form
    made: list = []

    def change(s):
        made.append(
            incidents.declare(
                s,
                title=form.get("title"),
                category=form.get("category"),
                hours=form.get("hours") or incidents.MAX_HOURS,
                description=form.get("description") or "",
                case=form.get("case") or None,
                actor=actor(),
            )
        )

    response, error = attempt(change, _("Incident declared."), url_for("ui.incidents_page"))
    if error is not None:
        return incidents_page(error)
    return redirect(url_for("ui.incident_page", incident_id=made[0].id))


def _incident_page(incident_id: int, error: IpamError | None = None):
    incident = incidents.get_incident(db.session, incident_id)
    actions, evidence = incidents.incident_record(db.session, incident)
    return render_template(
        "incident.html",
        incident=incident,
        actions=actions,
        evidence=evidence,
        now=utcnow(),
        errors=form_errors(error),
        form=request.form or request.args,
    ), (error.status if error else 200)


@view("/incidents/<int:incident_id>", access=READERS)
def incident_page(incident_id):
    return _incident_page(incident_id)


@view("/incidents/<int:incident_id>", methods=["POST"], access=STAFF)
def incident_action(incident_id):
    """Staff: log a measure or note, freeze reports, record the report, close."""
    form = request.form
    action = form.get("action", "")

    def change(s):
        if action in incidents.ACTION_KINDS:
            return incidents.log_action(s, incident_id, action, form.get("text"), actor=actor())
        if action == "freeze":
            raw = str(form.get("report_ids") or "").replace(",", " ").split()
            if not raw or not all(x.isdigit() for x in raw):
                raise ValidationError("give report numbers, separated by spaces", "report_ids")
            return incidents.freeze(s, incident_id, [int(x) for x in raw], actor=actor())
        if action == "report":
            return incidents.mark_reported(
                s,
                incident_id,
                reported_to=form.get("reported_to"),
                text=form.get("text"),
                actor=actor(),
            )
        if action == "close":
            return incidents.close(s, incident_id, form.get("text"), actor=actor())
        raise ValidationError("{action!r} is not an incident action", "action", action=action)

    response, error = attempt(
        change, _("Incident updated."), url_for("ui.incident_page", incident_id=incident_id)
    )
    if error is not None:
        db.session.expire_all()
    return response or _incident_page(incident_id, error)


@view("/incidents/<int:incident_id>/export", access=READERS)
def incident_export(incident_id):
    """The incident report to hand over: plain text, or JSON with the evidence bytes.

    Holders' ID numbers and phones are masked unless `reveal` is asked with a
    reason (audited); a refused reason shows the incident page with the error.
    """
    if request.args.get("reveal"):
        try:
            data = run(
                lambda s: incidents.export(
                    s, incident_id, reveal=request.args.get("reason", ""), actor=actor()
                )
            )
        except IpamError as error:
            db.session.expire_all()
            return _incident_page(incident_id, error)
    else:
        data = incidents.export(db.session, incident_id)
    if request.args.get("format") == "json":
        body, mimetype, ext = (
            json.dumps(data, ensure_ascii=False, indent=2),
            "application/json",
            "json",
        )
    else:
        lang = language()
        zone = current_app.config["IPAM_TIMEZONE"]
        text = incidents.export_text(data, lang, zone, words=catalogue(lang))
        body, mimetype, ext = text, "text/plain", "txt"
    return Response(
        body,
        mimetype=mimetype,
        headers={"Content-Disposition": f"attachment; filename=incident-{incident_id}.{ext}"},
    )
