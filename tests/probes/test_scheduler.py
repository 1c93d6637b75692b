"""Scheduling: probe runs fired by APScheduler end to end, and one scheduler at a time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from ipam import demo, probing
from ipam.models import (
    AbuseCase,
    AbuseCaseEvent,
    AbuseReport,
    AbuseReportCase,
    Customer,
    Finding,
    JobRun,
    OutboxMessage,
    ProbeRun,
    SchedulerLease,
)
from tests.conftest import clear
from tests.probes.conftest import LAB_GROUP
from web import create_app
from web.extensions import db

ROOT = Path(__file__).resolve().parents[2]


def wait_for(condition, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def seed(engine, crons: dict[str, str | None]) -> None:
    """The demo ledger, with the given schedules set to fire fast and the others disabled."""
    with Session(engine) as s:
        demo.seed(s, echo=lambda *_: None)
        for sched in probing.list_schedules(s)[0]:
            cron = crons.get(sched.name)
            data = {"cron": cron, "enabled": True} if cron else {"enabled": False}
            probing.update_schedule(s, sched.id, data, actor="test")
        s.commit()


@pytest.fixture
def cleared(engine):
    """The test's rows are removed after it, so the next test on this database starts empty."""
    yield
    clear(engine)


def runs(engine, **where) -> list[ProbeRun]:
    with Session(engine) as s:
        q = select(ProbeRun).order_by(ProbeRun.id)
        for key, value in where.items():
            q = q.where(getattr(ProbeRun, key) == value)
        return list(s.execute(q).scalars())


@pytest.fixture
def probe_app(db_url, engine, lab):
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": db_url,
            "SECRET_KEY": "test",
            **lab.settings(),
            "IPAM_PROBE_RATE": "0",
            "IPAM_PROBE_RETRIES": "0",
            "IPAM_PROBE_TIMEOUT": "0.5",
            "IPAM_SCHEDULER_LEASE": "4",
        }
    )
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    clear(engine)


@LAB_GROUP
def test_scheduled_runs_raise_each_finding_for_the_right_address_and_holder(probe_app, engine):
    from ipam.jobs.scheduler import Scheduler

    every3 = "*/3 * * * * *"
    seed(engine, {"DC1 sweep": every3, "DC2 sweep": every3})
    sched = Scheduler(engine, probe_app.config)
    sched.start()
    try:

        def enough():
            done = runs(engine, status="done")
            per = {r.schedule_id for r in done}
            return (
                len(done) >= 4
                and len(per) == 2
                and all(sum(r.schedule_id == sid for r in done) >= 2 for sid in per)
            )

        wait_for(enough, 120, "two finished runs of each schedule")
    finally:
        sched.stop()
    assert [r.error for r in runs(engine) if r.status == "failed"] == []
    assert {r.trigger for r in runs(engine)} == {"schedule"}
    with Session(engine) as s:
        names = dict(s.execute(select(Customer.id, Customer.name)).all())
        found = {
            (f.kind.value, f.prefix, names.get(f.customer_id, "-"))
            for f in s.execute(select(Finding).where(Finding.status == "open")).scalars()
            if f.schedule_id is not None  # the probes' (the sites register raises its own)
        }
    assert found == {
        ("reclaimed_in_use", "198.18.7.0/24", "北京云帆网络科技有限公司"),  # the ended block
        ("unallocated_in_use", "198.18.9.0/24", "-"),  # the covering /24, its address inside
        ("ptr_unregistered", "198.18.7.10", "上海星河数据服务有限公司"),
        ("ptr_mismatch", "198.18.7.11", "上海星河数据服务有限公司"),
        ("blocklisted", "198.18.7.12", "上海星河数据服务有限公司"),
        ("blocklisted", "198.18.9.20", "-"),  # 198.18.7.13's error answer is no listing
        ("quarantined_in_use", "198.19.10.0/24", "深圳远航信息技术有限公司"),
        ("allocated_dark", "198.19.4.0/28", "杭州青木电子商务有限公司"),
    }
    with Session(engine) as s:  # the blocklist hits are abuse reports too, on the holder's case
        hits = {
            (r.prefix, r.holding)
            for r in s.execute(select(AbuseReport).where(AbuseReport.source == "probe")).scalars()
        }
        probe_cases = {
            (c.prefix, name)
            for c, name in s.execute(
                select(AbuseCase, Customer.name)
                .join(Customer, Customer.id == AbuseCase.customer_id)
                .join(AbuseReportCase, AbuseReportCase.case_id == AbuseCase.id)
                .join(AbuseReport, AbuseReport.id == AbuseReportCase.report_id)
                .where(AbuseReport.source == "probe")
            ).all()
        }
    assert sorted(set(hits)) == [("198.18.7.12", "held"), ("198.18.9.20", "unallocated")]
    assert set(probe_cases) == {("198.18.7.12", "上海星河数据服务有限公司")}


@LAB_GROUP
def test_run_now_through_the_embedded_scheduler(probe_app, engine):
    from ipam.jobs.scheduler import Scheduler

    seed(engine, {})
    sched = Scheduler(engine, probe_app.config)
    sched.start()
    try:
        wait_for(lambda: sched.active, 10, "the lease")
        with Session(engine) as s:
            run_id = probing.request_run(s, "DC2 sweep", actor="user:engineer").id
            s.commit()
        sched.wake()
        done = wait_for(lambda: runs(engine, id=run_id, status="done"), 60, "the run")
    finally:
        sched.stop()
    assert done[0].trigger == "manual" and done[0].targets == 65536
    assert done[0].answered == 65  # the demo profile's answering addresses in 198.19.0.0/16


def _scheduler(db_url: str, instance: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "IPAM_DATABASE_URL": db_url,
        "IPAM_INSTANCE_PATH": str(instance),
        "IPAM_SCHEDULER_LEASE": "3",
        "IPAM_PROBE_SCOPE": "",  # loopback only: every run is refused, and says so
    }
    return subprocess.Popen(
        [sys.executable, "-c", "from web.cli import main; main()", "scheduler"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_one_scheduler_fires_however_many_are_started(db_url, engine, tmp_path):
    """Two `ipam scheduler` processes on one database: one fires, the other stands by."""
    seed(engine, {"DC1 sweep": "* * * * * *"})  # every second
    first = _scheduler(db_url, tmp_path / "a")
    second = None
    try:

        def holder():
            with Session(engine) as s:
                return s.execute(select(SchedulerLease.holder)).scalar()

        a = wait_for(holder, 30, "the first scheduler's lease")
        second = _scheduler(db_url, tmp_path / "b")
        wait_for(lambda: len(runs(engine)) >= 6, 60, "six runs")
        time.sleep(3)
        assert holder() == a
        fired = runs(engine)
        assert {r.requested_by for r in fired} == {f"scheduler:{a}"}
        seconds = [r.started_at.replace(microsecond=0) for r in fired]
        assert len(seconds) == len(set(seconds)), "a fire time ran twice"
        # The run fired this very second may still be queued or running as we read.
        ended = [r for r in fired if r.status not in ("queued", "running")]
        assert len(ended) >= len(fired) - 1 >= 5
        assert all(r.status == "failed" and "outside the probe scope" in r.error for r in ended)
        first.send_signal(signal.SIGKILL)  # no goodbye: the lease must run out
        first.wait(10)
        b = wait_for(lambda: holder() if holder() != a else None, 30, "the standby to take over")
        wait_for(
            lambda: any(r.requested_by == f"scheduler:{b}" for r in runs(engine)),
            30,
            "a run fired by the standby",
        )
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(15)
        for proc in (first, second):
            if proc is not None and proc.stdout:
                proc.stdout.close()
        clear(engine)


def test_the_wsgi_app_never_starts_a_scheduler(db_url, engine):
    from ipam.jobs import scheduler

    app = create_app({"SQLALCHEMY_DATABASE_URI": db_url, "SECRET_KEY": "test"})
    app.test_client().get("/login")
    assert scheduler.current() is None
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM scheduler_lease")).scalar() == 0


def test_the_scheduler_polls_the_maildir_and_sends_reminders(
    db_url, engine, tmp_path, smtp, cleared
):
    """No lab needed: the abuse desk's jobs, through the embedded scheduler, with a real SMTP."""
    from datetime import timedelta

    from ipam.abuse import incidents
    from ipam.db import utcnow
    from ipam.jobs.scheduler import Scheduler

    inbox, port = smtp
    seed(engine, {})
    now = utcnow()
    with Session(engine) as s:  # the demo's notified case (上海星河), an hour before its deadline
        case = s.execute(select(AbuseCase).where(AbuseCase.state == "notified")).scalar_one()
        case.opened_at, case.deadline = now - timedelta(hours=23), now + timedelta(hours=1)
        incidents.declare(
            s, title="t", category="attack", hours=2, actor="test", at=now - timedelta(hours=1.5)
        )
        s.commit()
        case_id = case.id
    box = tmp_path / "abuse"
    for sub in ("new", "cur", "tmp"):
        (box / sub).mkdir(parents=True)
    (box / "new" / "1.x").write_bytes((ROOT / "tests/samples/abuse/arf-spam.eml").read_bytes())
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": db_url,
            "SECRET_KEY": "test",
            "IPAM_SCHEDULER_LEASE": "3",
            "IPAM_ABUSE_MAILDIR": str(box),
            "IPAM_ABUSE_POLL_SECONDS": "1",
            "IPAM_SMTP_PORT": port,
            "IPAM_INCIDENT_NOTIFY": "soc@provider.example",
        }
    )
    sched = Scheduler(engine, app.config)
    sched.start()
    try:
        wait_for(lambda: list((box / "cur").iterdir()), 30, "the mail filed as seen")
        wait_for(lambda: len(inbox.messages) >= 2, 30, "a case and an incident reminder")
    finally:
        sched.stop()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    with Session(engine) as s:
        arf = [
            r.prefix
            for r in s.execute(select(AbuseReport).where(AbuseReport.source == "arf")).scalars()
        ]
        events = (
            s.execute(
                select(AbuseCaseEvent.action)
                .where(AbuseCaseEvent.case_id == case_id)
                .order_by(AbuseCaseEvent.id)  # rows come in no set order without it
            )
            .scalars()
            .all()
        )
        # Every job run left its row; the reminders went out through the outbox, once each.
        ran = {
            (r.job, r.status)
            for r in s.execute(select(JobRun)).scalars()
            if r.job in ("poll_maildir", "case_reminders", "incident_reminders", "outbox")
        }
        sent = s.execute(select(OutboxMessage.status)).scalars().all()
    assert arf == ["198.18.7.9"] and events == ["notify", "reminder"]
    to = sorted(tuple(r) for r, _c in inbox.messages)
    assert to == [("noc@xinghe.example",), ("soc@provider.example",)]
    assert {job for job, status in ran if status == "done"} == {
        "poll_maildir", "case_reminders", "incident_reminders", "outbox"
    }  # fmt: skip
    assert sorted(sent) == ["sent", "sent"]
