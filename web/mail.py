"""Mail from the web and the CLI: queued in the use case's transaction, sent after it commits.

`send` is the `send` ipam's notifications take: it writes the message to the
outbox (ipam/outbox.py), so a refused or rolled-back change mails nothing.
`deliver_queued` runs the outbox job right after the commit; what the server
does not take then is retried by the scheduler with backoff.
"""

from __future__ import annotations

from flask import current_app

from ipam import jobs, outbox

from .extensions import db


def sender() -> str:
    return current_app.config["IPAM_ABUSE_SENDER"]


def send(msg) -> None:
    outbox.queue(db.session, msg)


def deliver_queued(run_by: str) -> None:
    """If the transaction just committed queued mail, send it now (job `outbox`)."""
    if outbox.queued(db.session):
        jobs.run(db.engine, "outbox", current_app.config, run_by=run_by)
