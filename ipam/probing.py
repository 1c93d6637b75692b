"""Clause 19 investigations: probe schedules, their runs and what each run looks at.

A schedule names one pool or one customer, a cron expression and the methods
(icmp, tcp, dns, blocklist). A run is planned here (the targets and the held
space they fall in), executed by probes/ outside any transaction, and its
results come back through findings.record_results. Every run leaves a row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit, datacentres, validation
from .addresses import from_bytes
from .customers import get_customer
from .db import utcnow
from .errors import IpamError, NotFound, Phrase, StateConflict, ValidationError
from .listing import ALL, Window, fetch
from .lookup import find_by_ref
from .models import Allocation, ProbeObservation, ProbeRun, ProbeSchedule, Quarantine
from .pools import get_pool

METHODS = ("icmp", "tcp", "dns", "blocklist")
FIELDS = (
    "name", "pool", "customer", "cron", "methods", "tcp_ports", "dark_after", "enabled", "site",
)  # fmt: skip
MAX_TARGETS = 1 << 18  # a /14 of IPv4 per run; bigger pools are scheduled in parts
V6_PER_BLOCK = 256  # IPv6 space cannot be swept: the first addresses of each held block


def cron_trigger(text: str, timezone=None) -> CronTrigger:
    """Five fields (minute hour day month weekday), or six with seconds first."""
    parts = text.split()
    if len(parts) == 6:
        second, minute, hour, day, month, dow = parts
        return CronTrigger(
            second=second,
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=dow,
            timezone=timezone,
        )
    return CronTrigger.from_crontab(text, timezone=timezone)


def check_cron(value, field: str = "cron") -> str:
    text = " ".join(validation.required(value, field, 100).split())
    try:
        cron_trigger(text, "UTC")
    except (ValueError, TypeError) as exc:
        raise ValidationError(
            "{text!r} is not a cron expression ({exc})", field, text=text, exc=exc
        ) from None
    return text


def _methods(value) -> list[str]:
    items = value.replace(",", " ").split() if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ValidationError(
            "name one or more of {choices}", "methods", choices=", ".join(METHODS)
        )
    for item in items:
        if item not in METHODS:
            raise ValidationError(
                "{item!r} is not one of {choices}", "methods", item=item, choices=", ".join(METHODS)
            )
    return [m for m in METHODS if m in items]


def _ports(value) -> list[int]:
    if value in (None, ""):
        return []
    items = value.replace(",", " ").split() if isinstance(value, str) else value
    if not isinstance(items, list):
        raise ValidationError("must be a list of port numbers", "tcp_ports")
    out = set()
    for item in items:
        try:
            port = int(item)
        except (TypeError, ValueError):
            port = -1
        if not 0 < port < 65536 or isinstance(item, bool):
            raise ValidationError("{item!r} is not a TCP port (1-65535)", "tcp_ports", item=item)
        out.add(port)
    return sorted(out)


def _positive(value, field: str, top: int) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ValidationError("must be a whole number", field) from None
    if not 1 <= n <= top or isinstance(value, bool):
        raise ValidationError("must be between 1 and {top}", field, top=top)
    return n


def _flag(value, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("1", "true", "yes", "on"):
        return True
    if str(value).lower() in ("0", "false", "no", "off", ""):
        return False
    raise ValidationError("must be true or false", field)


def _clean(session: Session, data: dict, *, partial: bool) -> dict:
    unknown = set(data) - set(FIELDS)
    if unknown:
        raise ValidationError("is not a probe schedule field", sorted(unknown)[0])
    out: dict = {}
    if "name" in data:
        out["name"] = validation.required(data["name"], "name")
    for key in ("pool", "customer"):
        if data.get(key) not in (None, ""):
            getter = get_pool if key == "pool" else get_customer
            out[f"{key}_id"] = getter(session, data[key], key).id
        elif key in data:
            out[f"{key}_id"] = None
    if "site" in data:  # where its runs are probed from; empty: its pool's site
        site = str(data["site"] or "").strip()
        out["data_centre_id"] = (
            None if site in ("", datacentres.DEFAULT) else datacentres.get(session, site).id
        )
    if "cron" in data:
        out["cron"] = check_cron(data["cron"])
    if "methods" in data:
        out["methods"] = _methods(data["methods"])
    if "tcp_ports" in data:
        out["tcp_ports"] = _ports(data["tcp_ports"])
    if "dark_after" in data:
        out["dark_after"] = _positive(data["dark_after"], "dark_after", 1000)
    if "enabled" in data:
        out["enabled"] = _flag(data["enabled"], "enabled")
    if not partial:
        for key in ("name", "cron"):
            if key not in out:
                raise ValidationError("is required", key)
        out.setdefault("methods", ["icmp", "dns", "blocklist"])
    return out


def _check_whole(values: dict) -> None:
    """Cross-field rules (on the merged values; ports without tcp are dropped)."""
    if "tcp" not in values.get("methods", []):
        values["tcp_ports"] = []
    if (values.get("pool_id") is None) == (values.get("customer_id") is None):
        raise ValidationError("name either a pool or a customer to probe", "pool")
    if "tcp" in values.get("methods", []) and not values.get("tcp_ports"):
        raise ValidationError("are required when the methods include tcp", "tcp_ports")


def _snapshot(s: ProbeSchedule) -> dict:
    return {
        "name": s.name,
        "pool_id": s.pool_id,
        "customer_id": s.customer_id,
        "cron": s.cron,
        "methods": s.methods,
        "tcp_ports": s.tcp_ports,
        "dark_after": s.dark_after,
        "enabled": s.enabled,
        "data_centre_id": s.data_centre_id,
    }


def _unique_name(session: Session, name: str, own_id: int | None = None) -> None:
    other = session.execute(select(ProbeSchedule.id).where(ProbeSchedule.name == name)).scalar()
    if other is not None and other != own_id:
        raise ValidationError("a probe schedule named {name!r} exists", "name", name=name)


def get_schedule(session: Session, ref, field: str = "schedule") -> ProbeSchedule:
    found = find_by_ref(
        session, ProbeSchedule, ref, field, "probe schedule", lambda t: ProbeSchedule.name == t
    )
    if found is None:
        raise NotFound("no probe schedule {ref!r}", field, ref=ref)
    return found


def add_schedule(session: Session, data: dict, *, actor: str) -> ProbeSchedule:
    values = _clean(session, data, partial=False)
    values.setdefault("tcp_ports", [])
    _check_whole(values)
    _unique_name(session, values["name"])
    schedule = ProbeSchedule(**values, created_at=utcnow(), updated_at=utcnow())
    session.add(schedule)
    session.flush()
    audit.record(session, actor, "probe_schedule.add", schedule, _snapshot(schedule))
    return schedule


def update_schedule(session: Session, ref, data: dict, *, actor: str) -> ProbeSchedule:
    schedule = get_schedule(session, ref)
    values = _clean(session, data, partial=True)
    merged = {**_snapshot(schedule), **values}
    _check_whole(merged)
    values["tcp_ports"] = merged["tcp_ports"]
    if "name" in values:
        _unique_name(session, values["name"], schedule.id)
    for key, value in values.items():
        setattr(schedule, key, value)
    schedule.updated_at = utcnow()
    session.flush()
    audit.record(session, actor, "probe_schedule.update", schedule, values)
    return schedule


def list_schedules(session: Session, window: Window = ALL) -> tuple[list[ProbeSchedule], int]:
    """Probe schedules in the order they were made: (rows, total)."""
    return fetch(session, select(ProbeSchedule).order_by(ProbeSchedule.id), window)


# --------------------------------------------------------------------------- runs


def request_run(session: Session, ref, *, actor: str) -> ProbeRun:
    """ "Run now": queue a run the scheduler picks up within seconds."""
    schedule = get_schedule(session, ref)
    waiting = session.execute(
        select(ProbeRun.id).where(
            ProbeRun.schedule_id == schedule.id, ProbeRun.status.in_(("queued", "running"))
        )
    ).scalar()
    if waiting is not None:
        raise StateConflict(
            "run {waiting} of this schedule is already waiting or running",
            "schedule",
            waiting=waiting,
        )
    run = ProbeRun(
        schedule_id=schedule.id,
        trigger="manual",
        status="queued",
        requested_by=actor,
        queued_at=utcnow(),
        site=datacentres.site_of_schedule(session, schedule),
    )
    session.add(run)
    session.flush()
    audit.record(session, actor, "probe_run.request", run, {"schedule_id": schedule.id})
    return run


def start_run(
    session: Session, schedule_id: int, *, trigger: str, actor: str, queued: bool = False
) -> ProbeRun:
    """A run fired by the schedule's timer (or the CLI), started at once; or, `queued`,
    left for a worker of its site (with a broker)."""
    schedule = get_schedule(session, schedule_id)
    now = utcnow()
    run = ProbeRun(
        schedule_id=schedule.id,
        trigger=trigger,
        status="queued" if queued else "running",
        requested_by=actor,
        queued_at=now,
        started_at=None if queued else now,
        site=datacentres.site_of_schedule(session, schedule),
    )
    session.add(run)
    session.flush()
    return run


def claim_queued(session: Session, limit: int = 10) -> list[int]:
    """Mark queued runs running (oldest first) and return their ids."""
    q = select(ProbeRun).where(ProbeRun.status == "queued").order_by(ProbeRun.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":  # two claimers never share a run
        q = q.with_for_update(skip_locked=True)
    runs = list(session.execute(q).scalars())
    for run in runs:
        run.status = "running"
        run.started_at = utcnow()
    session.flush()
    return [r.id for r in runs]


def fail_run(
    session: Session, run_id: int, error: str | IpamError, *, claim: str | None = None
) -> ProbeRun:
    """End a run as failed with its reason; a refusal of ours keeps its words and values
    too, so the page shows it in the reader's language. A worker passes its `claim`: a run
    taken over by another worker is not its to end."""
    run = session.get(ProbeRun, run_id, with_for_update=claim is not None)
    datacentres.holds(session, run, claim)
    run.status = "failed"
    run.error = str(error)[:2000]
    if isinstance(error, IpamError):
        run.phrase = Phrase(error.template, **error.params).as_json()
    run.finished_at = utcnow()
    session.flush()
    return run


def get_run(session: Session, ref) -> ProbeRun:
    run = session.get(ProbeRun, int(ref)) if str(ref).isdigit() else None
    if run is None:
        raise NotFound("no probe run {ref!r}", "run", ref=ref)
    return run


def list_runs(session: Session, *, schedule_id=None, status=None, limit=50, offset=0):
    """Probe runs, newest first, of one schedule or status if given: (rows, total)."""
    q = select(ProbeRun)
    if schedule_id is not None:
        q = q.where(ProbeRun.schedule_id == int(schedule_id))
    if status:
        q = q.where(ProbeRun.status == status)
    return fetch(session, q.order_by(ProbeRun.id.desc()), Window(limit, offset))


def run_observations(
    session: Session, run_id: int, limit: int, *, answered_first: bool = False
) -> list[ProbeObservation]:
    """A run's kept observations in address order (answers first if asked), at most `limit`."""
    order = [ProbeObservation.family, ProbeObservation.address, ProbeObservation.method]
    if answered_first:
        order.insert(0, ProbeObservation.answered.desc())
    return list(
        session.scalars(
            select(ProbeObservation)
            .where(ProbeObservation.run_id == run_id)
            .order_by(*order)
            .limit(limit)
        )
    )


# --------------------------------------------------------------------------- plans


@dataclass
class Plan:
    """What one run probes: target addresses per family, and how."""

    run_id: int
    schedule_id: int
    methods: list[str]
    tcp_ports: list[int]
    targets: dict[int, list[int]] = field(default_factory=dict)
    held: dict[int, set[int]] = field(default_factory=dict)  # allocated addresses (DNS checks)

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.targets.values())


def _expand(family: int, first: int, last: int) -> range:
    if family == 6:
        last = min(last, first + V6_PER_BLOCK - 1)
    return range(first, last + 1)


def plan_run(session: Session, run_id: int) -> Plan:
    """The targets of a run: a pool's IPv4 space whole, held blocks otherwise."""
    run = session.get(ProbeRun, run_id)
    schedule = run.schedule
    plan = Plan(run.id, schedule.id, list(schedule.methods), list(schedule.tcp_ports))
    blocks: list[tuple[int, int, int]] = []
    current = select(Allocation).where(Allocation.valid_to.is_(None))
    if schedule.pool_id is not None:
        pool = schedule.pool
        if pool.family == 4:
            blocks.append((4, from_bytes(pool.first), from_bytes(pool.last)))
        inside = (
            Allocation.family == pool.family,
            Allocation.first >= pool.first,
            Allocation.last <= pool.last,
        )
        allocs = list(session.execute(current.where(*inside)).scalars())
        quarantined = session.execute(
            select(Quarantine).where(
                Quarantine.released_at.is_(None),
                Quarantine.family == pool.family,
                Quarantine.first >= pool.first,
                Quarantine.last <= pool.last,
            )
        ).scalars()
        extra = [*allocs, *quarantined] if pool.family == 6 else []
    else:
        allocs = list(
            session.execute(current.where(Allocation.customer_id == schedule.customer_id)).scalars()
        )
        extra = allocs
    for item in extra:
        blocks.append((item.family, from_bytes(item.first), from_bytes(item.last)))
    seen: dict[int, set[int]] = {}
    for family, first, last in blocks:
        seen.setdefault(family, set()).update(_expand(family, first, last))
        if sum(len(v) for v in seen.values()) > MAX_TARGETS:
            raise ValidationError(
                "more than {MAX_TARGETS} addresses to probe; schedule smaller pools",
                "schedule",
                MAX_TARGETS=MAX_TARGETS,
            )
    plan.targets = {fam: sorted(v) for fam, v in seen.items()}
    for a in allocs:
        plan.held.setdefault(a.family, set()).update(
            _expand(a.family, from_bytes(a.first), from_bytes(a.last))
        )
    run.targets = plan.count
    session.flush()
    return plan


@dataclass(frozen=True)
class Health:
    """How a schedule's runs are going: the last one, and the failures among the recent."""

    schedule: ProbeSchedule
    last: ProbeRun | None
    failed: int  # of the last RECENT runs
    recent: int
    last_failure: ProbeRun | None

    @property
    def advice(self) -> str:
        """What to do about the last failure, as a key the front doors word (see web)."""
        error = (self.last_failure.error or "") if self.last_failure else ""
        if "outside the probe scope" in error:
            return "scope"
        if "network namespace" in error:
            return "netns"
        if error:
            return "other"
        return ""


RECENT = 10


def health(session: Session) -> list[Health]:
    """Every enabled schedule's health, failing ones first (the dashboard's probe card)."""
    out = []
    for sched in session.scalars(
        select(ProbeSchedule).where(ProbeSchedule.enabled.is_(True)).order_by(ProbeSchedule.name)
    ):
        runs = list(
            session.scalars(
                select(ProbeRun)
                .where(ProbeRun.schedule_id == sched.id)
                .order_by(ProbeRun.id.desc())
                .limit(RECENT)
            )
        )
        failed = [r for r in runs if r.status == "failed"]
        out.append(
            Health(
                sched,
                runs[0] if runs else None,
                len(failed),
                len(runs),
                failed[0] if failed else None,
            )  # fmt: skip
        )
    out.sort(key=lambda h: (-h.failed, h.schedule.name))
    return out
