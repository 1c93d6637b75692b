"""The abuse desk in the JSON API: complaints in, cases out."""

from __future__ import annotations

import json

from flask import Response, current_app, jsonify, request
from sqlalchemy import select

from ipam.abuse import cases, ingest, notify
from ipam.errors import NotFound, ValidationError
from ipam.models import AbuseCase, RejectedReport

from .. import mail, serialize
from ..access import actor, customer_scope
from ..extensions import db
from ..usecase import run
from . import api, body, created, page

FORMATS = {
    "message/rfc822": None,  # ARF or X-ARF mail: detected
    "text/csv": "csv",
    "application/json": "xarf-json",
}


@api.post("/abuse/reports")
def abuse_report_add():
    """A complaint: a mail (message/rfc822), XARF v4 or our own JSON object, or a CSV batch.

    Our JSON object is {"address", "time", "category", "description", "reporter"}.
    """
    ctype = (request.mimetype or "").lower()
    if ctype not in FORMATS:
        raise ValidationError(
            f"send one of {', '.join(FORMATS)} (got {ctype or 'nothing'})", "Content-Type"
        )
    raw = request.get_data(cache=False)
    form = _form(raw) if ctype == "application/json" else None
    if form is not None:
        result = run(
            lambda s: ingest.from_form(
                s, form, actor=actor(), policy=current_app.config["IPAM_ABUSE_POLICY"]
            )
        )
    else:
        result = run(
            lambda s: ingest.ingest(
                s,
                raw,
                actor=actor(),
                kind=FORMATS[ctype],
                policy=current_app.config["IPAM_ABUSE_POLICY"],
            )
        )
    out = {
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
    return jsonify(out), status


def _form(raw: bytes) -> dict | None:
    """Our own complaint object ({"address": ..., "time": ...}), or None (XARF v4, or junk)."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if isinstance(data, dict) and "Report" not in data and "address" in data:
        return data
    return None


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
    """The case with its reports, its history and its customer's sanctions."""
    case = cases.get_case(db.session, case_id)
    return jsonify(serialize.abuse_case_detail(case, *cases.case_record(db.session, case)))


@api.post("/abuse/cases/<int:case_id>/transition")
def abuse_case_transition(case_id):
    """{"action": notify|acknowledge|resolve|escalate, "comment": ...}; notify sends no mail."""
    data = body()
    return jsonify(
        run(
            lambda s: cases.transition(
                s, case_id, str(data.get("action") or ""), actor=actor(),
                comment=data.get("comment") or "",
            ),
            serialize.abuse_case,
        )
    )  # fmt: skip


@api.post("/abuse/cases/<int:case_id>/notify")
def abuse_case_notify(case_id):
    """Mail the case to the holder's abuse contact (IPAM_SMTP_HOST), then mark it notified."""
    data = body()
    return jsonify(
        run(
            lambda s: notify.notify(
                s, case_id, actor=actor(), sender=mail.sender(), send=mail.send,
                with_sublessee=bool(data.get("with_sublessee")),
            ),
            serialize.abuse_case,
        )
    )  # fmt: skip


@api.post("/abuse/cases/<int:case_id>/answer")
def abuse_case_answer(case_id):
    """The customer's side: {"status": acknowledged|answered|disputed, "answer": ...}."""
    data = body()
    return jsonify(
        run(
            lambda s: cases.customer_answer(
                s, case_id, str(data.get("status") or ""), data.get("answer"), actor=actor()
            ),
            serialize.abuse_case,
        )
    )


@api.post("/abuse/cases/<int:case_id>/sanctions")
def abuse_case_sanction(case_id):
    """Propose the ladder's next rung for the case's customer: {"reason": ...}."""
    data = body()
    return created(
        run(
            lambda s: cases.propose_sanction(
                s,
                case_id,
                data.get("reason"),
                actor=actor(),
                rungs=current_app.config["IPAM_SANCTION_LADDER"],
            ),  # fmt: skip
            serialize.sanction,
        )
    )


@api.post("/sanctions/<int:sanction_id>/confirm")
def sanction_confirm(sanction_id):
    """An engineer confirms a proposed sanction, which then takes effect."""
    return jsonify(
        run(lambda s: cases.confirm_sanction(s, sanction_id, actor=actor()), serialize.sanction)
    )


@api.get("/abuse/rejected")
def abuse_rejected_list():
    q = select(RejectedReport).order_by(RejectedReport.id.desc())
    status = request.args.get("status", "rejected")
    if status not in ("rejected", "accepted", "all"):
        raise ValidationError(f"{status!r} is not rejected, accepted or all", "status")
    if status != "all":
        q = q.where(RejectedReport.status == status)
    return jsonify(page(q, serialize.rejected_report))


@api.get("/abuse/rejected/<int:rejected_id>/raw")
def abuse_rejected_raw(rejected_id):
    """The rejected input, byte for byte."""
    row = db.session.get(RejectedReport, rejected_id)
    if row is None:
        raise NotFound(f"no rejected report {rejected_id}", "rejected")
    return Response(bytes(row.raw), mimetype="application/octet-stream")


@api.post("/abuse/rejected/<int:rejected_id>/retry")
def abuse_rejected_retry(rejected_id):
    """Run a rejected input again: {"format": arf|xarf-mail|xarf-json|csv|drop} or detected."""
    data = body()
    kind = data.get("format") or None
    if kind is not None and kind not in ingest.KINDS:
        raise ValidationError(f"{kind!r} is not one of {', '.join(ingest.KINDS)}", "format")
    result = run(
        lambda s: ingest.retry_rejected(
            s, rejected_id, actor=actor(), kind=kind, policy=current_app.config["IPAM_ABUSE_POLICY"]
        )
    )
    return jsonify(
        {
            "stored": result.stored,
            "duplicates": result.duplicates,
            "rejected": [
                {"id": r.id, "field": r.field, "reason": r.reason} for r in result.rejected
            ],
        }
    ), (200 if not result.rejected_count else 422)
