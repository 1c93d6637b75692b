"""`ipam lab`, `ipam scheduler`, `ipam probe` and `ipam finding`: the probe commands."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import click
from flask import current_app

from ..extensions import db
from .common import (
    _pairs,
    actor_option,
    echo_json,
    init_database,
    ipam,
    json_option,
    lazy,
    start_scheduler,
    transaction,
)

findings = lazy("ipam.findings")
probing = lazy("ipam.probing")


@ipam.group("lab")
def lab_group():
    """The network-namespace probe lab (root only; 198.18.0.0/15 and 2001:db8::/32)."""


_name_option = click.option(
    "--name", default="ipam", show_default=True,
    help="the lab's name (its namespaces NAME-probe and NAME-lab); one per site",
)  # fmt: skip


@lab_group.command("up")
@click.option("--profile", type=click.Choice(["demo", "bench"]), default="demo", show_default=True)
@click.option("--rrl", default=0, show_default=True, help="NSD answers per second per client")
@_name_option
@click.option("--only", help="a site's lab: only these prefixes (comma-separated) reachable")
@click.option(
    "--env-file",
    type=click.Path(dir_okay=False),
    help="also write the probe settings to this file (KEY=VALUE), for a worker",
)
def lab_up(profile, rrl, name, only, env_file):
    """Build the lab and point this instance's probes at it."""
    from probes import lab

    why = lab.can_run()
    if why:
        raise click.ClickException(why)
    if not name.replace("-", "").isalnum() or len(name) > 10:
        raise click.BadParameter("letters, digits and -, at most 10", param_hint="--name")
    prefixes = [p.strip() for p in (only or "").split(",") if p.strip()] or None
    try:
        the_lab = lab.Lab(name, only=prefixes)
    except Exception as exc:  # noqa: BLE001 - a bad prefix: say which
        raise click.BadParameter(str(exc), param_hint="--only") from None
    info = the_lab.up(profile, rrl=rrl)
    settings = {k: v for k, v in info.items() if k.startswith("IPAM_")}
    import json

    click.echo(f"lab up ({profile}): probes run in namespace {info['IPAM_PROBE_NETNS']}")
    for key, value in settings.items():
        click.echo(f"  {key}={value}")
    if env_file:
        Path(env_file).write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        click.echo(f"settings written to {env_file}")
    if name == "ipam":  # the instance's own lab: `ipam serve` probes it
        path = Path(current_app.instance_path) / "probe-lab.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings, indent=2))
        click.echo(f"settings written to {path}; `ipam serve` probes the lab on its schedules")


@lab_group.command("down")
@_name_option
def lab_down(name):
    """Remove the lab and this instance's lab settings."""
    from probes import lab

    lab.Lab(name).down()
    if name == "ipam":
        (Path(current_app.instance_path) / "probe-lab.json").unlink(missing_ok=True)
    click.echo("lab down")


@lab_group.command("status")
@_name_option
def lab_status(name):
    """Show whether the probe lab is up."""
    from probes import lab

    the_lab = lab.Lab(name)
    click.echo("up" if the_lab.is_up() else "down")


@ipam.command("scheduler")
def scheduler_cmd():
    """Run the probe scheduler (production: one such process beside the web workers)."""
    init_database()
    sched = start_scheduler()
    click.echo(f"probe scheduler {sched.holder} started (fires while it holds the lease)")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    sched.stop()
    click.echo("probe scheduler stopped")


@ipam.group("probe")
def probe_group():
    """Probe schedules and runs (clause 19)."""


@probe_group.command("add")
@click.argument("name")
@click.option("--pool")
@click.option("--customer")
@click.option("--cron", required=True, help="e.g. '*/10 * * * *' (six fields: seconds first)")
@click.option("--methods", default="icmp,dns,blocklist", show_default=True)
@click.option("--ports", "tcp_ports", default="", help="TCP ports for the tcp method")
@click.option("--dark-after", default=3, show_default=True)
@actor_option
def probe_add(name, pool, customer, cron, methods, tcp_ports, dark_after, actor):
    """Add a probe schedule for a pool or a customer."""
    data = {
        "name": name,
        "pool": pool,
        "customer": customer,
        "cron": cron,
        "methods": methods,
        "tcp_ports": tcp_ports,
        "dark_after": dark_after,
    }
    with transaction() as s:
        sched = probing.add_schedule(s, data, actor=actor)
        click.echo(f"probe schedule {sched.id} ({sched.name}) added")


@probe_group.command("update")
@click.argument("schedule")
@click.option(
    "--set",
    "pairs",
    multiple=True,
    required=True,
    metavar="FIELD=VALUE",
    help="e.g. --set cron='0 * * * *' --set enabled=false",
)
@actor_option
def probe_update(schedule, pairs, actor):
    """Change a probe schedule."""
    with transaction() as s:
        sched = probing.update_schedule(s, schedule, _pairs(pairs), actor=actor)
        click.echo(f"probe schedule {sched.id} ({sched.name}) updated")


@probe_group.command("list")
def probe_list():
    """List probe schedules."""
    for s in probing.list_schedules(db.session)[0]:
        target = f"pool {s.pool.name}" if s.pool else f"customer {s.customer.name}"
        state = "" if s.enabled else " (disabled)"
        click.echo(f"{s.id:4} {s.name:24} {s.cron:16} {','.join(s.methods):22} {target}{state}")


@probe_group.command("run")
@click.argument("schedule")
@click.option("--queue", is_flag=True, help="leave it to the scheduler instead of running here")
@actor_option
def probe_run(schedule, queue, actor):
    """Run a schedule now, here (root, inside the probe namespace), or queue it."""
    from probes import runner

    if queue:
        with transaction() as s:
            run = probing.request_run(s, schedule, actor=actor)
        from ipam.jobs import broker

        if broker.configured(current_app.config):  # to its site's queue now
            broker.hand_over(db.engine, current_app.config)
        click.echo(f"run {run.id} queued" + (f" at {run.site}" if run.site != "default" else ""))
        return
    with transaction() as s:
        sched = probing.get_schedule(s, schedule)
        run = probing.start_run(s, sched.id, trigger="manual", actor=actor)
    run = runner.execute(db.session, run.id, runner.Settings.from_config(current_app.config))
    click.echo(
        f"run {run.id}: {run.status}; {run.targets} targets, {run.answered} answered, "
        f"{run.findings_raised} new finding(s)" + (f"; {run.error}" if run.error else "")
    )
    if run.status != "done":
        raise SystemExit(1)


@probe_group.command("runs")
@click.option("--schedule")
@json_option
def probe_runs(schedule, as_json):
    """List recent probe runs."""
    sid = probing.get_schedule(db.session, schedule).id if schedule else None
    runs, _ = probing.list_runs(db.session, schedule_id=sid, limit=50)
    if as_json:
        return echo_json(runs, "probes:RunOut")
    for r in runs:
        click.echo(
            f"{r.id:5} {r.schedule.name:20} {r.trigger:8} {r.status:7} "
            f"{r.queued_at:%Y-%m-%d %H:%M:%S} targets={r.targets} answered={r.answered} "
            f"new_findings={r.findings_raised}"
            + (f" site={r.site} by={r.claimed_by}" if r.claimed_by else "")
            + (f" error={r.error}" if r.error else "")
        )


@ipam.group("finding")
def finding_group():
    """What the probes found."""


@finding_group.command("list")
@click.option(
    "--status", default="open", show_default=True, type=click.Choice(["open", "resolved", "all"])
)
@click.option("--kind")
@click.option("--customer")
@json_option
def finding_list(status, kind, customer, as_json):
    """List what the probes found."""
    from ipam.customers import get_customer

    cid = get_customer(db.session, customer).id if customer else None
    rows, total = findings.list_findings(
        db.session,
        status=None if status == "all" else status,
        kind=kind,
        customer_id=cid,
        limit=1000,
    )
    if as_json:
        return echo_json(rows, "probes:FindingOut")
    for f in rows:
        who = f.customer.name if f.customer else "-"
        click.echo(f"{f.id:5} {f.kind.value:20} {f.prefix:22} x{f.count:<4} {who}  {f.summary}")
    click.echo(f"{total} finding(s)")


@finding_group.command("resolve")
@click.argument("finding_id")
@click.option("--comment", required=True)
@actor_option
def finding_resolve(finding_id, comment, actor):
    """Resolve a finding with a comment."""
    with transaction() as s:
        f = findings.resolve_finding(s, finding_id, comment, actor=actor)
    click.echo(f"finding {f.id} resolved")
