"""Reads that do not queue behind writers on SQLite.

Every SQLite write takes the database's one write lock at BEGIN (ipam/db.py);
a page or an API read that did the same would wait for every writer and make
the next writer wait for it. A GET (or HEAD, OPTIONS) therefore runs its
transaction deferred: a WAL reader, beside the writer. The few GETs that
write (a reveal of personal data is audited) upgrade that transaction; when
SQLite refuses the upgrade (another writer came first), the request is run
again once, writing from its start (web/errors.py). PostgreSQL readers never
block writers: nothing changes there.
"""

from __future__ import annotations

from flask import Flask, g, request

from ipam.db import reading_token, reset_reading

from .extensions import db

SAFE = {"GET", "HEAD", "OPTIONS"}


def register(app: Flask) -> None:
    @app.before_request
    def _deferred_reads():
        retried = g.get("_ipam_retried")  # run again as a writer (web/errors.py)
        if request.method in SAFE and not retried and db.engine.dialect.name == "sqlite":
            g._ipam_reading = reading_token()

    @app.teardown_request
    def _end_reads(_exc):
        token = g.pop("_ipam_reading", None)
        if token is not None:
            reset_reading(token)


def write_from_the_start() -> bool:
    """After SQLite refused to upgrade a read: rerun the request as a writer. False if it was
    not a deferred read (nothing to change)."""
    token = g.pop("_ipam_reading", None)
    if token is None:
        return False
    reset_reading(token)
    return True
