"""One probe run: plan it (ipam/), probe (network phase, no transaction open), record it.

The network phase runs inside the configured network namespace when one is
set (IPAM_PROBE_NETNS, the lab's probe side), and every target is checked
against PROBE_SCOPE before the first packet of the run leaves.
"""

from __future__ import annotations

import logging
import traceback

from ipam import datacentres, findings, probing
from ipam.db import chunk_done
from ipam.errors import IpamError, StateConflict
from ipam.jobs import broker
from ipam.models import ProbeRun

from . import dnscheck, netns, sweep
from .settings import Settings

log = logging.getLogger(__name__)


def probe(plan: probing.Plan, settings: Settings):
    """The network phase: observations, reverse-DNS results and blocklist listings."""
    for family, targets in plan.targets.items():  # the whole run is refused before any send
        settings.scope.check_targets(family, targets)
    observations, reverse, listings = [], [], []
    kw = dict(
        scope=settings.scope, timeout=settings.timeout, retries=settings.retries, rate=settings.rate
    )
    with netns.entered(settings.netns):
        own = netns.own_addresses()
        for family, targets in plan.targets.items():
            targets = [v for v in targets if v not in own.get(family, ())]
            held = plan.held.get(family, set())
            answered: set[int] = set()
            if "icmp" in plan.methods:
                obs = sweep.sweep(family, targets, methods=("icmp",), **kw)
                observations.extend(obs)
                answered = {o.address for o in obs if o.answered}
            if "tcp" in plan.methods and plan.tcp_ports:
                # Services are checked where someone is: held space and whatever answered
                # (a whole /16 times every port would be a port scan, not an investigation).
                wanted = answered | held if "icmp" in plan.methods else set(targets)
                tcp_targets = [v for v in targets if v in wanted]
                obs = sweep.sweep(family, tcp_targets, methods=("tcp",), ports=plan.tcp_ports, **kw)
                observations.extend(obs)
                answered |= {o.address for o in obs if o.answered}
            checked = sorted(answered | held)
            if not checked or not settings.dns_servers:
                continue
            dns = settings.dns_servers[0]
            at = {"server": dns.host, "port": dns.port}
            if "dns" in plan.methods:
                reverse.extend(dnscheck.check_reverse(family, checked, scope=settings.scope, **at))
            if "blocklist" in plan.methods and settings.blocklists:
                listings.extend(
                    dnscheck.check_blocklists(family, checked, settings.blocklists, **at)
                )
    return observations, reverse, listings


def _keep(session) -> None:
    """A run keeps each phase (plan, then results) as it goes: the network phase holds no
    transaction open, however long it takes."""
    chunk_done(session)()


def run_job(
    session, config, *, schedule_id=None, run_id=None, run_by: str = "scheduler",
    worker: str | None = None, site: str | None = None,
) -> dict:  # fmt: skip
    """The probe_run job (ipam.jobs): start a scheduled run, or carry out a claimed one.

    With a broker the scheduler only queues the run (its site's worker probes); a
    worker (`worker`, `site`) claims the run first, and records through its claim.
    """
    claim = None
    if worker is not None:
        claim = datacentres.claim(session, run_id, worker, site, datacentres.stale_after(config))
        _keep(session)
        if claim is None:  # done already, or held by a live worker: nothing to do here
            run = probing.get_run(session, run_id)
            return {"run_id": run_id, "status": "skipped", "run_status": run.status}
    elif run_id is None and broker.configured(config):
        run = probing.start_run(session, schedule_id, trigger="schedule", actor=run_by, queued=True)
        _keep(session)
        return {"run_id": run.id, "status": "queued", "site": run.site}
    try:  # wrong settings: refused before a packet is sent, naming the setting
        settings = Settings.from_config(config)
    except IpamError as exc:
        if run_id is not None:  # a claimed run ends failed, with the reason, not left running
            probing.fail_run(session, run_id, exc, claim=claim)
            _keep(session)
        raise
    if run_id is None:
        run_id = probing.start_run(session, schedule_id, trigger="schedule", actor=run_by).id
        _keep(session)
    run = execute(session, run_id, settings, claim=claim)
    return {
        "run_id": run.id,
        "status": run.status,
        "targets": run.targets,
        "answered": run.answered,
        "findings": run.findings_raised,
    }


def execute(session, run_id: int, settings: Settings, *, claim: str | None = None) -> ProbeRun:
    """Carry out a started (running) run to done or failed; the run row records either.

    A worker's `claim` goes with every write: a run taken over meanwhile (this worker was
    taken for dead) is left to its new worker, and the StateConflict says so."""
    try:
        plan = probing.plan_run(session, run_id)
        _keep(session)
        observations, reverse, listings = probe(plan, settings)
        run = findings.record_results(
            session, run_id, observations, reverse, listings,
            abuse_policy=settings.abuse_policy, claim=claim,
        )  # fmt: skip
        _keep(session)
        return run
    except (IpamError, OSError) as exc:
        session.rollback()
        if claim is not None and isinstance(exc, StateConflict):  # taken over: not ours
            raise
        log.warning("probe run %s failed: %s", run_id, exc)
        error = exc if isinstance(exc, IpamError) else str(exc)
        run = probing.fail_run(session, run_id, error, claim=claim)
        _keep(session)
        return run
    except Exception as exc:
        session.rollback()
        log.exception("probe run %s failed", run_id)
        error = "".join(traceback.format_exception_only(exc))
        run = probing.fail_run(session, run_id, error, claim=claim)
        _keep(session)
        return run
