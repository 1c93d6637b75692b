"""What every command shares: the `ipam` group, the actor, one transaction per command.

Domain errors print as "Error: <field>: <reason>" and exit 1 with nothing written.
"""

from __future__ import annotations

import importlib.util
import sys
from contextlib import contextmanager
from zoneinfo import ZoneInfo

import click
from flask import current_app

from ipam.db import transaction as db_transaction
from ipam.errors import IpamError

from ..extensions import db
from ..mail import deliver_queued
from .group import IpamGroup, Refusal, cli_message, ipam  # noqa: E402,F401  (re-exported)
from .shared import actor_option, default_actor, format_attribution, zone  # noqa: F401


def set_option(example: str):
    """The repeatable --set FIELD=VALUE option of the update commands."""
    return click.option(
        "--set",
        "pairs",
        multiple=True,
        required=True,
        metavar="FIELD=VALUE",
        help=f"e.g. --set {example} (repeatable)",
    )


@contextmanager
def transaction():
    """One use case, one transaction (ipam.db.transaction); mail it queued goes out after.

    A domain error prints as "Error: <field>: <reason>" with nothing written.
    """
    try:
        with db_transaction(db.session) as session:
            yield session
    except IpamError as exc:
        raise Refusal(cli_message(exc)) from None
    deliver_queued(default_actor())


def quarantine_days(value):
    return current_app.config["IPAM_QUARANTINE_DAYS"] if value is None else value


def lazy(name: str):
    """Module `name`, loaded when a command first uses it: `ipam whois` never pays for the
    abuse desk's parsers or the prober (importlib's LazyLoader recipe)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module


def init_database() -> None:
    """Create or upgrade the schema through the migrations (Flask-Migrate, loaded here)."""
    from flask_migrate import upgrade

    from .. import register_migrations

    register_migrations(current_app)
    upgrade(directory=current_app.extensions["migrate"].directory)


def _days(value):
    return quarantine_days(value)


def _pairs(pairs) -> dict:
    out = {}
    for pair in pairs:
        field, sep, value = pair.partition("=")
        if not sep or not field.strip():
            raise click.BadParameter(f"{pair!r} is not FIELD=VALUE", param_hint="--set")
        out[field.strip()] = value
    return out


def _person(text: str) -> dict:
    parts = [p.strip() for p in text.split(",")]
    keys = ["name", "phone", "email", "role"]
    return {k: v for k, v in zip(keys, parts, strict=False) if v}


def display_zone() -> ZoneInfo:
    """Times are stored in UTC and shown in IPAM_TIMEZONE (default Asia/Shanghai)."""
    return zone(current_app.config["IPAM_TIMEZONE"])


def start_scheduler():
    """Start this process's probe scheduler (it fires only while it holds the lease)."""
    from ipam.jobs.scheduler import Scheduler

    sched = Scheduler(db.engine, current_app.config)
    sched.start()
    return sched


lang_option = click.option(
    "--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True,
    help="the language of what is printed or written",
)  # fmt: skip
json_option = click.option("--json", "as_json", is_flag=True, help="print JSON (as the API does)")


def echo_json(rows, schema: str) -> None:
    """Rows as the API answers them: `schema` names its Out model ("ledger:CustomerOut"), so
    personal data is masked the same way. The schemas load only when JSON is asked for."""
    import importlib

    from pydantic import TypeAdapter

    module, _, name = schema.partition(":")
    model = getattr(importlib.import_module(f"web.schemas.{module}"), name)
    adapter = TypeAdapter(list[model])
    shaped = adapter.validate_python(list(rows), from_attributes=True)
    click.echo(adapter.dump_json(shaped, indent=2).decode())
