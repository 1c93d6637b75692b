"""The scheduler: APScheduler 3 firing the jobs (ipam/jobs), one process at a time.

Exactly one scheduler fires jobs, however many web workers run:
  1. Only two entry points start one: `ipam serve` (the embedded default, one
     process) and `ipam scheduler` (production). The WSGI app that gunicorn
     workers load never does.
  2. Even so, a scheduler fires only while it holds the `scheduler_lease` row:
     it takes the row when it is free or expired, renews it every
     LEASE_SECONDS / 3, and stops its APScheduler instance the moment a renewal
     fails. A second scheduler (a second `ipam scheduler`, or `ipam serve`
     started against the production database) stands by until the lease
     expires. Every job checks the lease again before it probes.
  3. "Run now" requests are rows (probe_run, status queued); claiming one marks
     it running in the same transaction (SKIP LOCKED on PostgreSQL).

Probe schedules live in probe_schedule (edited by UI, API and CLI); a sync
job mirrors them into APScheduler's SQLAlchemyJobStore every few seconds.
Missed runs are coalesced into one. The other jobs fire on the intervals the
job table gives (ipam.jobs.JOBS). Every firing goes through ipam.jobs.run,
which leaves a job_run row. No Flask here: the scheduler gets an engine and
the settings.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from contextlib import contextmanager
from datetime import timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import probing
from ..db import transaction, utcnow
from ..models import ProbeSchedule, SchedulerLease
from . import JOBS, broker, queued_jobs, run_queued
from . import run as run_job

log = logging.getLogger(__name__)

LEASE_NAME = "probes"
LEASE_SECONDS = 30
SYNC_SECONDS = 5
DISPATCH_SECONDS = 2
JOB_PREFIX = "schedule-"
FIRE = "ipam.jobs.scheduler:fire"  # what the persistent job store names

_current: Scheduler | None = None  # the scheduler of this process (jobs find it here)


class Lease:
    """A row naming the one process allowed to fire jobs, valid until expires_at."""

    def __init__(self, engine, holder: str, seconds: int = LEASE_SECONDS):
        self.engine = engine
        self.holder = holder
        self.seconds = seconds
        self.table = SchedulerLease.__table__

    def acquire(self) -> bool:
        """Take or renew the lease; False while another holder's lease is valid."""
        now = utcnow()
        until = now + timedelta(seconds=self.seconds)
        t = self.table
        with self.engine.begin() as conn:
            taken = conn.execute(
                update(t)
                .where(t.c.name == LEASE_NAME, or_(t.c.holder == self.holder, t.c.expires_at < now))
                .values(holder=self.holder, expires_at=until)
            ).rowcount
            if taken:
                return True
            exists = conn.execute(select(t.c.name).where(t.c.name == LEASE_NAME)).first()
        if exists:
            return False
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(t).values(name=LEASE_NAME, holder=self.holder, expires_at=until)
                )
            return True
        except IntegrityError:
            return False

    def held(self) -> bool:
        t = self.table
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.c.holder, t.c.expires_at).where(t.c.name == LEASE_NAME)
            ).first()
        return bool(row) and row.holder == self.holder and row.expires_at > utcnow()

    def release(self) -> None:
        t = self.table
        with self.engine.begin() as conn:
            conn.execute(
                update(t)
                .where(t.c.name == LEASE_NAME, t.c.holder == self.holder)
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )


# Job functions are module-level so the persistent job store can name them.


@contextmanager
def _as_leader():
    """This process's scheduler while it holds the lease; else None."""
    sched = _current
    if sched is None:
        yield None
        return
    with sched.busy():
        yield sched if sched.lease.held() else None


def fire(schedule_id: int) -> None:
    """A probe schedule's timer went off: start a run and carry it out (job probe_run);
    with a broker, queue it for its site's workers and hand it over at once."""
    with _as_leader() as sched:
        if sched is None:
            log.warning("schedule %s not fired: this process holds no lease", schedule_id)
            return
        run_job(
            sched.engine, "probe_run", sched.config, run_by=f"scheduler:{sched.holder}",
            schedule_id=schedule_id,
        )  # fmt: skip
        if broker.configured(sched.config):
            sched.wake()


def dispatch() -> None:
    """Queued work: with a broker, hand it to the broker (again, if lost); embedded, carry
    out "run now" requests as probe_run jobs and then the queued heavy jobs, here."""
    with _as_leader() as sched:
        if sched is None:
            return
        if broker.configured(sched.config):
            broker.hand_over(sched.engine, sched.config)
            return
        with Session(sched.engine) as session, transaction(session):
            ids = probing.claim_queued(session)
        for run_id in ids:
            run_job(
                sched.engine, "probe_run", sched.config, run_by=f"scheduler:{sched.holder}",
                run_id=run_id,
            )  # fmt: skip
        with Session(sched.engine) as session, transaction(session):
            job_ids = queued_jobs(session)
        for job_id in job_ids:
            run_queued(sched.engine, job_id, sched.config, run_by=f"scheduler:{sched.holder}")


def interval(name: str) -> None:
    """A job of the table came due on its interval."""
    with _as_leader() as sched:
        if sched is None:
            return
        run_job(sched.engine, name, sched.config, run_by=f"scheduler:{sched.holder}")


class Scheduler:
    """Stands by for the lease; while holding it, runs an APScheduler instance."""

    def __init__(self, engine, config):
        self.engine = engine
        self.config = config
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease = Lease(
            self.engine, self.holder, int(config.get("IPAM_SCHEDULER_LEASE") or LEASE_SECONDS)
        )
        self.scheduler: BackgroundScheduler | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._busy = 0
        self._idle = threading.Condition()
        self._thread: threading.Thread | None = None
        self._dispatcher: threading.Thread | None = None
        self.zone = config.get("IPAM_TIMEZONE", "Asia/Shanghai")

    @property
    def active(self) -> bool:
        return self.scheduler is not None

    def start(self) -> None:
        global _current
        _current = self
        self._thread = threading.Thread(target=self._loop, name="probe-scheduler", daemon=True)
        self._thread.start()
        self._dispatcher = threading.Thread(
            target=self._dispatch_loop, name="probe-dispatch", daemon=True
        )
        self._dispatcher.start()

    def _dispatch_loop(self) -> None:
        """Queued "run now" requests, one at a time, every few seconds or when woken."""
        while not self._stop.is_set():
            self._wake.wait(DISPATCH_SECONDS)
            self._wake.clear()
            if self.active and not self._stop.is_set():
                try:
                    dispatch()
                except Exception:
                    log.exception("dispatching queued probe runs failed")

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                held = self.lease.acquire()
            except Exception:  # the database is away: stop firing until it is back
                log.exception("scheduler lease check failed")
                held = False
            if held and not self.active:
                self._start_apscheduler()
            elif not held and self.active:
                log.warning("scheduler lease lost to another process: standing by")
                self._stop_apscheduler()
            self._stop.wait(self.lease.seconds / 3)
        self._stop_apscheduler(wait=True)  # a run in progress finishes and records itself
        try:
            self.lease.release()
        except Exception:
            log.exception("could not release the scheduler lease")

    def _start_apscheduler(self) -> None:
        url = self.engine.url.render_as_string(hide_password=False)
        self.jobstore = SQLAlchemyJobStore(url=url, tablename="apscheduler_jobs")
        s = BackgroundScheduler(
            jobstores={"default": MemoryJobStore(), "probes": self.jobstore},
            executors={"default": ThreadPoolExecutor(4)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
            timezone=self.zone,
        )
        s.add_job(self.sync, "interval", seconds=SYNC_SECONDS, id="sync", next_run_time=utcnow())
        for name, job in JOBS.items():
            every = job.every(self.config)
            if every:
                s.add_job(
                    interval, "interval", seconds=every, args=[name], id=name,
                    next_run_time=utcnow(),
                )  # fmt: skip
        s.start()
        self.scheduler = s
        log.info("probe scheduler %s holds the lease and fires jobs", self.holder)

    @contextmanager
    def busy(self):
        """Count a job in progress, so that stopping can wait for it to record its run."""
        with self._idle:
            self._busy += 1
        try:
            yield
        finally:
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

    def _stop_apscheduler(self, wait: bool = False) -> None:
        s = self.scheduler
        if s is None:
            return
        self.scheduler = None
        s.pause()  # nothing new starts
        if wait:
            # APScheduler 3's shutdown(wait=True) holds its job-store lock while it waits,
            # and a job that needs that lock then never finishes: wait here instead.
            with self._idle:
                self._idle.wait_for(lambda: self._busy == 0, timeout=300)
        s.shutdown(wait=False)
        if wait:  # a job submitted just before the pause may have run since
            with self._idle:
                self._idle.wait_for(lambda: self._busy == 0, timeout=300)
            self.jobstore.engine.dispose()

    def sync(self) -> None:
        """Mirror enabled probe schedules into the persistent job store."""
        with self.busy():
            self._sync()

    def _sync(self) -> None:
        s = self.scheduler
        if s is None:
            return
        with Session(self.engine) as session:
            rows = session.execute(
                select(ProbeSchedule.id, ProbeSchedule.cron).where(ProbeSchedule.enabled)
            ).all()
        want = {f"{JOB_PREFIX}{sid}": (sid, cron) for sid, cron in rows}
        for job in s.get_jobs(jobstore="probes"):
            if job.id not in want:
                job.remove()
        for job_id, (sid, cron) in want.items():
            trigger = probing.cron_trigger(cron, self.zone)
            job = s.get_job(job_id, jobstore="probes")
            if job is None or job.func_ref != FIRE:  # new, or stored by an older version
                s.add_job(
                    FIRE,
                    trigger,
                    args=[sid],
                    id=job_id,
                    jobstore="probes",
                    replace_existing=True,
                )
            elif str(job.trigger) != str(trigger):
                s.reschedule_job(job_id, jobstore="probes", trigger=trigger)

    def wake(self) -> None:
        """Run the dispatcher now (an embedded "run now" needs no two-second wait)."""
        self._wake.set()

    def stop(self) -> None:
        global _current
        self._stop.set()
        self._wake.set()
        for thread in (self._thread, self._dispatcher):
            if thread:
                thread.join(timeout=120)
        if _current is self:
            _current = None


def current() -> Scheduler | None:
    return _current
