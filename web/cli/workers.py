"""`ipam dc` (data centres, the sites probes run from) and `ipam worker` (Celery, per site)."""

from __future__ import annotations

import click
from flask import current_app

from ..extensions import db
from .common import actor_option, ipam, lazy, transaction

datacentres = lazy("ipam.datacentres")
pools = lazy("ipam.pools")


@ipam.group("dc")
def dc_group():
    """Data centres (sites): where pools are routed and probe workers run."""


@dc_group.command("add")
@click.argument("name")
@click.option("--description", default="")
@actor_option
def dc_add(name, description, actor):
    """Add a data centre NAME (lower-case letters, digits, - and _)."""
    with transaction() as s:
        dc = datacentres.add(s, name, actor=actor, description=description)
        click.echo(
            f"site {dc.id} ({dc.name}) added; its probe worker: ipam worker --site {dc.name}"
        )


@dc_group.command("place")
@click.argument("pool")
@click.argument("site")
@actor_option
def dc_place(pool, site, actor):
    """Put POOL (name, id or prefix) in SITE ("default": back to its parent's)."""
    with transaction() as s:
        p = pools.get_pool(s, pool)
        datacentres.place_pool(s, p, site, actor=actor)
        click.echo(f"pool {p.name} ({p.prefix}) is probed from {datacentres.site_of_pool(s, p)}")


@dc_group.command("list")
def dc_list():
    """Sites with their live workers and waiting runs (a site nobody serves comes first)."""
    from ..messages import catalogue, cli_language

    _ = catalogue(cli_language())
    why = {
        "never": _("no worker has ever served it: start one there (ipam worker --site NAME)"),
        "silent": _("its workers stopped beating: restart them"),
    }
    for h in datacentres.health(db.session, current_app.config):
        click.echo(
            f"{h.site:20} {_('workers')} {len(h.live):2}  {_('waiting')} {h.waiting:4}"
            + (f"  {why[h.reason]}" if h.reason else "")
        )


@ipam.command("worker")
@click.option("--site", help="the data centre whose probe runs it takes (its queue)")
@click.option("--jobs/--no-jobs", default=True, show_default=True,
              help="also run heavy jobs (complaint batches, reports)")  # fmt: skip
@click.option("--loglevel", default="INFO", show_default=True)
def worker_cmd(site, jobs, loglevel):
    """A Celery worker (IPAM_BROKER_URL): probe runs of one site, from inside it, and jobs.

    Run it where the site's space is reachable, with that site's probe settings
    (IPAM_PROBE_NETNS, IPAM_PROBE_SCOPE, IPAM_PROBE_DNS, ...). One task at a time per
    process: start more processes for more.
    """
    from ipam.errors import ValidationError
    from ipam.jobs import broker

    config = current_app.config
    if not broker.configured(config):
        raise ValidationError("set the broker's URL (e.g. redis://127.0.0.1:6379/0)",
                              "IPAM_BROKER_URL")  # fmt: skip
    if site is not None:
        site = datacentres.check_name(site)
        if site != datacentres.DEFAULT:
            datacentres.get(db.session, site)  # a typo must not serve an empty queue
        db.session.rollback()
    elif not jobs:
        raise ValidationError("give --site NAME, or leave --jobs on", "site")
    if site is not None:  # refuse bad probe settings now, not at the first run
        from probes.settings import Settings

        Settings.from_config(config)
    broker.run_worker(db.engine, config, site=site, jobs=jobs, loglevel=loglevel)
