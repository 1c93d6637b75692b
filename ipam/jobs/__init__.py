"""Scheduled and queued work: one table of jobs, one wrapper that runs any of them.

The wrapper (`run`) owns the job's transaction (ipam.db.transaction), logs,
and leaves a `job_run` row for every run: when, by whom, what it did (a small
summary) or why it failed. Mail a job decides goes to the outbox and is sent
once the job's transaction has committed. The scheduler (scheduler.py) fires
the jobs whose `every` gives an interval; probe runs fire on their schedules'
cron. A job's function is named by "module:function", so this table needs no
import of probes/ (which calls ipam/, never the reverse).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy.orm import Session

from .. import outbox
from ..db import transaction, utcnow
from ..errors import IpamError, Phrase, ValidationError
from ..models import JobRun, JobStatus

log = logging.getLogger(__name__)


def _seconds(key: str, default: int) -> Callable[[Mapping], int]:
    return lambda config: int(config.get(key) or default)


def _poll(config: Mapping) -> int | None:
    return int(config.get("IPAM_ABUSE_POLL_SECONDS") or 60)


def _if(key: str, every: Callable[[Mapping], int | None]) -> Callable[[Mapping], int | None]:
    """Scheduled only when the setting `key` has a value."""
    return lambda config: every(config) if config.get(key) else None


def _never(config: Mapping) -> None:
    return None


@dataclass(frozen=True)
class Job:
    name: str
    doc: str
    # "module:function", called as func(session, config, run_by=..., **kwargs) -> summary dict
    func: str
    every: Callable[[Mapping], int | None]  # seconds between runs; None: not on a timer


JOBS: dict[str, Job] = {
    job.name: job
    for job in (
        Job(
            "probe_run",
            "A probe run: plan, probe inside the scope, record observations and findings",
            "probes.runner:run_job",
            _never,  # fired by the probe schedules' cron, or "run now"
        ),
        Job(
            "release_quarantine",
            "Blocks whose cool-down has ended go back to free space",
            "ipam.jobs.tasks:release_quarantine",
            lambda config: 600,
        ),
        Job(
            "poll_maildir",
            "New mails of IPAM_ABUSE_MAILDIR are ingested and filed as seen",
            "ipam.jobs.tasks:poll_maildir",
            _if("IPAM_ABUSE_MAILDIR", _poll),
        ),
        Job(
            "case_reminders",
            "One reminder to the customer when a quarter of a case's answering time is left",
            "ipam.jobs.tasks:case_reminders",
            _poll,
        ),
        Job(
            "overdue_cases",
            "Notified cases unanswered past their deadline go up the sanction ladder",
            "ipam.jobs.tasks:overdue_cases",
            _poll,
        ),
        Job(
            "incident_reminders",
            "Clause 16 reminders to IPAM_INCIDENT_NOTIFY at half time, an hour left, overdue",
            "ipam.jobs.tasks:incident_reminders",
            _if("IPAM_INCIDENT_NOTIFY", _poll),
        ),
        Job(
            "outbox",
            "Send the mail whose transaction committed; retry failures with backoff",
            "ipam.jobs.tasks:send_outbox",
            _seconds("IPAM_OUTBOX_SECONDS", 15),
        ),
        Job(
            "audit_checkpoint",
            "Append the audit chain's head, signed, to IPAM_AUDIT_CHECKPOINTS",
            "ipam.jobs.tasks:audit_checkpoint",
            _seconds("IPAM_AUDIT_CHECKPOINT_SECONDS", 300),
        ),
        Job(
            "purge_expired",
            "Purge probe observations and complaint evidence older than IPAM_RETENTION_MONTHS",
            "ipam.jobs.tasks:purge_expired",
            lambda config: 86400,
        ),
        Job(
            "standing_reports",
            "Issue the standing reports of the month before (once a month; the run is daily)",
            "ipam.jobs.tasks:standing_reports",
            _seconds("IPAM_STANDING_REPORT_SECONDS", 86400),
        ),
        Job(
            "check_sites",
            "Re-check the sites register's rules (clauses 2-4) against today's holdings",
            "ipam.jobs.tasks:check_sites",
            lambda config: 86400,
        ),
        Job(
            "ingest_complaints",
            "A large complaint batch posted to the API, ingested off the web worker",
            "ipam.jobs.tasks:ingest_complaints",
            _never,  # queued by the API (202 and a job to poll)
        ),
        Job(
            "issue_report",
            "A report issued off the web worker (asked for with Prefer: respond-async)",
            "ipam.jobs.tasks:issue_report",
            _never,
        ),
        Job(
            "prune_job_runs",
            "Forget job runs older than IPAM_JOB_RUN_DAYS (default 90)",
            "ipam.jobs.tasks:prune_job_runs",
            lambda config: 86400,
        ),
    )
}


# Jobs that exist only as requests (a run to probe, an upload, a report): not on a timer,
# not for `ipam job run` (they need their arguments).
ON_REQUEST = frozenset({"probe_run", "ingest_complaints", "issue_report"})


def _function(job: Job):
    module, _, name = job.func.partition(":")
    return getattr(importlib.import_module(module), name)


def run(engine, name: str, config: Mapping, *, run_by: str, **kwargs) -> JobRun:
    """Run one job in a session of its own; its job_run row says how it went.

    Never raises for the job's own failure (a scheduler thread must survive
    any input); the row carries the error instead.
    """
    with Session(engine, expire_on_commit=False) as session:
        with transaction(session):
            row = JobRun(job=name, status=JobStatus.RUNNING, started_at=utcnow(), run_by=run_by)
            session.add(row)
        return _carry_out(engine, session, row, config, run_by, kwargs)


def _carry_out(engine, session: Session, row: JobRun, config, run_by: str, kwargs) -> JobRun:
    name = row.job
    job = JOBS[name]
    try:
        func = _function(job)
        with transaction(session):  # what the job keeps as it goes is kept already
            summary = func(session, config, run_by=run_by, **kwargs)
        status, error, phrase = JobStatus.DONE, None, None
    except Exception as exc:  # noqa: BLE001 - recorded on the row, and logged
        session.rollback()
        phrase = None
        if isinstance(exc, IpamError):  # refused, with its reason: no traceback to read
            log.warning("job %s refused: %s", name, exc)
            phrase = Phrase(exc.template, **exc.params).as_json()
        else:
            log.exception("job %s failed", name)
        summary, status, error = None, JobStatus.FAILED, f"{type(exc).__name__}: {exc}"
    with transaction(session):
        row = session.merge(row)
        row.status, row.finished_at = status, utcnow()
        row.summary, row.error = summary, (error or None) and error[:4000]
        row.phrase, row.payload = phrase, None  # the input is not kept once done with
    mailed = outbox.queued(session)
    if mailed and name != "outbox":  # mail decided by this run: send it now it has committed
        run(engine, "outbox", config, run_by=run_by)
    if summary:
        log.info("job %s: %s", name, summary)
    return row


# --------------------------------------------------------------------------- queued jobs
# Heavy work handed off by a web request: a row (status queued) carries the job's
# arguments and input; a Celery worker (with a broker) or the in-process scheduler's
# dispatcher (embedded) claims it and runs it through the same wrapper.


def enqueue(
    session: Session, name: str, *, run_by: str, args: dict | None = None, payload=None
) -> JobRun:
    """A job to run off the request: the caller commits, then hands it over (hand_over)."""
    if name not in JOBS:
        raise ValidationError("no job {name!r}", "job", name=name)
    row = JobRun(
        job=name,
        status=JobStatus.QUEUED,
        started_at=utcnow(),
        run_by=run_by,
        args=args or {},
        payload=payload,
    )
    session.add(row)
    session.flush()
    return row


def claim(session: Session, job_id: int) -> bool:
    """Mark a queued job running; False when another runner took it first."""
    from sqlalchemy import update

    return bool(
        session.execute(
            update(JobRun)
            .where(JobRun.id == job_id, JobRun.status == JobStatus.QUEUED)
            .values(status=JobStatus.RUNNING)
            .execution_options(synchronize_session=False)
        ).rowcount
    )


def run_queued(engine, job_id: int, config: Mapping, *, run_by: str) -> JobRun | None:
    """Claim and run one queued job; None when it was not queued (done, or taken)."""
    with Session(engine, expire_on_commit=False) as session:
        with transaction(session):
            if not claim(session, job_id):
                return None
            row = session.get(JobRun, job_id)
            kwargs = dict(row.args or {})
            if row.payload is not None:
                kwargs["payload"] = bytes(row.payload)
        return _carry_out(engine, session, row, config, run_by, kwargs)


def hand_off(engine, config: Mapping, job_id: int) -> str:
    """After the queued job's commit: to the broker if one is set, else wake this process's
    scheduler (embedded); with neither, the next scheduler to dispatch runs it."""
    from . import broker, scheduler

    if broker.configured(config):
        return "broker" if broker.send_job(engine, config, job_id) else "later"
    sched = scheduler.current()
    if sched is not None:
        sched.wake()
        return "in-process"
    return "later"


def queued_jobs(session: Session, *, resend_after=None, limit: int = 100) -> list[int]:
    """Queued jobs, oldest first; with `resend_after`, only those not handed to the
    broker within it (a broker restarted without its queue has lost them)."""
    from sqlalchemy import or_, select

    q = select(JobRun.id).where(JobRun.status == JobStatus.QUEUED)
    if resend_after is not None:
        q = q.where(or_(JobRun.enqueued_at.is_(None), JobRun.enqueued_at < utcnow() - resend_after))
    return list(session.scalars(q.order_by(JobRun.id).limit(limit)))


def get_run(session: Session, job_id: int) -> JobRun:
    from ..errors import NotFound

    row = session.get(JobRun, job_id)
    if row is None:
        raise NotFound("no job {job_id}", "job", job_id=job_id)
    return row


def recent_runs(session: Session, *, name: str | None = None, limit: int = 20) -> list[JobRun]:
    """The latest job runs (of one job if named), newest first."""
    from sqlalchemy import select

    q = select(JobRun).order_by(JobRun.id.desc()).limit(limit)
    if name:
        q = q.where(JobRun.job == name)
    return list(session.scalars(q))
