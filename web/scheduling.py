"""The web side's one touch of the scheduler: a run was asked for, start it soon."""

from __future__ import annotations


def wake_scheduler() -> None:
    """With a broker: hand the queued runs to their sites' queues now (not at the scheduler's
    next pass). Embedded: the scheduler lives in this process; start the run at once."""
    from flask import current_app

    from ipam.jobs import broker
    from ipam.jobs.scheduler import current

    if broker.configured(current_app.config):
        from .extensions import db

        broker.hand_over(db.engine, current_app.config)
        return
    sched = current()
    if sched is not None:
        sched.wake()
