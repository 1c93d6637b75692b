"""One probe run: plan it (ipam/), probe (network phase, no transaction open), record it.

The network phase runs inside the configured network namespace when one is
set (IPAM_PROBE_NETNS, the lab's probe side), and every target is checked
against PROBE_SCOPE before the first packet of the run leaves.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass, field

from ipam import findings, probing
from ipam.abuse.ingest import DEFAULT_POLICY, Policy
from ipam.db import chunk_done
from ipam.errors import IpamError
from ipam.models import ProbeRun

from . import dnscheck, netns, sweep
from .scope import ProbeScope

log = logging.getLogger(__name__)


@dataclass
class Settings:
    scope: ProbeScope
    netns: str | None = None
    dns_servers: list[str] = field(default_factory=list)
    blocklists: list[str] = field(default_factory=list)
    timeout: float = 1.0
    retries: int = 1
    rate: float | None = 20000.0  # packets per second, per run
    abuse_policy: Policy = DEFAULT_POLICY  # blocklist hits become abuse reports

    @classmethod
    def from_config(cls, config) -> Settings:
        def items(key):
            return [x for x in str(config.get(key) or "").replace(",", " ").split() if x]

        rate = float(config.get("IPAM_PROBE_RATE") or 0) or None
        return cls(
            scope=ProbeScope.parse(config.get("IPAM_PROBE_SCOPE")),
            netns=config.get("IPAM_PROBE_NETNS") or None,
            dns_servers=items("IPAM_PROBE_DNS"),
            blocklists=items("IPAM_PROBE_BLOCKLISTS"),
            timeout=float(config.get("IPAM_PROBE_TIMEOUT") or 1.0),
            retries=int(config.get("IPAM_PROBE_RETRIES") or 1),
            rate=rate,
            abuse_policy=Policy.from_config(config),
        )


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
            server = settings.dns_servers[0]
            if "dns" in plan.methods:
                reverse.extend(
                    dnscheck.check_reverse(family, checked, server=server, scope=settings.scope)
                )
            if "blocklist" in plan.methods and settings.blocklists:
                listings.extend(
                    dnscheck.check_blocklists(family, checked, settings.blocklists, server=server)
                )
    return observations, reverse, listings


def _keep(session) -> None:
    """A run keeps each phase (plan, then results) as it goes: the network phase holds no
    transaction open, however long it takes."""
    chunk_done(session)()


def run_job(session, config, *, schedule_id=None, run_id=None, run_by: str = "scheduler") -> dict:
    """The probe_run job (ipam.jobs): start a scheduled run, or carry out a claimed one."""
    if run_id is None:
        run_id = probing.start_run(session, schedule_id, trigger="schedule", actor=run_by).id
        _keep(session)
    run = execute(session, run_id, Settings.from_config(config))
    return {
        "run_id": run.id,
        "status": run.status,
        "targets": run.targets,
        "answered": run.answered,
        "findings": run.findings_raised,
    }


def execute(session, run_id: int, settings: Settings) -> ProbeRun:
    """Carry out a started (running) run to done or failed; the run row records either."""
    try:
        plan = probing.plan_run(session, run_id)
        _keep(session)
        observations, reverse, listings = probe(plan, settings)
        run = findings.record_results(
            session, run_id, observations, reverse, listings, abuse_policy=settings.abuse_policy
        )
        _keep(session)
        return run
    except (IpamError, OSError) as exc:
        session.rollback()
        log.warning("probe run %s failed: %s", run_id, exc)
        run = probing.fail_run(session, run_id, str(exc))
        _keep(session)
        return run
    except Exception as exc:
        session.rollback()
        log.exception("probe run %s failed", run_id)
        run = probing.fail_run(session, run_id, "".join(traceback.format_exception_only(exc)))
        _keep(session)
        return run
