"""Reads that may lag a moment go to the PostgreSQL streaming replica, when there is one.

IPAM_DATABASE_REPLICA_URL names it. Reports (previews, drafts, the file of an
issued report), lists and attribution read there, so a monthly report over a
million allocations takes nothing from the primary's allocations. Writes, and
any read that must see the caller's own write (a page after a form, the login
check, anything that reveals personal data and so writes an audit entry), stay on
the primary (db.session). Without the setting every read is the primary's.
"""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from .extensions import db


def register(app: Flask) -> None:
    @app.teardown_appcontext
    def _close(_exc):
        s = g.pop("_ipam_replica", None)
        if s is not None:
            s.close()


def _engine(app: Flask):
    engines = app.extensions.setdefault("ipam.replica", {})
    url = app.config["IPAM_DATABASE_REPLICA_URL"]
    if url not in engines:
        from . import database_url

        engines[url] = create_engine(
            database_url(url), pool_pre_ping=True, connect_args={"application_name": "ipam-replica"}
        )
    return engines[url]


def session(*, own_write: bool = False) -> Session:
    """The session for a read that may lag: the replica's when one is set (and the read does
    not need the caller's own write, `own_write`), else the request's."""
    app = current_app._get_current_object()
    if own_write or not app.config.get("IPAM_DATABASE_REPLICA_URL"):
        return db.session
    s = g.get("_ipam_replica")
    if s is None:
        s = g._ipam_replica = Session(_engine(app), expire_on_commit=False)
        s.info["replica"] = True
    return s
