"""The jobs' functions: each takes (session, config, run_by=...) and returns a small summary.

They do not commit: the wrapper (ipam.jobs.run) does, except where a job
keeps progress on its own (the maildir's chunks, the outbox's claims).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from .. import audit, outbox, reclamation, retention
from ..abuse import incidents, ingest, notify
from ..db import chunk_done, utcnow
from ..errors import ValidationError
from ..models import JobRun


def _items(value) -> list[str]:
    return [x for x in str(value or "").replace(",", " ").split() if x]


def release_quarantine(session: Session, config: Mapping, **_) -> dict:
    released = reclamation.release_quarantine(session, actor="scheduler")
    return {"released": len(released)}


def poll_maildir(session: Session, config: Mapping, **_) -> dict:
    if not config.get("IPAM_ABUSE_MAILDIR"):
        raise ValidationError("no maildir is set", "IPAM_ABUSE_MAILDIR")
    result = ingest.poll_maildir(
        session,
        config["IPAM_ABUSE_MAILDIR"],
        actor="scheduler:maildir",
        policy=config["IPAM_ABUSE_POLICY"],
        chunk_done=chunk_done(session),
    )
    return {"stored": result.stored, "rejected": result.rejected_count}


def case_reminders(session: Session, config: Mapping, **_) -> dict:
    sent = notify.remind_cases(
        session, send=outbox.enqueue(session), sender=config["IPAM_ABUSE_SENDER"]
    )
    return {"reminded": len(sent)}


def overdue_cases(session: Session, config: Mapping, **_) -> dict:
    done = notify.escalate_overdue(session, rungs=config["IPAM_SANCTION_LADDER"])
    return {"escalated": len(done)}


def incident_reminders(session: Session, config: Mapping, **_) -> dict:
    staff = _items(config.get("IPAM_INCIDENT_NOTIFY"))
    sent = incidents.remind(
        session, send=outbox.enqueue(session), sender=config["IPAM_ABUSE_SENDER"], to=staff
    )
    return {"reminded": len(sent)}


def send_outbox(session: Session, config: Mapping, **_) -> dict:
    send = notify.smtp(config["IPAM_SMTP_HOST"], config["IPAM_SMTP_PORT"])
    return outbox.deliver(session, send).summary()


def prune_job_runs(session: Session, config: Mapping, **_) -> dict:
    days = int(config.get("IPAM_JOB_RUN_DAYS") or 90)
    gone = session.execute(
        delete(JobRun).where(JobRun.started_at < utcnow() - timedelta(days=days))
    ).rowcount
    return {"pruned": gone}


def audit_checkpoint(session: Session, config: Mapping, **_) -> dict:
    point = audit.checkpoints_from(config).write(session)
    return {"seq": point.seq}


def purge_expired(session: Session, config: Mapping, *, run_by: str = "scheduler", **_) -> dict:
    return retention.purge(
        session,
        config.get("IPAM_RETENTION_MONTHS") or retention.MIN_MONTHS,
        actor=run_by,
        batch=int(config.get("IPAM_RETENTION_BATCH") or retention.BATCH),
        chunk_done=chunk_done(session),
    )


def standing_reports(session: Session, config: Mapping, **_) -> dict:
    from ..reports import issued

    done = issued.issue_standing(session, config)
    return {"issued": [r.id for r in done]}


def check_sites(session: Session, config: Mapping, **_) -> dict:
    from .. import sites

    return sites.check_sites(session, actor="scheduler")


def ingest_complaints(
    session: Session, config: Mapping, *, payload: bytes = b"", kind=None, actor: str = "",
    run_by: str = "worker", **_,
) -> dict:  # fmt: skip
    """A complaint batch handed off by the API: ingested as if posted, chunk by chunk."""
    result = ingest.ingest_many(
        session,
        [payload],
        actor=actor or run_by,
        kind=kind,
        policy=config["IPAM_ABUSE_POLICY"],
        chunk_done=chunk_done(session),
    )
    return {
        "stored": result.stored,
        "duplicates": result.duplicates,
        "cases_opened": result.cases_opened,
        "rejected": result.rejected_count,
    }


def issue_report(
    session: Session, config: Mapping, *, name: str, args: dict, format: str, lang: str,
    actor: str, customer_id=None, reveal: bool = False, reason=None, zone=None, **_,
) -> dict:  # fmt: skip
    """A report issued off the web worker: made and kept as the request would have."""
    from .. import reports
    from ..listing import Scope
    from ..reports import issued

    scope = Scope(customer_id)
    report, params = reports.prepare(
        session, name, scope, zone=zone or config.get("IPAM_TIMEZONE", "Asia/Shanghai"),
        start=args.get("from"), end=args.get("to"), at=args.get("at"),
        customer=args.get("customer"), pool=args.get("pool"),
        deadline_days=args.get("deadline"), actor=args.get("actor"),
        object_type=args.get("object"), action=args.get("action"), reveal=reveal,
    )  # fmt: skip
    record = issued.issue(
        session, report.name, params, format, lang, actor=actor, scope=scope,
        reason=reason,
    )  # fmt: skip
    return {"issued": record.id, "sha256": record.sha256}
