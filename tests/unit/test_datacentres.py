"""Sites, workers and claims (issue 17): one recorder per probe run, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from ipam import datacentres, findings, jobs, pools, probing
from ipam.db import transaction, utcnow
from ipam.errors import NotFound, StateConflict, ValidationError
from ipam.models import JobRun, JobStatus, ProbeObservation, ProbeRun, ProbeWorker
from probes.sweep import Observation

STALE = timedelta(seconds=30)


@pytest.fixture
def sited(session):
    """A pool with a child, a site "bj1" holding the parent, a schedule on the child."""
    with transaction(session):
        parent = pools.add_pool(session, "198.18.0.0/16", "P", actor="t")
        child = pools.add_pool(session, "198.18.7.0/24", "C", actor="t")
        dc = datacentres.add(session, "bj1", actor="t", description="Beijing")
        datacentres.place_pool(session, parent, "bj1", actor="t")
        sched = probing.add_schedule(
            session, {"name": "S", "pool": child.id, "cron": "*/5 * * * *"}, actor="t"
        )
    return parent, child, dc, sched


def _queued(session, sched) -> ProbeRun:
    with transaction(session):
        return probing.request_run(session, sched.id, actor="t")


def test_a_pool_inherits_its_parents_site_and_a_schedule_may_name_its_own(session, sited):
    parent, child, dc, sched = sited
    assert datacentres.site_of_pool(session, child) == "bj1"
    assert _queued(session, sched).site == "bj1"
    with transaction(session):
        datacentres.add(session, "sh2", actor="t")
        probing.update_schedule(session, sched.id, {"site": "sh2"}, actor="t")
    assert datacentres.site_of_schedule(session, sched) == "sh2"
    with transaction(session):  # back to its pool's
        datacentres.place_pool(session, parent, "default", actor="t")
        probing.update_schedule(session, sched.id, {"site": ""}, actor="t")
    assert datacentres.site_of_schedule(session, sched) == "default"


@pytest.mark.parametrize(
    ("name", "field"), [("Bad Name", "name"), ("default", "name"), ("bj1", "name"), ("", "name")]
)
def test_a_bad_or_taken_site_name_is_refused_naming_the_field(
    session, sited, unchanged, name, field
):
    with pytest.raises(ValidationError) as err, transaction(session):
        datacentres.add(session, name, actor="t")
    assert err.value.field == field
    unchanged()


def test_an_unknown_site_is_refused_for_a_pool_and_a_schedule(session, sited):
    parent, child, dc, sched = sited
    with pytest.raises(NotFound) as err, transaction(session):
        datacentres.place_pool(session, child, "nowhere", actor="t")
    assert err.value.field == "site"
    with pytest.raises(NotFound), transaction(session):
        probing.update_schedule(session, sched.id, {"site": "nowhere"}, actor="t")


def _beat(session, name, site="bj1", ago=timedelta(0)):
    with transaction(session):
        datacentres.beat(session, name, site)
        session.execute(
            update(ProbeWorker).where(ProbeWorker.name == name).values(last_seen=utcnow() - ago)
        )


def test_a_run_is_claimed_once_and_taken_over_only_from_a_dead_worker(session, sited):
    run = _queued(session, sited[3])
    _beat(session, "w1")
    _beat(session, "w2")
    with transaction(session):
        assert datacentres.claim(session, run.id, "w9", "sh2", STALE) is None  # not its site
        first = datacentres.claim(session, run.id, "w1", "bj1", STALE)
        second = datacentres.claim(session, run.id, "w2", "bj1", STALE)
    assert first and second is None  # w1 is alive: its run is its own
    _beat(session, "w1", ago=timedelta(minutes=5))  # w1 stops beating
    with transaction(session):
        third = datacentres.claim(session, run.id, "w2", "bj1", STALE)
    session.refresh(run)
    assert third and (run.claimed_by, run.attempts, run.status) == ("w2", 2, "running")
    # w1 comes back to record: refused, and nothing is written.
    obs = [Observation(4, 0xC6120701, "icmp", True, 1.0, utcnow())]
    with pytest.raises(StateConflict) as err, transaction(session):
        findings.record_results(session, run.id, obs, claim=first)
    assert "taken over by w2" in str(err.value)
    assert session.scalar(select(func.count()).select_from(ProbeObservation)) == 0
    with pytest.raises(StateConflict), transaction(session):
        probing.fail_run(session, run.id, "lost", claim=first)
    with transaction(session):
        findings.record_results(session, run.id, obs, claim=third)
    session.refresh(run)
    assert run.status == "done"
    with transaction(session):  # a message given again after the end finds nothing to do
        assert datacentres.claim(session, run.id, "w2", "bj1", STALE) is None


def test_a_stopped_worker_is_dead_at_once(session, sited):
    run = _queued(session, sited[3])
    _beat(session, "w1")
    with transaction(session):
        datacentres.claim(session, run.id, "w1", "bj1", STALE)
        datacentres.stopped(session, "w1")
        assert datacentres.claim(session, run.id, "w2", "bj1", STALE)


def test_what_the_broker_is_given_again(session, sited):
    run = _queued(session, sited[3])
    resend = timedelta(seconds=30)
    assert [r.id for r in datacentres.to_hand_over(session, STALE, resend)] == [run.id]
    with transaction(session):
        session.get(ProbeRun, run.id).enqueued_at = utcnow()
    assert datacentres.to_hand_over(session, STALE, resend) == []  # handed over just now
    with transaction(session):
        session.get(ProbeRun, run.id).enqueued_at = utcnow() - timedelta(minutes=2)
    assert len(datacentres.to_hand_over(session, STALE, resend)) == 1  # lost by the broker?
    _beat(session, "w1")
    with transaction(session):
        datacentres.claim(session, run.id, "w1", "bj1", STALE)
    assert datacentres.to_hand_over(session, STALE, resend) == []  # w1 works on it
    _beat(session, "w1", ago=timedelta(minutes=5))
    assert len(datacentres.to_hand_over(session, STALE, resend)) == 1  # w1 died


def test_site_health_says_why_runs_wait(session, sited):
    _queued(session, sited[3])
    (bj,) = [h for h in datacentres.health(session) if h.site == "bj1"]
    assert (bj.waiting, bj.live, bj.reason) == (1, [], "never")
    _beat(session, "w1", ago=timedelta(minutes=5))
    (bj,) = [h for h in datacentres.health(session) if h.site == "bj1"]
    assert bj.reason == "silent" and bj.last_seen is not None
    _beat(session, "w1")
    (bj,) = [h for h in datacentres.health(session) if h.site == "bj1"]
    assert (bj.live, bj.reason) == (["w1"], "")


def test_two_workers_racing_for_a_run_claim_it_once(session, make_session, sited):
    run = _queued(session, sited[3])
    for n in range(8):
        _beat(session, f"w{n}")
    won: list[str] = []
    barrier = threading.Barrier(8)

    def race(n):
        s = make_session()
        barrier.wait()
        with transaction(s):
            token = datacentres.claim(s, run.id, f"w{n}", "bj1", STALE)
        if token:
            won.append(token)

    threads = [threading.Thread(target=race, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1


def test_a_queued_job_runs_once_and_forgets_its_input(session, engine):
    config = {"IPAM_ABUSE_POLICY": None}
    with transaction(session):
        row = jobs.enqueue(session, "release_quarantine", run_by="t", payload=b"x" * 10)
    with transaction(session):
        assert jobs.queued_jobs(session) == [row.id]
    done = jobs.run_queued(engine, row.id, config, run_by="t")
    assert done.status == JobStatus.DONE and done.summary == {"released": 0}
    assert jobs.run_queued(engine, row.id, config, run_by="t") is None  # not twice
    session.expire_all()
    assert session.get(JobRun, row.id).payload is None
    with pytest.raises(ValidationError), transaction(session):
        jobs.enqueue(session, "no_such_job", run_by="t")


def test_a_queued_job_refused_keeps_its_reason_in_words_and_values(session, engine):
    with transaction(session):
        row = jobs.enqueue(session, "issue_report", run_by="t", args={
            "name": "nonesuch", "args": {}, "format": "csv", "lang": "zh", "actor": "t",
        })  # fmt: skip
    done = jobs.run_queued(engine, row.id, {"IPAM_TIMEZONE": "Asia/Shanghai"}, run_by="t")
    assert done.status == JobStatus.FAILED
    assert done.phrase["t"].startswith("no report") and done.phrase["p"]
