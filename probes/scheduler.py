"""The probe scheduler: APScheduler 3 with its jobs in the database, one firing at a time.

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

Schedules live in probe_schedule (edited by UI, API and CLI); a sync job
mirrors them into APScheduler's SQLAlchemyJobStore every few seconds. Missed
runs are coalesced into one.
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

from ipam import probing, reclamation
from ipam.abuse import incidents, ingest, notify
from ipam.db import utcnow
from ipam.models import ProbeSchedule, SchedulerLease

from . import runner

log = logging.getLogger(__name__)

LEASE_NAME = "probes"
LEASE_SECONDS = 30
SYNC_SECONDS = 5
DISPATCH_SECONDS = 2
JOB_PREFIX = "schedule-"

_current: ProbeScheduler | None = None  # the scheduler of this process (jobs find it here)


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
    """This process's scheduler, inside its app, while it holds the lease; else None."""
    sched = _current
    if sched is None:
        yield None
        return
    with sched.busy(), sched.app.app_context():
        yield sched if sched.lease.held() else None


def fire(schedule_id: int) -> None:
    """A schedule's timer went off: start a run and carry it out."""
    with _as_leader() as sched:
        if sched is None:
            log.warning("schedule %s not fired: this process holds no lease", schedule_id)
            return
        session = sched.db.session
        try:
            run = probing.start_run(
                session, schedule_id, trigger="schedule", actor=f"scheduler:{sched.holder}"
            )
            session.commit()
        except Exception:
            session.rollback()
            log.exception("schedule %s could not start a run", schedule_id)
            return
        runner.execute(session, run.id, sched.settings())


def dispatch() -> None:
    """Carry out queued "run now" requests."""
    with _as_leader() as sched:
        if sched is None:
            return
        session = sched.db.session
        ids = probing.claim_queued(session)
        session.commit()
        for run_id in ids:
            runner.execute(session, run_id, sched.settings())


def release_quarantine() -> None:
    """Blocks whose cool-down has ended go back to free space (was a manual command)."""
    with _as_leader() as sched:
        if sched is None:
            return
        session = sched.db.session
        try:
            released = reclamation.release_quarantine(session, actor="scheduler")
            session.commit()
            if released:
                log.info("released %d quarantined block(s)", len(released))
        except Exception:
            session.rollback()
            log.exception("quarantine release failed")


def _items(value) -> list[str]:
    return [x for x in str(value or "").replace(",", " ").split() if x]


def abuse_desk() -> None:
    """Reminders before case and incident deadlines; unanswered overdue cases up the ladder."""
    with _as_leader() as sched:
        if sched is None:
            return
        config, session = sched.app.config, sched.db.session
        send = notify.smtp(config["IPAM_SMTP_HOST"], config["IPAM_SMTP_PORT"])
        sender = config["IPAM_ABUSE_SENDER"]
        steps = [
            ("case reminders", lambda: notify.remind_cases(session, send=send, sender=sender)),
            (
                "overdue cases",
                lambda: notify.escalate_overdue(session, rungs=config["IPAM_SANCTION_LADDER"]),
            ),
        ]
        staff = _items(config.get("IPAM_INCIDENT_NOTIFY"))
        if staff:
            steps.append(
                (
                    "incident reminders",
                    lambda: incidents.remind(session, send=send, sender=sender, to=staff),
                )
            )
        for name, step in steps:
            try:
                done = step()
                session.commit()
                if done:
                    log.info("%s: %d", name, len(done))
            except Exception:
                session.rollback()
                log.exception("%s failed", name)


def poll_maildir() -> None:
    """New mails of IPAM_ABUSE_MAILDIR are ingested and filed as seen."""
    with _as_leader() as sched:
        if sched is None:
            return
        path = sched.app.config.get("IPAM_ABUSE_MAILDIR")
        if not path:
            return
        session = sched.db.session
        try:
            result = ingest.poll_maildir(
                session, path, actor="scheduler:maildir",
                policy=sched.app.config["IPAM_ABUSE_POLICY"],
            )  # fmt: skip
            session.commit()
            if result.stored or result.rejected_count:
                log.info(
                    "maildir %s: %d report(s), %d rejected", path, result.stored,
                    result.rejected_count,
                )  # fmt: skip
        except Exception:
            session.rollback()
            log.exception("polling maildir %s failed", path)


class ProbeScheduler:
    """Stands by for the lease; while holding it, runs an APScheduler instance."""

    def __init__(self, app, db):
        self.app = app
        self.db = db
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        with app.app_context():
            self.engine = db.engine
        self.lease = Lease(
            self.engine, self.holder, int(app.config.get("IPAM_SCHEDULER_LEASE") or LEASE_SECONDS)
        )
        self.scheduler: BackgroundScheduler | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._busy = 0
        self._idle = threading.Condition()
        self._thread: threading.Thread | None = None
        self._dispatcher: threading.Thread | None = None
        self.zone = app.config.get("IPAM_TIMEZONE", "Asia/Shanghai")

    def settings(self) -> runner.Settings:
        return runner.Settings.from_config(self.app.config)

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
        s.add_job(
            release_quarantine,
            "interval",
            minutes=10,
            id="release_quarantine",
            next_run_time=utcnow(),
        )
        every = int(self.app.config.get("IPAM_ABUSE_POLL_SECONDS") or 60)
        s.add_job(abuse_desk, "interval", seconds=every, id="abuse_desk", next_run_time=utcnow())
        if self.app.config.get("IPAM_ABUSE_MAILDIR"):
            s.add_job(
                poll_maildir, "interval", seconds=every, id="poll_maildir", next_run_time=utcnow()
            )
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
        with self.app.app_context():
            rows = self.db.session.execute(
                select(ProbeSchedule.id, ProbeSchedule.cron).where(ProbeSchedule.enabled)
            ).all()
            self.db.session.remove()
        want = {f"{JOB_PREFIX}{sid}": (sid, cron) for sid, cron in rows}
        for job in s.get_jobs(jobstore="probes"):
            if job.id not in want:
                job.remove()
        for job_id, (sid, cron) in want.items():
            trigger = probing.cron_trigger(cron, self.zone)
            job = s.get_job(job_id, jobstore="probes")
            if job is None:
                s.add_job(
                    "probes.scheduler:fire",
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


def current() -> ProbeScheduler | None:
    return _current
