"""Data centres ("sites"), their probe workers, and which worker holds which probe run.

An ISP's space is reachable for probing only from inside the data centre that
routes it. A pool belongs to a data centre (or inherits its parent's; with
none it is in the implicit site "default", which is all the embedded product
needs). A probe schedule runs at its own data centre if set, else at its pool's.

With a broker (ipam/jobs/broker.py) each run is handed to its site's queue and
a worker there claims it. The claim is the one guard against recording a run
twice: a worker claims a queued run, or a running one whose claimant stopped
beating (killed); the recorder must still hold the claim's token when it
writes (findings.record_results, probing.fail_run). Workers beat in the
probe_worker table; a site whose workers are all silent shows its runs as
waiting, with the reason, on the dashboard.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from . import audit
from .db import utcnow
from .errors import NotFound, StateConflict, ValidationError
from .models import DataCentre, Pool, ProbeRun, ProbeSchedule, ProbeWorker

DEFAULT = "default"
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
HEARTBEAT_SECONDS = 10  # how often a worker beats (IPAM_WORKER_HEARTBEAT)
STALE_BEATS = 3  # a worker silent for this many beats is taken for dead


def stale_after(config=None) -> timedelta:
    beat = float((config or {}).get("IPAM_WORKER_HEARTBEAT") or HEARTBEAT_SECONDS)
    return timedelta(seconds=beat * STALE_BEATS)


def check_name(value, field: str = "site") -> str:
    name = str(value or "").strip().lower()
    if not NAME.match(name):
        raise ValidationError(
            "{name!r} is not a data centre name (lower-case letters, digits, - and _; at most 64)",
            field,
            name=str(value or ""),
        )
    return name


# --------------------------------------------------------------------------- the register


def add(session: Session, name, *, actor: str, description: str = "") -> DataCentre:
    name = check_name(name, "name")
    if name == DEFAULT:
        raise ValidationError(
            "{name!r} is the implicit data centre; it needs no row", "name", name=name
        )
    if session.scalar(select(DataCentre.id).where(DataCentre.name == name)):
        raise ValidationError("a data centre named {name!r} exists already", "name", name=name)
    dc = DataCentre(name=name, description=str(description or "")[:2000], created_at=utcnow())
    session.add(dc)
    session.flush()
    audit.record(session, actor, "data_centre.add", dc, {"name": name})
    return dc


def get(session: Session, ref, field: str = "site") -> DataCentre:
    q = select(DataCentre)
    text = str(ref or "").strip()
    q = q.where(DataCentre.id == int(text)) if text.isdigit() else q.where(DataCentre.name == text)
    dc = session.scalar(q)
    if dc is None:
        raise NotFound("no data centre {ref!r}", field, ref=text)
    return dc


def list_all(session: Session) -> list[DataCentre]:
    return list(session.scalars(select(DataCentre).order_by(DataCentre.name)))


def place_pool(session: Session, pool: Pool, site, *, actor: str) -> Pool:
    """Put a pool (and the pools inside it that name no site) in a data centre; "default"
    or empty puts it back in its parent's."""
    text = str(site or "").strip()
    dc = None if text in ("", DEFAULT) else get(session, text)
    before = site_of_pool(session, pool)
    pool.data_centre_id = dc.id if dc else None
    session.flush()
    audit.record(
        session, actor, "pool.site", pool, {"before": before, "after": site_of_pool(session, pool)}
    )
    return pool


def site_of_pool(session: Session, pool: Pool | None) -> str:
    """The pool's own site, else its nearest ancestor's, else the default."""
    seen = set()
    while pool is not None and pool.id not in seen:
        seen.add(pool.id)
        if pool.data_centre_id is not None:
            return session.get(DataCentre, pool.data_centre_id).name
        pool = session.get(Pool, pool.parent_id) if pool.parent_id else None
    return DEFAULT


def site_of_schedule(session: Session, schedule: ProbeSchedule) -> str:
    if schedule.data_centre_id is not None:
        return session.get(DataCentre, schedule.data_centre_id).name
    return site_of_pool(session, schedule.pool) if schedule.pool_id else DEFAULT


# --------------------------------------------------------------------------- workers


def beat(session: Session, name: str, site: str, *, done: int = 0) -> None:
    """A worker is alive (called every HEARTBEAT_SECONDS from the worker process)."""
    now = utcnow()
    row = session.get(ProbeWorker, name)
    if row is None:
        session.add(ProbeWorker(name=name, site=site, started_at=now, last_seen=now, runs=done))
    else:
        row.site, row.last_seen, row.stopped_at = site, now, None
        row.runs += done
    session.flush()


def stopped(session: Session, name: str) -> None:
    """A worker shut down cleanly: its runs need not wait for its heartbeat to go stale."""
    session.execute(update(ProbeWorker).where(ProbeWorker.name == name).values(stopped_at=utcnow()))


def _dead(stale: timedelta, now: datetime):
    """Workers that stopped, or stopped beating."""
    return select(ProbeWorker.name).where(
        or_(ProbeWorker.stopped_at.is_not(None), ProbeWorker.last_seen < now - stale)
    )


def claim(session: Session, run_id: int, worker: str, site: str, stale: timedelta) -> str | None:
    """Take a run for `worker`: a queued one, or a running one whose claimant is dead.

    One UPDATE guarded by the run's state: two workers racing for the same run
    cannot both win. Returns the claim's token, or None when the run is not
    this worker's to take (done, failed, another site's, or held by a live worker).
    """
    now = utcnow()
    token = secrets.token_hex(16)
    taken = session.execute(
        update(ProbeRun)
        .where(
            ProbeRun.id == run_id,
            ProbeRun.site == site,
            or_(
                ProbeRun.status == "queued",
                and_(
                    ProbeRun.status == "running",
                    ProbeRun.claimed_by.in_(_dead(stale, now)),
                ),
            ),
        )
        .values(
            status="running",
            claimed_by=worker,
            claim=token,
            started_at=now,
            attempts=ProbeRun.attempts + 1,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    return token if taken else None


def holds(session: Session, run: ProbeRun, token: str | None) -> None:
    """The recorder's check: refuse to write a run whose claim passed to another worker."""
    if token is not None and run.claim != token:
        raise StateConflict(
            "probe run {run_id} was taken over by {worker}", "run",
            run_id=run.id, worker=run.claimed_by or "-",
        )  # fmt: skip


def to_hand_over(session: Session, stale: timedelta, resend_after: timedelta) -> list[ProbeRun]:
    """Runs the broker should be given (again): queued ones not handed over lately (a
    broker restarted without its queue loses them), and running ones whose worker died."""
    now = utcnow()
    q = select(ProbeRun).where(
        or_(
            and_(
                ProbeRun.status == "queued",
                or_(ProbeRun.enqueued_at.is_(None), ProbeRun.enqueued_at < now - resend_after),
            ),
            and_(
                ProbeRun.status == "running",
                ProbeRun.claimed_by.in_(_dead(stale, now)),
                or_(ProbeRun.enqueued_at.is_(None), ProbeRun.enqueued_at < now - resend_after),
            ),
        )
    )
    return list(session.scalars(q.order_by(ProbeRun.id).limit(500)))


@dataclass(frozen=True)
class SiteHealth:
    """One site as the dashboard shows it: its live workers and its waiting runs."""

    site: str
    live: list[str]
    waiting: int
    oldest: datetime | None
    last_seen: datetime | None  # of its latest worker, live or not

    @property
    def reason(self) -> str:
        """Why its runs wait: "" (they do not, or a worker is live), "never" or "silent"."""
        if self.live or not self.waiting:
            return ""
        return "silent" if self.last_seen else "never"


def health(session: Session, config=None) -> list[SiteHealth]:
    """Every site with a worker or a waiting run; sites whose runs wait for nobody first."""
    now = utcnow()
    stale = stale_after(config)
    workers: dict[str, list[ProbeWorker]] = {}
    for w in session.scalars(select(ProbeWorker).order_by(ProbeWorker.name)):
        workers.setdefault(w.site, []).append(w)
    waiting = {
        site: (n, oldest)
        for site, n, oldest in session.execute(
            select(ProbeRun.site, func.count(), func.min(ProbeRun.queued_at))
            .where(ProbeRun.status == "queued")
            .group_by(ProbeRun.site)
        )
    }
    sites = sorted(set(workers) | set(waiting) | {dc.name for dc in list_all(session)})
    out = []
    for site in sites:
        ws = workers.get(site, [])
        live = [w.name for w in ws if w.stopped_at is None and w.last_seen >= now - stale]
        n, oldest = waiting.get(site, (0, None))
        last = max((w.last_seen for w in ws), default=None)
        out.append(SiteHealth(site, live, n, oldest, last))
    out.sort(key=lambda h: (not h.reason, h.site))
    return out


@dataclass(frozen=True)
class Overview:
    """A data centre as its page shows it: the register's row, its pools, its workers."""

    name: str
    description: str
    pools: list[Pool]  # placed there directly (their children follow them)
    health: SiteHealth


def overview(session: Session, config=None) -> list[Overview]:
    """Every data centre (the implicit default too when it has pools, workers or runs)."""
    by_site = {h.site: h for h in health(session, config)}
    placed: dict[int, list[Pool]] = {}
    for pool in session.scalars(
        select(Pool).where(Pool.data_centre_id.is_not(None)).order_by(Pool.family, Pool.first)
    ):
        placed.setdefault(pool.data_centre_id, []).append(pool)
    out = []
    for dc in list_all(session):
        idle = SiteHealth(dc.name, [], 0, None, None)
        out.append(
            Overview(dc.name, dc.description, placed.get(dc.id, []), by_site.get(dc.name, idle))
        )
    if DEFAULT in by_site:
        out.insert(0, Overview(DEFAULT, "", [], by_site[DEFAULT]))
    return out
