"""Beyond one host: probe runs and heavy jobs as Celery tasks (IPAM_BROKER_URL set).

Redis is the default broker (redis://...); RabbitMQ works the same (amqp://...).
The database stays the source of truth and the broker only carries the
word "go":

- The scheduler (one, by its lease) creates each run as a queued row and hands
  it to its site's queue, `ipam.probes.<site>`; heavy jobs queued by web
  requests go to `ipam.jobs`.
- A worker (`ipam worker --site NAME`) claims the run in the database before
  probing (ipam.datacentres.claim), probes from inside its site (its own
  network namespace and probe scope), and records through the claim.
- Messages are acknowledged late (after the work), so a worker killed mid-run
  leaves its message to the broker to give again; and the scheduler hands
  over again any queued run not seen by a worker lately, and any run whose
  worker stopped beating: a broker restarted empty loses nothing. Either way
  the claim lets exactly one worker record a run.

Celery is imported only here, and only when a broker is set: the embedded
product never loads it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.orm import Session

from .. import datacentres
from ..db import transaction, utcnow
from ..models import JobRun, ProbeRun

log = logging.getLogger(__name__)

JOBS_QUEUE = "ipam.jobs"
RESEND_SECONDS = 30  # a queued run or job not claimed by then is handed over again
_apps: dict[str, object] = {}
_context: Worker | None = None  # set in a worker process: what its tasks run with


def configured(config: Mapping) -> bool:
    return bool(config.get("IPAM_BROKER_URL"))


def probe_queue(site: str) -> str:
    return f"ipam.probes.{site}"


def resend_after(config: Mapping) -> timedelta:
    return timedelta(seconds=float(config.get("IPAM_BROKER_RESEND") or RESEND_SECONDS))


def app_for(config: Mapping):
    """The Celery app for this broker URL (one per process and URL)."""
    url = config["IPAM_BROKER_URL"]
    app = _apps.get(url)
    if app is not None:
        return app
    from celery import Celery

    app = Celery("ipam", broker=url, set_as_current=False)
    visibility = int(config.get("IPAM_BROKER_VISIBILITY_TIMEOUT") or 3600)
    app.conf.update(
        task_acks_late=True,  # acknowledged after the work: a killed worker's task comes back
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # a worker holds one message beyond the one it works
        task_ignore_result=True,  # results live in the database
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=JOBS_QUEUE,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=5,
        broker_transport_options={"visibility_timeout": visibility},
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        enable_utc=True,
    )
    app.task(name="ipam.probe_run", bind=True, acks_late=True)(_probe_run_task)
    app.task(name="ipam.job", bind=True, acks_late=True)(_job_task)
    _apps[url] = app
    return app


def _send(config: Mapping, task: str, arg: int, queue: str) -> bool:
    """Publish one message; False (logged) when the broker is away: the row stays queued
    and the scheduler hands it over again later."""
    try:
        app_for(config).send_task(
            task, args=[arg], queue=queue,
            retry=True, retry_policy={"max_retries": 2, "interval_start": 0.2},
        )  # fmt: skip
        return True
    except Exception as exc:  # noqa: BLE001 - the broker is away; the database remembers
        log.warning("broker refused %s(%s) for %s: %s", task, arg, queue, exc)
        return False


def send_job(engine, config: Mapping, job_id: int) -> bool:
    """Hand a queued job (committed) to the broker's jobs queue."""
    if not _send(config, "ipam.job", job_id, JOBS_QUEUE):
        return False
    with Session(engine) as session, transaction(session):
        row = session.get(JobRun, job_id)
        if row is not None:
            row.enqueued_at = utcnow()
    return True


def hand_over(engine, config: Mapping) -> dict:
    """The scheduler's part: give the broker every run and job it should have now."""
    stale, resend = datacentres.stale_after(config), resend_after(config)
    from .. import jobs

    sent = {"runs": 0, "jobs": 0}
    with Session(engine) as session:
        with transaction(session):
            runs = [(r.id, r.site) for r in datacentres.to_hand_over(session, stale, resend)]
            job_ids = jobs.queued_jobs(session, resend_after=resend)
        for run_id, site in runs:
            if _send(config, "ipam.probe_run", run_id, probe_queue(site)):
                with transaction(session):
                    run = session.get(ProbeRun, run_id)
                    run.enqueued_at = utcnow()
                sent["runs"] += 1
    for job_id in job_ids:
        sent["jobs"] += send_job(engine, config, job_id)
    return sent


# --------------------------------------------------------------------------- workers


@dataclass
class Worker:
    """What this worker process's tasks run with, and its heartbeat."""

    engine: object
    config: Mapping
    site: str | None  # None: a jobs-only worker
    name: str = field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}"
    )  # fmt: skip
    done: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self):
        self.name = f"{self.site or 'jobs'}@{self.name}"

    def start(self) -> None:
        global _context
        _context = self
        self.beat()
        self._thread = threading.Thread(target=self._beating, name="ipam-heartbeat", daemon=True)
        self._thread.start()

    def beat(self) -> None:
        if self.site is None:
            return
        done, self.done = self.done, 0
        with Session(self.engine) as session, transaction(session):
            datacentres.beat(session, self.name, self.site, done=done)

    def _beating(self) -> None:
        every = float(self.config.get("IPAM_WORKER_HEARTBEAT") or datacentres.HEARTBEAT_SECONDS)
        while not self._stop.wait(every):
            try:
                self.beat()
            except Exception:  # the database is away: beat again next time
                log.exception("worker heartbeat failed")

    def stop(self) -> None:
        self._stop.set()
        if self.site is not None:
            try:
                with Session(self.engine) as session, transaction(session):
                    datacentres.stopped(session, self.name)
            except Exception:
                log.exception("could not record the worker's stop")


def _probe_run_task(task, run_id: int) -> None:
    ctx = _context
    if ctx is None or ctx.site is None:
        raise RuntimeError("ipam.probe_run runs only in `ipam worker --site NAME`")
    from . import run as run_job

    row = run_job(
        ctx.engine, "probe_run", ctx.config, run_by=f"worker:{ctx.name}",
        run_id=int(run_id), worker=ctx.name, site=ctx.site,
    )  # fmt: skip
    if row.summary and row.summary.get("status") in ("done", "failed"):
        ctx.done += 1


def _job_task(task, job_id: int) -> None:
    ctx = _context
    if ctx is None:
        raise RuntimeError("ipam.job runs only in `ipam worker`")
    from . import run_queued

    run_queued(ctx.engine, int(job_id), ctx.config, run_by=f"worker:{ctx.name}")


def run_worker(engine, config: Mapping, *, site: str | None, jobs: bool, loglevel="INFO") -> None:
    """`ipam worker`: a Celery worker on its site's probe queue (and the jobs queue), solo
    pool (one task at a time per process; run more processes for more), beating."""
    queues = ([probe_queue(site)] if site else []) + ([JOBS_QUEUE] if jobs else [])
    worker = Worker(engine, config, site)
    worker.start()
    try:
        app_for(config).worker_main(
            [
                "worker",
                "--pool=solo",
                f"--queues={','.join(queues)}",
                f"--hostname={worker.name.replace(':', '-')}",
                f"--loglevel={loglevel}",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ]
        )
    finally:
        worker.stop()
