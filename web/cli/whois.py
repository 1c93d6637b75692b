"""`ipam whois`: who held an address at a time. A module of its own, loaded without the rest
of the commands; run as a program it asks through the database driver (direct.py), without
Flask or SQLAlchemy, so that it answers at once. Inside an app (flask's test runner) and with
--reveal (an audited write) it goes through the app's session."""

from __future__ import annotations

import json
import os

import click

from ipam import attribution
from ipam.errors import IpamError

from .group import Launch, Refusal, cli_message, ipam
from .shared import actor_option, format_attribution, zone


@ipam.command("whois", with_appcontext=False)
@click.argument("address")
@click.option("--at", help="ISO 8601 instant with zone, e.g. 2026-01-01T00:00:00+08:00")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@click.option("--reveal", is_flag=True, help="show personal data unmasked (audited)")
@click.option("--reason", help="why personal data is revealed (with --reveal)")
@actor_option
@click.pass_context
def whois_cmd(ctx, address, at, as_json, reveal, reason, actor):
    """Who held ADDRESS at a time (default now)."""
    result = None
    if isinstance(ctx.obj, Launch) and not reveal:
        result = _direct(address, at)
    if result is None:
        result = _through_app(ctx, address, at, reveal, reason, actor)
    if as_json:
        click.echo(json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
    else:
        click.echo(format_attribution(result, _zone()))


def _direct(address, at):
    from ipam.errors import StateConflict

    from . import direct

    try:
        with direct.connect() as conn:
            if conn is None:  # a URL only SQLAlchemy knows: through the app
                return None
            return attribution.attribution(conn, address, at).masked()
    except IpamError as exc:
        raise Refusal(cli_message(exc)) from None
    except direct.Unreachable as exc:
        refusal = StateConflict(
            "cannot reach the database: {reason}", "IPAM_DATABASE_URL", reason=str(exc)
        )
        raise Refusal(cli_message(refusal)) from None
    except Exception as exc:
        if not isinstance(exc, direct.NoSchema) and not direct.no_schema(exc):
            raise
        refusal = StateConflict(
            "the database has no tables yet: run `ipam init` (or `ipam demo`)",
            "IPAM_DATABASE_URL",
        )
        raise Refusal(cli_message(refusal)) from None


def _through_app(ctx, address, at, reveal, reason, actor):
    if isinstance(ctx.obj, Launch):
        ctx.obj = ctx.obj.script_info()
    from flask import current_app

    if not current_app:
        ctx.with_resource(ctx.obj.load_app().app_context())
    from .common import transaction

    with transaction() as s:
        if reveal:
            return attribution.reveal(s, address, at, actor=actor, reason=reason)
        return attribution.attribution(s, address, at).masked()


def _zone():
    """IPAM_TIMEZONE as the app reads it (its config inside an app, else the environment)."""
    import sys

    flask = sys.modules.get("flask")
    if flask is not None and flask.current_app:
        return zone(flask.current_app.config["IPAM_TIMEZONE"])
    return zone(os.environ.get("IPAM_TIMEZONE", "Asia/Shanghai"))
