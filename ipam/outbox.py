"""Mail decided in a transaction goes out only after that transaction commits (invariant 10).

`enqueue(session)` is a `send` for ipam's notifications that writes the
message to the outbox table instead of a mail server: a rolled-back decision
leaves no mail behind. The outbox job (`deliver`) sends what is due after
commit: each message is claimed (status "sending", committed) before it is
handed to the server, so two senders never send it twice; a failure puts it
back with an exponential backoff, up to MAX_ATTEMPTS, then marks it failed.
A sender that dies between the server's "250" and recording it leaves the
row at "sending": it is never re-sent on its own (its Message-ID would let a
receiver drop a duplicate, but we prefer never to cause one).
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import getaddresses

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .db import transaction, utcnow
from .models import OutboxMessage, OutboxStatus

MAX_ATTEMPTS = 8
FIRST_RETRY = timedelta(minutes=1)  # then 2, 4, 8 ... minutes
QUEUED_KEY = "outbox_queued"  # session.info: this transaction queued mail
# Refusals of one message; any other error means the server is away, so the run stops.
MESSAGE_REFUSED = (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError)


def queue(session: Session, msg: EmailMessage, *, now: datetime | None = None) -> OutboxMessage:
    """Keep `msg` for sending after the caller's transaction commits."""
    now = now or utcnow()
    recipients = [addr for _name, addr in getaddresses(msg.get_all("To", []))]
    row = OutboxMessage(
        created_at=now,
        recipients=recipients,
        subject=str(msg.get("Subject", ""))[:500],
        message=msg.as_bytes(),
        status=OutboxStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
    )
    session.add(row)
    session.flush()
    session.info[QUEUED_KEY] = True
    return row


def enqueue(session: Session) -> Callable[[EmailMessage], None]:
    """A `send` for ipam's notifications that queues instead of sending."""
    return lambda msg: queue(session, msg)


def queued(session: Session) -> bool:
    """Whether this session's last transaction queued mail (and forget it)."""
    return bool(session.info.pop(QUEUED_KEY, False))


def backoff(attempts: int) -> timedelta:
    """The wait after the n-th failed attempt: 1, 2, 4 ... minutes, at most a day."""
    return min(FIRST_RETRY * (2 ** max(attempts - 1, 0)), timedelta(days=1))


@dataclass
class Delivery:
    sent: list[int] = field(default_factory=list)
    retried: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)

    def summary(self) -> dict:
        return {"sent": len(self.sent), "retried": len(self.retried), "failed": len(self.failed)}


def _claim(session: Session, now: datetime) -> OutboxMessage | None:
    """The oldest due message, marked "sending" in its own committed transaction."""
    with transaction(session):
        q = (
            select(OutboxMessage)
            .where(
                OutboxMessage.status == OutboxStatus.PENDING,
                OutboxMessage.next_attempt_at <= now,
            )
            .order_by(OutboxMessage.id)
            .limit(1)
        )
        if session.get_bind().dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        row = session.scalars(q).first()
        if row is None:
            return None
        # The status in the WHERE makes the claim safe on SQLite too (one writer at a time).
        taken = session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == row.id, OutboxMessage.status == OutboxStatus.PENDING)
            .values(status=OutboxStatus.SENDING, attempts=OutboxMessage.attempts + 1)
        ).rowcount
        if not taken:
            return None
        session.refresh(row)
        return row


def deliver(
    session: Session,
    send: Callable[[EmailMessage], None],
    *,
    now: datetime | None = None,
    limit: int = 100,
) -> Delivery:
    """Send what is due, each message in its own transactions (claim, then outcome)."""
    result = Delivery()
    for _ in range(limit):
        at = now or utcnow()
        row = _claim(session, at)
        if row is None:
            break
        msg = message_from_bytes(bytes(row.message), policy=default_policy)
        try:
            send(msg)
        except OSError as exc:  # smtplib's errors are OSErrors too
            with transaction(session):
                row.last_error = f"{type(exc).__name__}: {exc}"[:2000]
                if row.attempts >= MAX_ATTEMPTS:
                    row.status = OutboxStatus.FAILED
                    result.failed.append(row.id)
                else:
                    row.status = OutboxStatus.PENDING
                    row.next_attempt_at = at + backoff(row.attempts)
                    result.retried.append(row.id)
            if not isinstance(exc, MESSAGE_REFUSED):  # the server is away: try again later
                break
            continue
        with transaction(session):
            row.status = OutboxStatus.SENT
            row.sent_at = utcnow()
            row.last_error = None
        result.sent.append(row.id)
    return result
