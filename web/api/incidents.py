"""Clause 16 incidents in the JSON API: declare, log, freeze evidence, report, close, export."""

from __future__ import annotations

from flask import Response, current_app, jsonify

from ipam.abuse import incidents
from ipam.models import Incident

from ..access import READERS, STAFF, actor
from ..extensions import db
from ..messages import catalogue
from ..schemas.abuse import (
    ActionIn,
    CloseIn,
    ExportQuery,
    FreezeIn,
    IncidentDetail,
    IncidentIn,
    IncidentOut,
    IncidentQuery,
    ReportedIn,
)
from ..schemas.common import Page
from ..usecase import run
from .endpoint import endpoint
from .helpers import paged, window


def _detail(incident: Incident) -> dict:
    actions, evidence = incidents.incident_record(db.session, incident)
    return {
        **IncidentOut.model_validate(incident).model_dump(),
        "description": incident.description,
        "actions": actions,
        "evidence": [
            {
                "id": e.id, "report_id": e.report_id, "source": e.source, "sha256": e.sha256,
                "bytes": len(e.raw), "event_at": e.event_at, "frozen_at": e.frozen_at,
                "frozen_by": e.frozen_by,
            }
            for e in evidence
        ],
    }  # fmt: skip


@endpoint("GET", "/incidents", access=READERS, query=IncidentQuery, out=Page[IncidentOut])
def incidents_list(query: IncidentQuery):
    """Incidents, newest first"""
    rows, total = incidents.list_incidents(db.session, query.state, window(query))
    return paged(rows, total, query)


@endpoint("POST", "/incidents", access=STAFF, body=IncidentIn, out=IncidentDetail, status=201)
def incident_declare(body: IncidentIn):
    """Declare a major security incident; its reporting clock starts (2-24 hours)"""
    return run(
        lambda s: incidents.declare(
            s, title=body.title, category=body.category, hours=body.hours,
            description=body.description, case=body.case, report_ids=body.report_ids,
            actor=actor(),
        ),
        _detail,
    )  # fmt: skip


@endpoint("GET", "/incidents/<int:incident_id>", access=READERS, out=IncidentDetail)
def incident(incident_id):
    """An incident with its action log and frozen evidence"""
    return _detail(incidents.get_incident(db.session, incident_id))


@endpoint(
    "POST", "/incidents/<int:incident_id>/actions", access=STAFF, body=ActionIn,
    out=IncidentDetail, status=201,
)  # fmt: skip
def incident_log(incident_id, body: ActionIn):
    """An entry in the action log: a measure taken or a note"""
    run(lambda s: incidents.log_action(s, incident_id, body.kind, body.text, actor=actor()))
    return _detail(incidents.get_incident(db.session, incident_id))


@endpoint(
    "POST", "/incidents/<int:incident_id>/evidence", access=STAFF, body=FreezeIn,
    out=IncidentDetail, status=201,
)  # fmt: skip
def incident_freeze(incident_id, body: FreezeIn):
    """Freeze more reports as evidence"""
    run(lambda s: incidents.freeze(s, incident_id, body.report_ids, actor=actor()))
    return _detail(incidents.get_incident(db.session, incident_id))


@endpoint(
    "POST", "/incidents/<int:incident_id>/report", access=STAFF, body=ReportedIn,
    out=IncidentDetail,
)  # fmt: skip
def incident_reported(incident_id, body: ReportedIn):
    """The report to the authorities was made: to whom, and what"""
    return run(
        lambda s: incidents.mark_reported(
            s, incident_id, reported_to=body.reported_to, text=body.text, actor=actor()
        ),
        _detail,
    )


@endpoint(
    "POST", "/incidents/<int:incident_id>/close", access=STAFF, body=CloseIn, out=IncidentDetail
)
def incident_close(incident_id, body: CloseIn):
    """Close a reported incident"""
    return run(lambda s: incidents.close(s, incident_id, body.text, actor=actor()), _detail)


@endpoint(
    "GET", "/incidents/<int:incident_id>/export", access=READERS, query=ExportQuery,
    produces={"text/plain": "?format=text: the report as text"},
)  # fmt: skip
def incident_export(incident_id, query: ExportQuery):
    """The incident report: JSON with the evidence bytes, or ?format=text"""
    if query.reveal:  # the reveal is an audited write: it goes through the transaction
        reason = query.reason or ""
        data = run(lambda s: incidents.export(s, incident_id, reveal=reason, actor=actor()))
    else:
        data = incidents.export(db.session, incident_id)
    if query.format == "text":
        return Response(
            incidents.export_text(
                data, query.lang, current_app.config["IPAM_TIMEZONE"], catalogue(query.lang)
            ),
            mimetype="text/plain",
            headers={"Content-Disposition": f"attachment; filename=incident-{incident_id}.txt"},
        )
    response = jsonify(data)
    response.headers["Content-Disposition"] = f"attachment; filename=incident-{incident_id}.json"
    return response
