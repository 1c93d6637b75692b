"""`ipam whois`: who held an address at a time. A module of its own, so that asking loads
the attribution and nothing of the ledger's other commands (it should answer at once)."""

from __future__ import annotations

import json

import click

from ipam import attribution

from .common import actor_option, display_zone, format_attribution, ipam, transaction


@ipam.command("whois")
@click.argument("address")
@click.option("--at", help="ISO 8601 instant with zone, e.g. 2026-01-01T00:00:00+08:00")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@click.option("--reveal", is_flag=True, help="show personal data unmasked (audited)")
@click.option("--reason", help="why personal data is revealed (with --reveal)")
@actor_option
def whois_cmd(address, at, as_json, reveal, reason, actor):
    """Who held ADDRESS at a time (default now)."""
    with transaction() as s:
        if reveal:
            result = attribution.reveal(s, address, at, actor=actor, reason=reason)
        else:
            result = attribution.attribution(s, address, at).masked()
    if as_json:
        click.echo(json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
    else:
        click.echo(format_attribution(result, display_zone()))
