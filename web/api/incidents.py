"""Clause 16 incidents in the JSON API: declare, log, freeze evidence, report, close, export."""

from __future__ import annotations

from flask import Response, jsonify, request
from sqlalchemy import select

from ipam.abuse import incidents
from ipam.errors import ValidationError
from ipam.models import Incident

from .. import serialize
from ..access import actor
from ..extensions import db
from ..usecase import run
from . import api, body, created, page

FIELDS = ("title", "category", "hours", "description", "case", "report_ids")


def _detail(incident: Incident) -> dict:
    actions, evidence = incidents.incident_record(db.session, incident)
    return {
        **serialize.incident(incident),
        "description": incident.description,
        "actions": [
            serialize.jsonable({"at": a.at, "actor": a.actor, "kind": a.kind, "text": a.text})
            for a in actions
        ],
        "evidence": [
            serialize.jsonable(
                {
                    "id": e.id,
                    "report_id": e.report_id,
                    "source": e.source,
                    "sha256": e.sha256,
                    "bytes": len(e.raw),
                    "event_at": e.event_at,
                    "frozen_at": e.frozen_at,
                    "frozen_by": e.frozen_by,
                }
            )
            for e in evidence
        ],
    }


@api.get("/incidents")
def incidents_list():
    q = select(Incident).order_by(Incident.id.desc())
    state = request.args.get("state")
    if state:
        if state not in ("open", "reported", "closed"):
            raise ValidationError(f"{state!r} is not open, reported or closed", "state")
        q = q.where(Incident.state == state)
    return jsonify(page(q, serialize.incident))


@api.post("/incidents")
def incident_declare():
    """{"title", "category", "hours" (2-24), "description", "case" (optional), "report_ids"}."""
    data = body()
    unknown = sorted(
        set(data) - {"title", "category", "hours", "description", "case", "report_ids"}
    )
    if unknown:
        raise ValidationError("is not a field of an incident", unknown[0])
    ids = data.get("report_ids") or []
    if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
        raise ValidationError("must be a list of report ids", "report_ids")
    return created(
        run(
            lambda s: incidents.declare(
                s,
                title=data.get("title"),
                category=data.get("category"),
                hours=data.get("hours", incidents.MAX_HOURS),
                description=data.get("description") or "",
                case=data.get("case"),
                report_ids=ids,
                actor=actor(),
            ),
            _detail,
        )
    )


@api.get("/incidents/<int:incident_id>")
def incident(incident_id):
    return jsonify(_detail(incidents.get_incident(db.session, incident_id)))


@api.post("/incidents/<int:incident_id>/actions")
def incident_log(incident_id):
    """An entry in the action log: {"kind": measure|note, "text": ...}."""
    data = body()
    run(
        lambda s: incidents.log_action(
            s, incident_id, str(data.get("kind") or ""), data.get("text"), actor=actor()
        )
    )
    return created(_detail(incidents.get_incident(db.session, incident_id)))


@api.post("/incidents/<int:incident_id>/evidence")
def incident_freeze(incident_id):
    """Freeze more reports as evidence: {"report_ids": [...]}."""
    data = body()
    ids = data.get("report_ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, int) for i in ids):
        raise ValidationError("must be a non-empty list of report ids", "report_ids")
    run(lambda s: incidents.freeze(s, incident_id, ids, actor=actor()))
    return created(_detail(incidents.get_incident(db.session, incident_id)))


@api.post("/incidents/<int:incident_id>/report")
def incident_reported(incident_id):
    """The report to the authorities was made: {"reported_to", "text"}."""
    data = body()
    return jsonify(
        run(
            lambda s: incidents.mark_reported(
                s,
                incident_id,
                reported_to=data.get("reported_to"),
                text=data.get("text"),
                actor=actor(),
            ),
            _detail,
        )
    )


@api.post("/incidents/<int:incident_id>/close")
def incident_close(incident_id):
    data = body()
    return jsonify(
        run(lambda s: incidents.close(s, incident_id, data.get("text"), actor=actor()), _detail)
    )


@api.get("/incidents/<int:incident_id>/export")
def incident_export(incident_id):
    """The incident report: JSON with the evidence bytes, or ?format=text."""
    data = incidents.export(db.session, incident_id)
    fmt = request.args.get("format", "json")
    if fmt == "text":
        return Response(
            incidents.export_text(data),
            mimetype="text/plain",
            headers={"Content-Disposition": f"attachment; filename=incident-{incident_id}.txt"},
        )
    if fmt != "json":
        raise ValidationError(f"{fmt!r} is not json or text", "format")
    response = jsonify(data)
    response.headers["Content-Disposition"] = f"attachment; filename=incident-{incident_id}.json"
    return response
