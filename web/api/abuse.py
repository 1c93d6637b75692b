"""The abuse desk in the JSON API: complaints in, cases out."""

from __future__ import annotations

from flask import jsonify, request
from sqlalchemy import select

from ipam.abuse import cases, ingest
from ipam.errors import ValidationError
from ipam.models import AbuseCase

from .. import serialize
from ..access import actor, customer_scope
from ..extensions import db
from ..usecase import run
from . import api, page

FORMATS = {
    "message/rfc822": None,  # ARF or X-ARF mail: detected
    "text/csv": "csv",
    "application/json": "xarf-json",
}


@api.post("/abuse/reports")
def abuse_report_add():
    """A complaint as it arrived: a mail (message/rfc822), XARF v4 JSON or a CSV batch."""
    ctype = (request.mimetype or "").lower()
    if ctype not in FORMATS:
        raise ValidationError(
            f"send one of {', '.join(FORMATS)} (got {ctype or 'nothing'})", "Content-Type"
        )
    raw = request.get_data(cache=False)
    result = run(lambda s: ingest.ingest(s, raw, actor=actor(), kind=FORMATS[ctype]))
    body = {
        "reports": [
            {
                "id": r.id,
                "prefix": r.prefix,
                "event_at": r.event_at.isoformat(),
                "category": r.category.value,
                "holding": r.holding,
            }
            for r in result.reports
        ],
        "duplicates": result.duplicates,
        "cases_opened": result.cases_opened,
        "rejected": [{"id": r.id, "field": r.field, "reason": r.reason} for r in result.rejected],
    }
    status = 201 if result.reports else (200 if result.duplicates else 422)
    return jsonify(body), status


@api.get("/abuse/cases")
def abuse_cases_list():
    q = select(AbuseCase).order_by(AbuseCase.id.desc())
    scope = customer_scope()
    if scope is not None:
        q = q.where(AbuseCase.customer_id == scope)
    if request.args.get("state"):
        q = q.where(AbuseCase.state == request.args["state"])
    return jsonify(page(q, serialize.abuse_case))


@api.get("/abuse/cases/<int:case_id>")
def abuse_case(case_id):
    return jsonify(serialize.abuse_case(cases.get_case(db.session, case_id)))
