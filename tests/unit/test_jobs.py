"""Jobs and the outbox: a row for every run, mail only after commit, retried, never twice."""

from __future__ import annotations

import threading
from datetime import timedelta
from email.message import EmailMessage

from sqlalchemy import func, select, update

from ipam import jobs, outbox
from ipam.db import transaction, utcnow
from ipam.models import JobRun, OutboxMessage, OutboxStatus


def mail(n: int) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "abuse@provider.example"
    msg["To"] = f"noc{n}@customer.example"
    msg["Subject"] = f"message {n}"
    msg.set_content("body\n")
    return msg


def test_a_rolled_back_decision_leaves_no_mail(session):
    try:
        with transaction(session):
            outbox.queue(session, mail(1))
            raise RuntimeError("the change is refused after the mail was decided")
    except RuntimeError:
        pass
    assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0


def test_a_server_away_means_backoff_then_failed_and_a_good_server_gets_each_message_once(
    session, smtp
):
    inbox, port = smtp
    with transaction(session):
        first, second = outbox.queue(session, mail(1)), outbox.queue(session, mail(2))
    away = outbox.deliver(session, _refuse)
    # The first attempt fails; the run stops there (the server is away), the second waits.
    assert (away.retried, away.sent) == ([first.id], [])
    session.refresh(first)
    assert (first.status, first.attempts) == (OutboxStatus.PENDING, 1)
    assert first.next_attempt_at - utcnow() > timedelta(seconds=50)  # one minute's backoff
    # Due again and still refused, up to the last attempt: then it is given up.
    for attempt in range(2, outbox.MAX_ATTEMPTS + 1):
        _due_now(session)
        result = outbox.deliver(session, _refuse)
        session.refresh(first)
        assert first.attempts == attempt
    assert first.status == OutboxStatus.FAILED and first.id in result.failed
    assert "ConnectionRefusedError" in first.last_error
    assert outbox.backoff(3) == timedelta(minutes=4)
    # A server that answers gets the waiting message, once, however often the job runs.
    _due_now(session)
    send = outbox_send(port)
    sent = outbox.deliver(session, send)
    again = outbox.deliver(session, send)
    assert sent.sent == [second.id] and again.sent == []
    assert [rcpts for rcpts, _ in inbox.messages] == [["noc2@customer.example"]]


def test_two_senders_at_once_send_each_message_once(session, make_session, smtp):
    inbox, port = smtp
    with transaction(session):
        ids = [outbox.queue(session, mail(n)).id for n in range(40)]
    send = outbox_send(port)
    results = []

    def sender():
        s = make_session()
        results.append(outbox.deliver(s, send))

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sent = sorted(i for r in results for i in r.sent)
    assert sent == sorted(ids)  # each message by exactly one of them
    assert len(inbox.messages) == 40


def test_every_job_run_leaves_a_row_and_a_failure_does_not_escape(session, engine):
    config = {"IPAM_QUARANTINE_DAYS": 30}
    done = jobs.run(engine, "release_quarantine", config, run_by="test")
    failed = jobs.run(engine, "poll_maildir", config, run_by="test")  # no maildir configured
    rows = {r.job: r for r in session.scalars(select(JobRun))}
    assert (done.status, rows["release_quarantine"].summary) == ("done", {"released": 0})
    assert failed.status == "failed" and "IPAM_ABUSE_MAILDIR" in rows["poll_maildir"].error
    assert all(r.finished_at is not None and r.run_by == "test" for r in rows.values())


def test_the_job_table_names_functions_that_exist_and_intervals_follow_the_settings():
    for job in jobs.JOBS.values():
        assert callable(jobs._function(job)), job.name
    quiet = {name for name, job in jobs.JOBS.items() if job.every({}) is None}
    assert quiet == {"poll_maildir", "incident_reminders", *jobs.ON_REQUEST}
    assert jobs.JOBS["poll_maildir"].every({"IPAM_ABUSE_MAILDIR": "/x"}) == 60
    assert jobs.JOBS["outbox"].every({"IPAM_OUTBOX_SECONDS": 5}) == 5


def _refuse(msg) -> None:
    raise ConnectionRefusedError(111, "Connection refused")


def _due_now(session) -> None:
    with transaction(session):
        session.execute(update(OutboxMessage).values(next_attempt_at=utcnow() - timedelta(1)))


def outbox_send(port: int):
    from ipam.abuse.notify import smtp

    return smtp("127.0.0.1", port)


def test_the_checkpoint_job_appends_a_signed_head_that_verify_holds_the_chain_to(
    engine, session, tmp_path
):
    from sqlalchemy import text

    from ipam import audit, pools

    with transaction(session):
        pools.add_pool(session, "198.18.0.0/24", "P", actor="test")
    config = {
        "IPAM_AUDIT_CHECKPOINTS": str(tmp_path / "checkpoints.jsonl"),
        "IPAM_AUDIT_KEY_FILE": str(tmp_path / "key"),
    }
    row = jobs.run(engine, "audit_checkpoint", config, run_by="test")
    assert row.status == "done" and row.summary == {"seq": 1}
    assert (tmp_path / "key").stat().st_mode & 0o077 == 0  # the key is the owner's only
    checkpoints = audit.checkpoints_from(config)
    assert checkpoints.latest().seq == 1
    assert audit.verify(session, checkpoints=checkpoints).ok
    with transaction(session):
        session.execute(text("DELETE FROM audit_log"))
        session.execute(text("UPDATE audit_head SET seq = 0, last_hash = :g"), {"g": "0" * 64})
    assert audit.verify(session).ok  # the chain alone cannot tell
    result = audit.verify(session, checkpoints=checkpoints)
    assert not result.ok and "entries were removed" in result.problem
    # Another key does not accept the file.
    other = audit.Checkpoints(config["IPAM_AUDIT_CHECKPOINTS"], "another key")
    assert "not a checkpoint signed" in audit.verify(session, checkpoints=other).problem
