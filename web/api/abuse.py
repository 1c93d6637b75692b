"""The abuse desk in the JSON API: complaints in, cases out."""

from __future__ import annotations

import json

from flask import Response, current_app, request

from ipam.abuse import cases, ingest, notify
from ipam.errors import NotFound, ValidationError
from ipam.models import RejectedReport

from .. import mail
from ..access import CUSTOMER, OWN, READERS, STAFF, actor, scope
from ..extensions import db
from ..schemas.abuse import (
    AnswerIn,
    CaseDetail,
    CaseOut,
    CaseQuery,
    ComplaintIn,
    IntakeOut,
    NotifyIn,
    OwnerIn,
    RejectedOut,
    RejectedQuery,
    ReportOut,
    RetryIn,
    RetryOut,
    SanctionIn,
    SanctionOut,
    TransitionIn,
    UnattributedQuery,
)
from ..schemas.common import Error, Page
from ..schemas.jobs import JobOut
from ..usecase import run
from .endpoint import endpoint, parse_body
from .helpers import paged, policy, window
from .jobs import accept, wants_async

FORMATS = {
    "message/rfc822": None,  # ARF or X-ARF mail: detected
    "text/csv": "csv",
    "application/json": "xarf-json",
}


@endpoint(
    "POST", "/abuse/reports", access=STAFF, out=IntakeOut, status=201,
    answers={
        200: (IntakeOut, "every record was known already"),
        202: (JobOut, "a large batch (or Prefer: respond-async): a job to poll"),
        422: (IntakeOut | Error, "nothing stored: all refused (kept as rejected input)"),
    },
    consumes={
        "message/rfc822": "an ARF or X-ARF mail, as it came",
        "text/csv": "address,time,category,description,reporter",
        "application/json": "XARF v4, or our own object: address, time, category, "
        "description, reporter",
    },
)  # fmt: skip
def abuse_report_add():
    """A complaint: a mail, XARF v4 or our own JSON object, or a CSV batch

    Answers 201 when a report was stored, 200 when all were known already, 422
    when everything was refused (kept in the rejected store).
    """
    ctype = (request.mimetype or "").lower()
    if ctype not in FORMATS:
        raise ValidationError(
            "send one of {choices} (got {ctype})",
            "Content-Type",
            choices=", ".join(FORMATS),
            ctype=ctype or "nothing",
        )
    raw = request.get_data(cache=True)
    if len(raw) > current_app.config["IPAM_ASYNC_BYTES"] or wants_async():
        # A large batch is a job: 202 now, ingested by a worker (or this process) apart.
        args = {"kind": FORMATS[ctype], "actor": actor()}
        return accept("ingest_complaints", run_by=actor(), args=args, payload=raw)
    if ctype == "application/json" and _is_form(raw):
        form = parse_body(ComplaintIn).model_dump(exclude_unset=True)
        result = run(lambda s: ingest.from_form(s, form, actor=actor(), policy=policy()))
    else:
        result = run(
            lambda s: ingest.ingest(s, raw, actor=actor(), kind=FORMATS[ctype], policy=policy())
        )
    out = IntakeOut(
        reports=[
            {
                "id": r.id,
                "prefix": r.prefix,
                "event_at": r.event_at.isoformat(),
                "category": r.category.value,
                "holding": r.holding,
            }
            for r in result.reports
        ],
        duplicates=result.duplicates,
        cases_opened=result.cases_opened,
        rejected=[{"id": r.id, "field": r.field, "reason": r.reason} for r in result.rejected],
    )
    status = 201 if result.reports else (200 if result.duplicates else 422)
    return Response(out.model_dump_json(), status=status, mimetype="application/json")


def _is_form(raw: bytes) -> bool:
    """Our own complaint object ({"address": ..., "time": ...}), not XARF v4 or junk."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return False
    return isinstance(data, dict) and "Report" not in data and "address" in data


@endpoint("GET", "/abuse/cases", access=OWN, query=CaseQuery, out=Page[CaseOut])
def abuse_cases_list(query: CaseQuery):
    """Abuse cases, newest first (customers: their own)"""
    rows, total = cases.list_cases(
        db.session, state=query.state, scope=scope(), window=window(query)
    )
    return paged(rows, total, query)


@endpoint("GET", "/abuse/cases/<int:case_id>", access=OWN, out=CaseDetail)
def abuse_case(case_id):
    """The case with its reports, its history and its customer's sanctions"""
    case = cases.get_case(db.session, case_id)
    reports, events, sanctions = cases.case_record(db.session, case)
    return {
        **CaseOut.model_validate(case).model_dump(),
        "reports": reports,
        "events": [
            {
                "at": e.at, "actor": e.actor, "action": e.action, "from": e.from_state,
                "to": e.to_state, "comment": e.comment,
            }
            for e in events
        ],
        "sanctions": sanctions,
    }  # fmt: skip


@endpoint(
    "POST", "/abuse/cases/<int:case_id>/transition", access=STAFF, body=TransitionIn, out=CaseOut
)
def abuse_case_transition(case_id, body: TransitionIn):
    """Move a case: notify (no mail), acknowledge, resolve or escalate"""
    return run(
        lambda s: cases.transition(
            s, case_id, body.action, actor=actor(), comment=body.comment or ""
        )
    )


@endpoint("POST", "/abuse/cases/<int:case_id>/notify", access=STAFF, body=NotifyIn, out=CaseOut)
def abuse_case_notify(case_id, body: NotifyIn):
    """Mail the case to the holder's abuse contact (IPAM_SMTP_HOST), then mark it notified"""
    return run(
        lambda s: notify.notify(
            s, case_id, actor=actor(), sender=mail.sender(), send=mail.send,
            with_sublessee=body.with_sublessee, template=body.template, note=body.note or "",
            zone=current_app.config["IPAM_TIMEZONE"],
        )
    )  # fmt: skip


@endpoint("POST", "/abuse/cases/<int:case_id>/owner", access=STAFF, body=OwnerIn, out=CaseOut)
def abuse_case_owner(case_id, body: OwnerIn):
    """Give the case to a staff user to work (null: to nobody)"""
    return run(lambda s: cases.assign(s, case_id, body.owner, actor=actor()))


@endpoint(
    "POST", "/abuse/cases/<int:case_id>/answer", access=frozenset({CUSTOMER}), body=AnswerIn,
    out=CaseOut,
)  # fmt: skip
def abuse_case_answer(case_id, body: AnswerIn):
    """The customer's side: acknowledged, answered or disputed, with an answer"""
    return run(lambda s: cases.customer_answer(s, case_id, body.status, body.answer, actor=actor()))


@endpoint(
    "POST", "/abuse/cases/<int:case_id>/sanctions", access=STAFF, body=SanctionIn,
    out=SanctionOut, status=201,
)  # fmt: skip
def abuse_case_sanction(case_id, body: SanctionIn):
    """Propose the ladder's next rung for the case's customer"""
    from flask import current_app

    return run(
        lambda s: cases.propose_sanction(
            s, case_id, body.reason, actor=actor(),
            rungs=current_app.config["IPAM_SANCTION_LADDER"],
        )
    )  # fmt: skip


@endpoint("POST", "/sanctions/<int:sanction_id>/confirm", access=STAFF, out=SanctionOut)
def sanction_confirm(sanction_id):
    """An engineer confirms a proposed sanction, which then takes effect"""
    return run(lambda s: cases.confirm_sanction(s, sanction_id, actor=actor()))


@endpoint(
    "GET", "/abuse/unattributed", access=READERS, query=UnattributedQuery, out=Page[ReportOut]
)
def abuse_unattributed_list(query: UnattributedQuery):
    """Reports on space nobody held at the time (no case): unallocated or quarantined"""
    rows, total = ingest.list_unattributed(db.session, holding=query.holding, window=window(query))
    return paged(rows, total, query)


@endpoint("GET", "/abuse/rejected", access=READERS, query=RejectedQuery, out=Page[RejectedOut])
def abuse_rejected_list(query: RejectedQuery):
    """Input the intake could not read"""
    status = None if query.status == "all" else query.status
    rows, total = ingest.list_rejected(
        db.session, status=status, window=window(query), field=query.field
    )
    return paged(rows, total, query)


@endpoint(
    "GET", "/abuse/rejected/<int:rejected_id>/raw", access=READERS,
    produces={"application/octet-stream": "the input, byte for byte"},
)  # fmt: skip
def abuse_rejected_raw(rejected_id):
    """The rejected input, byte for byte"""
    row = db.session.get(RejectedReport, rejected_id)
    if row is None:
        raise NotFound("no rejected report {rejected_id}", "rejected", rejected_id=rejected_id)
    return Response(bytes(row.raw), mimetype="application/octet-stream")


@endpoint(
    "POST", "/abuse/rejected/<int:rejected_id>/retry", access=STAFF, body=RetryIn, out=RetryOut,
    answers={422: (RetryOut | Error, "still refused: the input keeps its row, with the reason")},
)  # fmt: skip
def abuse_rejected_retry(rejected_id, body: RetryIn):
    """Run a rejected input again, in a format named or detected (422 if still refused)"""
    result = run(
        lambda s: ingest.retry_rejected(
            s, rejected_id, actor=actor(), kind=body.format, policy=policy()
        )
    )
    out = RetryOut(
        stored=result.stored,
        duplicates=result.duplicates,
        rejected=[{"id": r.id, "field": r.field, "reason": r.reason} for r in result.rejected],
    )
    status = 200 if not result.rejected_count else 422
    return Response(out.model_dump_json(), status=status, mimetype="application/json")
