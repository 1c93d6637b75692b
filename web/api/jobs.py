"""Jobs handed off by requests (a large complaint batch, a report issued asynchronously):
202 Accepted with the job, then GET /jobs/N until it is done or failed."""

from __future__ import annotations

from flask import current_app, jsonify, request, url_for

from ipam import jobs

from ..access import READERS
from ..extensions import db
from ..messages import translate_error
from ..schemas.jobs import JobOut
from ..usecase import run
from .endpoint import endpoint


def job_out(row) -> dict:
    from ipam.errors import Phrase

    phrase = Phrase.from_json(row.phrase)
    return JobOut(
        id=row.id,
        job=row.job,
        status=str(row.status.value if hasattr(row.status, "value") else row.status),
        accepted_at=row.started_at,
        finished_at=row.finished_at,
        summary=row.summary,
        error=translate_error(phrase) if phrase else row.error,
        poll=url_for("api.job_get", job_id=row.id),
    ).model_dump(mode="json")


def wants_async() -> bool:
    """RFC 7240: `Prefer: respond-async` asks for 202 and a job to poll."""
    return "respond-async" in request.headers.get("Prefer", "").lower()


def accept(name: str, *, run_by: str, args: dict, payload: bytes | None = None):
    """Queue the job (committed), hand it to a worker or this process, answer 202."""
    row = run(lambda s: jobs.enqueue(s, name, run_by=run_by, args=args, payload=payload))
    jobs.hand_off(db.engine, current_app.config, row.id)
    response = jsonify(job_out(row))
    response.status_code = 202
    response.headers["Location"] = url_for("api.job_get", job_id=row.id)
    return response


@endpoint("GET", "/jobs/<int:job_id>", access=READERS, out=JobOut)
def job_get(job_id):
    """A job handed off by a request: queued, running, done (with its summary) or failed"""
    return job_out(jobs.get_run(db.session, job_id))
