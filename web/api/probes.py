"""Probe schedules, runs and findings in the JSON API (clause 19)."""

from __future__ import annotations

from ipam import findings, pools, probing

from ..access import READERS, STAFF, actor
from ..extensions import db
from ..scheduling import wake_scheduler
from ..schemas.common import ListQuery, Page
from ..schemas.probes import (
    FindingOut,
    FindingQuery,
    ResolveIn,
    RunDetail,
    RunDetailQuery,
    RunOut,
    RunQuery,
    ScheduleFields,
    ScheduleIn,
    ScheduleOut,
)
from ..usecase import run
from .endpoint import endpoint
from .helpers import paged, scoped_customer, window


@endpoint("GET", "/probe-schedules", access=READERS, query=ListQuery, out=Page[ScheduleOut])
def probe_schedules_list(query: ListQuery):
    """Probe schedules"""
    rows, total = probing.list_schedules(db.session, window(query))
    return paged(rows, total, query)


@endpoint("POST", "/probe-schedules", access=STAFF, body=ScheduleIn, out=ScheduleOut, status=201)
def probe_schedule_add(body: ScheduleIn):
    """Add a probe schedule (a pool or a customer, cron, methods)"""
    data = body.model_dump(mode="json", exclude_unset=True)
    return run(lambda s: probing.add_schedule(s, data, actor=actor()))


@endpoint("GET", "/probe-schedules/<int:schedule_id>", access=READERS, out=ScheduleOut)
def probe_schedule(schedule_id):
    """A probe schedule"""
    return probing.get_schedule(db.session, schedule_id)


@endpoint(
    "PATCH", "/probe-schedules/<int:schedule_id>", access=STAFF, body=ScheduleFields,
    out=ScheduleOut,
)  # fmt: skip
def probe_schedule_update(schedule_id, body: ScheduleFields):
    """Change a probe schedule"""
    data = body.model_dump(mode="json", exclude_unset=True)
    return run(lambda s: probing.update_schedule(s, schedule_id, data, actor=actor()))


@endpoint("POST", "/probe-schedules/<int:schedule_id>/run", access=STAFF, out=RunOut, status=201)
def probe_schedule_run(schedule_id):
    """Run now: queued for the scheduler; poll /probe-runs/{id} for the result"""
    result = run(lambda s: probing.request_run(s, schedule_id, actor=actor()))
    wake_scheduler()
    return result


@endpoint("GET", "/probe-runs", access=READERS, query=RunQuery, out=Page[RunOut])
def probe_runs_list(query: RunQuery):
    """Probe runs, newest first"""
    schedule_id = probing.get_schedule(db.session, query.schedule).id if query.schedule else None
    rows, total = probing.list_runs(
        db.session, schedule_id=schedule_id, status=query.status, limit=query.limit,
        offset=query.offset,
    )  # fmt: skip
    return paged(rows, total, query)


@endpoint("GET", "/probe-runs/<int:run_id>", access=READERS, query=RunDetailQuery, out=RunDetail)
def probe_run(run_id, query: RunDetailQuery):
    """A run with its kept observations (?limit=, up to 5,000)"""
    from netaddr import IPAddress

    from ipam.addresses import from_bytes

    r = probing.get_run(db.session, run_id)
    obs = probing.run_observations(db.session, r.id, query.limit)
    observations = [
        {
            "address": str(IPAddress(from_bytes(o.address), o.family)),
            "method": o.method,
            "answered": o.answered,
            "rtt_ms": o.rtt_ms,
            "detail": o.detail,
            "observed_at": o.observed_at,
        }
        for o in obs
    ]
    return {**RunOut.model_validate(r).model_dump(), "observations": observations}


@endpoint("GET", "/findings", access=READERS, query=FindingQuery, out=Page[FindingOut])
def findings_list(query: FindingQuery):
    """What the probes found (open by default)"""
    pool_id = pools.get_pool(db.session, query.pool).id if query.pool else None
    rows, total = findings.list_findings(
        db.session,
        status=None if query.status == "all" else query.status,
        kind=query.kind,
        customer_id=scoped_customer(query.customer),
        pool_id=pool_id,
        limit=query.limit,
        offset=query.offset,
    )
    return paged(rows, total, query)


@endpoint("GET", "/findings/<int:finding_id>", access=READERS, out=FindingOut)
def finding(finding_id):
    """A finding with its latest evidence"""
    return findings.get_finding(db.session, finding_id)


@endpoint(
    "POST", "/findings/<int:finding_id>/resolve", access=STAFF, body=ResolveIn, out=FindingOut
)
def finding_resolve(finding_id, body: ResolveIn):
    """Resolve a finding with a comment"""
    return run(lambda s: findings.resolve_finding(s, finding_id, body.comment, actor=actor()))
