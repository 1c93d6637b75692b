"""The web side's one touch of the scheduler: wake it when a run is asked for."""

from __future__ import annotations


def wake_scheduler() -> None:
    """In the embedded default the scheduler lives in this process: start the run at once."""
    from ipam.jobs.scheduler import current

    sched = current()
    if sched is not None:
        sched.wake()
