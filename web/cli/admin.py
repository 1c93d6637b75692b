"""Running ipam: the schema, the demo, the web server, users."""

from __future__ import annotations

import click
from flask import current_app

from ipam import (
    backup,
    jobs,
    users,
)
from ipam.errors import IpamError
from ipam.models import Role

from ..extensions import db
from .common import (
    Refusal,
    actor_option,
    cli_message,
    echo_json,
    init_database,
    ipam,
    json_option,
    start_scheduler,
    transaction,
)


@ipam.command("init")
def init_cmd():
    """Create or upgrade the database schema (runs the migrations)."""
    init_database()
    click.echo(f"database ready: {db.engine.url.render_as_string(hide_password=True)}")


@ipam.command("demo")
@click.option("--actor", default="demo")
def demo_cmd(actor):
    """Create the schema and seed the demo data (once)."""
    from ipam import demo

    init_database()
    with transaction() as s:
        if not demo.seed(s, actor=actor, echo=click.echo):
            click.echo("demo data is there already")
    from ipam.certificates import Keyring

    kid, created = Keyring.from_config(current_app.config).init()  # certificates sign at once
    if created:
        click.echo(f"certificate signing key {kid} created (ipam keys list)")
    logins = demo.untouched_logins(db.session)
    if logins:
        click.echo("demo logins:")
        for name, password, role in logins:
            click.echo(f"  {role:9} {name:9} {password}")
    click.echo("try: ipam whois 198.18.7.9 --at 2026-01-01T00:00:00+08:00, or ipam serve")


@ipam.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int)
def serve_cmd(host, port, threads):
    """Serve the web UI and API (waitress); production uses gunicorn, see README."""
    from waitress import serve

    from ipam import demo

    from .. import MISSING_SECRET, add_web

    if not current_app.config.get("SECRET_KEY"):
        raise click.ClickException(MISSING_SECRET)
    init_database()
    app = current_app._get_current_object()
    add_web(app)
    shown = host if host not in ("0.0.0.0", "::") else "127.0.0.1"
    click.echo(f"ipam is at http://{shown}:{port}/  (API docs: /api/v1/docs)")
    logins = demo.untouched_logins(db.session)  # no password hashing at start
    db.session.rollback()
    if logins:
        click.echo("demo logins:")
        for name, password, role in logins:
            click.echo(f"  {role:9} {name:9} {password}")
    if current_app.config.get("IPAM_SCHEDULER") != "off":  # the embedded default
        start_scheduler()
        click.echo("probe scheduler started in this process (IPAM_SCHEDULER=off to disable)")
    serve(app, host=host, port=port, threads=threads)


# backups ---------------------------------------------------------------
@ipam.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, writable=True))
def backup_cmd(file):
    """Write a consistent copy of the database to FILE while ipam runs."""
    try:
        size = backup.backup(db.engine, file)
    except IpamError as exc:
        raise Refusal(cli_message(exc)) from None
    click.echo(f"backup written: {file} ({size} bytes)")


@ipam.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def restore_cmd(file):
    """Load a backup FILE into an empty database, then bring its schema up to date."""
    try:
        backup.restore(db.engine, file)
    except IpamError as exc:
        raise Refusal(cli_message(exc)) from None
    db.engine.dispose()  # connections opened before the restore saw no tables
    init_database()
    click.echo(f"restored {file}: run `ipam audit verify` to check the chain")


# users -----------------------------------------------------------------
@ipam.group("user")
def user_group():
    """Logins and API tokens."""


@user_group.command("add")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--customer", help="the customer a customer user belongs to")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@actor_option
def user_add(username, role, customer, password, actor):
    """Add a login."""
    with transaction() as s:
        user = users.create_user(s, username, password, role, customer=customer, actor=actor)
        click.echo(f"user {user.username} ({user.role.value}) created")


@user_group.command("role")
@click.argument("username")
@click.argument("role", type=click.Choice([r.value for r in Role]))
@click.option("--customer", help="the customer, for the customer role")
@actor_option
def user_role(username, role, customer, actor):
    """Give a login another role; its sessions end and its tokens are revoked."""
    with transaction() as s:
        user = users.set_role(s, username, role, customer=customer, actor=actor)
        click.echo(f"user {user.username} is now {user.role.value}; sessions and tokens ended")


@user_group.command("list")
@json_option
def user_list(as_json):
    """List logins with their roles."""
    rows = users.list_users(db.session)
    if as_json:
        return echo_json(rows, "users:UserOut")
    for u in rows:
        bound = f" {u.customer.name}" if u.customer else ""
        click.echo(f"{u.username:20} {u.role.value:9}{bound}{'' if u.active else ' (disabled)'}")


@user_group.command("token")
@click.argument("username")
@click.option("--name", required=True, help="what the token is for")
@actor_option
def user_token(username, name, actor):
    """Issue an API token for a user; it is printed this once."""
    with transaction() as s:
        _, secret = users.issue_token(s, username, name, actor=actor)
    click.echo(secret)


@user_group.command("revoke-token")
@click.argument("token_id")
@actor_option
def user_revoke_token(token_id, actor):
    """Revoke an API token by id."""
    with transaction() as s:
        users.revoke_token(s, token_id, actor=actor)
    click.echo(f"token {token_id} revoked")


# jobs ------------------------------------------------------------------
@ipam.group("job")
def job_group():
    """Scheduled work: what ran, and running a job now."""


@job_group.command("list")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.option("--job", "name", type=click.Choice(sorted(jobs.JOBS)), help="one job only")
def job_list(limit, name):
    """List the latest job runs, newest first."""
    for r in jobs.recent_runs(db.session, name=name, limit=limit):
        took = f"{(r.finished_at - r.started_at).total_seconds():.1f}s" if r.finished_at else "-"
        outcome = r.error or (r.summary if r.summary is not None else "")
        click.echo(
            f"{r.id:6} {r.started_at:%Y-%m-%d %H:%M:%S} {r.job:20} {r.status.value:8} "
            f"{took:>7} {r.run_by}  {outcome}"
        )


@job_group.command("run")
@click.argument("name", type=click.Choice(sorted(n for n in jobs.JOBS if n not in jobs.ON_REQUEST)))
@actor_option
def job_run(name, actor):
    """Run one job now, as the scheduler would (probe runs: `ipam probe run`)."""
    row = jobs.run(db.engine, name, current_app.config, run_by=actor)
    click.echo(f"{name}: {row.status.value} {row.summary or ''}{row.error or ''}")
    if row.status != "done":
        raise SystemExit(1)
