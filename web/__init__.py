"""The Flask application: factory built from named steps; nothing runs at import."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask

from .extensions import db, migrate

MIGRATIONS = str(Path(__file__).resolve().parent.parent / "migrations")


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


def load_config(app: Flask, config: dict | None) -> None:
    app.config.from_mapping(
        SQLALCHEMY_DATABASE_URI=os.environ.get("IPAM_DATABASE_URL") or default_database_url(app),
        IPAM_QUARANTINE_DAYS=int(os.environ.get("IPAM_QUARANTINE_DAYS", "30")),
        IPAM_TIMEZONE=os.environ.get("IPAM_TIMEZONE", "Asia/Shanghai"),
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True},
    )
    if config:
        app.config.update(config)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url(app.config["SQLALCHEMY_DATABASE_URI"])


def register_extensions(app: Flask) -> None:
    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS, render_as_batch=True, compare_type=True)


def register_commands(app: Flask) -> None:
    from .cli import register

    register(app)


def create_app(config: dict | None = None) -> Flask:
    app = Flask(__name__, instance_path=os.environ.get("IPAM_INSTANCE_PATH") or None)
    load_config(app, config)
    register_extensions(app)
    register_commands(app)
    return app
