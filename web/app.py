"""The Flask application: factory built from named steps; nothing runs at import.

Imported through the package (`from web import create_app`): web/__init__.py loads this
module only when one of its names is asked for, so the `ipam` command can start without
Flask."""

from __future__ import annotations

import importlib.resources
import json
import os
import secrets
from pathlib import Path

from flask import Flask
from werkzeug.routing import IntegerConverter

from ipam.errors import IpamError


def migrations_dir() -> str:
    """The Alembic folder, found through its package: a wheel migrates as well as a checkout."""
    return str(importlib.resources.files("migrations"))


TRANSLATIONS = str(Path(__file__).resolve().parent / "translations")


def default_database_url(app: Flask) -> str:
    """The embedded default: an SQLite file in the instance folder."""
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{Path(app.instance_path) / 'ipam.sqlite3'}"


def database_url(url: str) -> str:
    """Use psycopg 3 for plain postgresql:// URLs (SQLAlchemy would pick psycopg2)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


MISSING_SECRET = (
    "IPAM_SECRET_KEY is not set: a production deployment needs a session secret "
    "(e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)"
)


def embedded_secret(app: Flask) -> str:
    """The embedded default makes its session secret once, kept in the instance folder."""
    path = Path(app.instance_path) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


PROBE_KEYS = (
    "IPAM_PROBE_SCOPE",
    "IPAM_PROBE_NETNS",
    "IPAM_PROBE_DNS",
    "IPAM_PROBE_BLOCKLISTS",
    "IPAM_PROBE_TIMEOUT",
    "IPAM_PROBE_RETRIES",
    "IPAM_PROBE_RATE",
)


def probe_settings(app: Flask) -> dict:
    """Probe settings: the environment, else what `ipam lab up` wrote to the instance folder."""
    lab_file = Path(app.instance_path) / "probe-lab.json"
    lab = json.loads(lab_file.read_text()) if lab_file.exists() else {}
    out = {key: os.environ.get(key) or lab.get(key) for key in PROBE_KEYS}
    out["IPAM_PROBE_RATE"] = out["IPAM_PROBE_RATE"] or "20000"
    return out


def load_config(app: Flask, config: dict | None) -> None:
    env = os.environ.get
    app.config.from_mapping(
        SQLALCHEMY_DATABASE_URI=env("IPAM_DATABASE_URL") or default_database_url(app),
        SECRET_KEY=env("IPAM_SECRET_KEY"),
        IPAM_QUARANTINE_DAYS=int(env("IPAM_QUARANTINE_DAYS", "30")),
        IPAM_TIMEZONE=env("IPAM_TIMEZONE", "Asia/Shanghai"),
        IPAM_LOGIN_LIMIT=env("IPAM_LOGIN_LIMIT", "10 per minute"),
        RATELIMIT_STORAGE_URI=env("IPAM_RATELIMIT_STORAGE", "memory://"),
        # Deployments (or a test) sharing one Redis keep their counts apart by prefix.
        RATELIMIT_KEY_PREFIX=env("IPAM_RATELIMIT_PREFIX", "ipam"),
        RATELIMIT_HEADERS_ENABLED=True,  # a 429 says when to try again (Retry-After)
        # A ping per checkout costs a round trip per request; a dropped connection is
        # invalidated on its first error instead (set IPAM_DB_PRE_PING=1 behind flaky links).
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": env("IPAM_DB_PRE_PING", "") == "1"},
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=env("IPAM_SECURE_COOKIES", "") == "1",
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        BABEL_DEFAULT_LOCALE="zh",
        BABEL_DEFAULT_TIMEZONE=env("IPAM_TIMEZONE", "Asia/Shanghai"),
        BABEL_TRANSLATION_DIRECTORIES=TRANSLATIONS,
        JSON_AS_ASCII=False,
        IPAM_SCHEDULER=env("IPAM_SCHEDULER", "on"),
        IPAM_SMTP_HOST=env("IPAM_SMTP_HOST", "127.0.0.1"),
        IPAM_SMTP_PORT=int(env("IPAM_SMTP_PORT", "25")),
        IPAM_ABUSE_SENDER=env("IPAM_ABUSE_SENDER", "abuse@localhost"),
        IPAM_ABUSE_MAILDIR=env("IPAM_ABUSE_MAILDIR", "") or None,
        IPAM_ABUSE_POLL_SECONDS=int(env("IPAM_ABUSE_POLL_SECONDS", "60")),
        IPAM_INCIDENT_NOTIFY=env("IPAM_INCIDENT_NOTIFY", ""),
        IPAM_ABUSE_CASE_WINDOW_DAYS=env("IPAM_ABUSE_CASE_WINDOW_DAYS", "7"),
        IPAM_ABUSE_DEADLINES=env("IPAM_ABUSE_DEADLINES", ""),
        IPAM_SANCTION_LADDER=env(
            "IPAM_SANCTION_LADDER", "warning,suspension,reclamation,termination"
        ),
        IPAM_SCHEDULER_LEASE=int(env("IPAM_SCHEDULER_LEASE", "30")),
        IPAM_OUTBOX_SECONDS=int(env("IPAM_OUTBOX_SECONDS", "15")),
        # Larger requests answer 413 before they are read (a complaint batch fits well).
        MAX_CONTENT_LENGTH=int(env("IPAM_MAX_REQUEST_BYTES", str(64 * 1024 * 1024))),
        IPAM_JOB_RUN_DAYS=int(env("IPAM_JOB_RUN_DAYS", "90")),
        # The audit chain's signed checkpoints: a file and a key outside the database.
        IPAM_AUDIT_CHECKPOINTS=env("IPAM_AUDIT_CHECKPOINTS")
        or str(Path(app.instance_path) / "audit-checkpoints.jsonl"),
        IPAM_AUDIT_KEY=env("IPAM_AUDIT_KEY", ""),
        IPAM_AUDIT_KEY_FILE=str(Path(app.instance_path) / "audit_key"),
        # Certificates: Ed25519 keys in this folder (ipam keys init), or IPAM_SIGNING_KEY.
        IPAM_KEYS_DIR=env("IPAM_KEYS_DIR") or str(Path(app.instance_path) / "keys"),
        IPAM_SIGNING_KEY=env("IPAM_SIGNING_KEY", ""),
        IPAM_PROVIDER_NAME=env("IPAM_PROVIDER_NAME", "ipam"),
        IPAM_STANDING_REPORT_FORMAT=env("IPAM_STANDING_REPORT_FORMAT", "xlsx"),
        IPAM_STANDING_REPORT_LANGUAGE=env("IPAM_STANDING_REPORT_LANGUAGE", "zh"),
        IPAM_AUDIT_CHECKPOINT_SECONDS=int(env("IPAM_AUDIT_CHECKPOINT_SECONDS", "300")),
        # Probe observations and complaint evidence: kept this long (never below 6), then purged.
        IPAM_RETENTION_MONTHS=env("IPAM_RETENTION_MONTHS", "6"),
        IPAM_RETENTION_BATCH=int(env("IPAM_RETENTION_BATCH", "5000")),
        # Beyond one host (ipam/jobs/broker.py): Celery on this broker; none = embedded.
        IPAM_BROKER_URL=env("IPAM_BROKER_URL", ""),
        IPAM_BROKER_VISIBILITY_TIMEOUT=int(env("IPAM_BROKER_VISIBILITY_TIMEOUT", "3600")),
        IPAM_BROKER_RESEND=float(env("IPAM_BROKER_RESEND", "30")),
        IPAM_WORKER_HEARTBEAT=float(env("IPAM_WORKER_HEARTBEAT", "10")),
        # API requests whose body is larger are accepted as jobs (202) and ingested apart.
        IPAM_ASYNC_BYTES=int(env("IPAM_ASYNC_BYTES", str(1024 * 1024))),
        # Reports, lists and attribution read from this PostgreSQL streaming replica.
        IPAM_DATABASE_REPLICA_URL=env("IPAM_DATABASE_REPLICA_URL", ""),
        **probe_settings(app),
    )
    if config:
        app.config.update(config)
    url = database_url(app.config["SQLALCHEMY_DATABASE_URI"])
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    from ipam import retention
    from ipam.abuse import cases
    from ipam.abuse.ingest import Policy

    try:  # a wrong ladder or abuse policy is refused at start, not at first use
        app.config["IPAM_SANCTION_LADDER"] = cases.ladder(app.config["IPAM_SANCTION_LADDER"])
        app.config["IPAM_ABUSE_POLICY"] = Policy.from_config(app.config)
        app.config["IPAM_RETENTION_MONTHS"] = retention.months_setting(
            app.config["IPAM_RETENTION_MONTHS"]
        )
        from probes.settings import Settings  # light: no scapy

        Settings.from_config(app.config)  # refused at start, naming the setting
    except IpamError as exc:
        raise RuntimeError(str(exc)) from None
    if not app.config.get("SECRET_KEY"):
        if url.startswith("sqlite"):
            app.config["SECRET_KEY"] = embedded_secret(app)
        elif not app.config.get("IPAM_CLI"):  # commands other than `serve` need no sessions
            raise RuntimeError(MISSING_SECRET)


def register_extensions(app: Flask) -> None:
    from .extensions import db  # flask_sqlalchemy and the models: not for `ipam --help`

    db.init_app(app)


def register_migrations(app: Flask) -> None:
    """Flask-Migrate (Alembic): for `ipam init` and the web server, not every command."""
    if "migrate" in app.extensions:
        return
    from flask_migrate import Migrate

    from .extensions import db

    Migrate(app, db, directory=migrations_dir(), render_as_batch=True, compare_type=True)


def register_web_extensions(app: Flask) -> None:
    from .webstack import babel, csrf, limiter, login_manager, select_locale

    login_manager.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    babel.init_app(app, locale_selector=select_locale)


class IdConverter(IntegerConverter):
    """`<int:...>` in our routes: 1 to 2^31-1, what the id columns hold; anything else is 404."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("min", 1)
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(map, *args, **kwargs)


def register_converters(app: Flask) -> None:
    app.url_map.converters["int"] = IdConverter


def register_blueprints(app: Flask) -> None:
    from .api import api
    from .auth import auth
    from .ui import ui

    app.register_blueprint(auth)
    app.register_blueprint(ui)
    app.register_blueprint(api, url_prefix="/api/v1")


def register_access(app: Flask) -> None:
    from . import access

    access.init_app(app)


def register_reading(app: Flask) -> None:
    from .reading import register

    register(app)


def register_errorhandlers(app: Flask) -> None:
    from .errors import register

    register(app)


def register_security(app: Flask) -> None:
    from .security import register

    register(app)


def register_templating(app: Flask) -> None:
    from .templating import register

    register(app)


def register_commands(app: Flask) -> None:
    from .cli import register

    register(app)


def create_app(config: dict | None = None) -> Flask:
    app = Flask("web", instance_path=os.environ.get("IPAM_INSTANCE_PATH") or None)
    load_config(app, config)
    register_extensions(app)
    register_converters(app)
    if not app.config.get("IPAM_CLI"):  # the `ipam` command adds these when it serves
        add_web(app)
    register_commands(app)
    return app


def add_web(app: Flask) -> None:
    """What serving pages needs: extensions, blueprints, access rules, error pages, headers.

    Why apart: an `ipam` command other than `serve` starts without the web stack
    (a whois answers in a fraction of the time); `ipam serve` adds it first.
    """
    if app.extensions.get("ipam.web"):
        return
    app.extensions["ipam.web"] = True
    register_migrations(app)
    register_web_extensions(app)
    register_reading(app)  # before the access check, which reads the user
    from . import replica

    replica.register(app)
    register_blueprints(app)
    register_access(app)
    register_errorhandlers(app)
    register_security(app)
    register_templating(app)
