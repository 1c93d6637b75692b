"""Probe schedules, runs and findings in the JSON API (clause 19)."""

from __future__ import annotations

from flask import jsonify, request
from sqlalchemy import select

from ipam import findings, pools, probing
from ipam.errors import ValidationError
from ipam.models import Finding, FindingKind, ProbeObservation, ProbeRun, ProbeSchedule
from ipam.validation import choice

from .. import serialize
from ..access import actor
from ..extensions import db
from ..usecase import run
from . import api, body, created, int_arg, page, scoped_customer


def wake_scheduler() -> None:
    """In the embedded default the scheduler lives in this process: start the run at once."""
    from probes.scheduler import current

    sched = current()
    if sched is not None:
        sched.wake()


@api.get("/probe-schedules")
def probe_schedules_list():
    return jsonify(page(select(ProbeSchedule).order_by(ProbeSchedule.id), serialize.probe_schedule))


@api.post("/probe-schedules")
def probe_schedule_add():
    data = body()
    return created(
        run(lambda s: probing.add_schedule(s, data, actor=actor()), serialize.probe_schedule)
    )


@api.get("/probe-schedules/<int:schedule_id>")
def probe_schedule(schedule_id):
    return jsonify(serialize.probe_schedule(probing.get_schedule(db.session, schedule_id)))


@api.patch("/probe-schedules/<int:schedule_id>")
def probe_schedule_update(schedule_id):
    data = body()
    return jsonify(
        run(
            lambda s: probing.update_schedule(s, schedule_id, data, actor=actor()),
            serialize.probe_schedule,
        )
    )


@api.post("/probe-schedules/<int:schedule_id>/run")
def probe_schedule_run(schedule_id):
    """Run now: queued for the scheduler (201); poll /probe-runs/{id} for the result."""
    result = run(lambda s: probing.request_run(s, schedule_id, actor=actor()), serialize.probe_run)
    wake_scheduler()
    return created(result)


@api.get("/probe-runs")
def probe_runs_list():
    q = select(ProbeRun).order_by(ProbeRun.id.desc())
    if request.args.get("schedule"):
        q = q.where(
            ProbeRun.schedule_id == probing.get_schedule(db.session, request.args["schedule"]).id
        )
    if request.args.get("status"):
        status = request.args["status"]
        if status not in ("queued", "running", "done", "failed"):
            raise ValidationError(f"{status!r} is not queued, running, done or failed", "status")
        q = q.where(ProbeRun.status == status)
    return jsonify(page(q, serialize.probe_run))


@api.get("/probe-runs/<int:run_id>")
def probe_run(run_id):
    """A run with its kept observations (?limit=, up to 5,000)."""
    r = probing.get_run(db.session, run_id)
    limit = int_arg("limit", 500, 1, 5000)
    obs = db.session.execute(
        select(ProbeObservation)
        .where(ProbeObservation.run_id == r.id)
        .order_by(ProbeObservation.family, ProbeObservation.address, ProbeObservation.method)
        .limit(limit)
    ).scalars()
    return jsonify(
        {**serialize.probe_run(r), "observations": [serialize.observation(o) for o in obs]}
    )


def findings_query():
    """Findings filtered by ?status= ?kind= ?customer= ?pool= (shared with the UI)."""
    q = select(Finding)
    status = request.args.get("status", "open")
    if status not in ("open", "resolved", "all"):
        raise ValidationError(f"{status!r} is not open, resolved or all", "status")
    if status != "all":
        q = q.where(Finding.status == status)
    if request.args.get("kind"):
        q = q.where(Finding.kind == choice(FindingKind, request.args["kind"], "kind"))
    customer_id = scoped_customer(request.args.get("customer"))
    if customer_id is not None:
        q = q.where(Finding.customer_id == customer_id)
    if request.args.get("pool"):
        q = q.where(Finding.pool_id == pools.get_pool(db.session, request.args["pool"]).id)
    return q.order_by(Finding.last_seen.desc(), Finding.id.desc())


@api.get("/findings")
def findings_list():
    return jsonify(page(findings_query(), serialize.finding))


@api.get("/findings/<int:finding_id>")
def finding(finding_id):
    return jsonify(serialize.finding(findings.get_finding(db.session, finding_id)))


@api.post("/findings/<int:finding_id>/resolve")
def finding_resolve(finding_id):
    data = body()
    return jsonify(
        run(
            lambda s: findings.resolve_finding(s, finding_id, data.get("comment"), actor=actor()),
            serialize.finding,
        )
    )
