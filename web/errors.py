"""Error handlers: the API always answers {"error": {code, message, field}}; the UI a page.

Domain errors carry their own status (422 validation, 404 not found, 409
conflicts); HTTP errors keep theirs (400 bad body, 401, 403, 405, 429). Any
error rolls the session back, so nothing half-written survives a failure.

A database that went away (a dropped connection, a restart, a fail-over, a
lock that did not come in time) is not a bug: the request is run once more
on a fresh connection, unless the failure came during COMMIT (its outcome
is unknown, so a write is never repeated); otherwise the answer is 503 with
Retry-After, which clients and proxies know to retry.
"""

from __future__ import annotations

import logging

from flask import Flask, current_app, g, jsonify, render_template, request
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException

from ipam.errors import IpamError, Phrase

from .extensions import db
from .messages import translate, translate_error
from .reading import write_from_the_start

log = logging.getLogger(__name__)


def wants_json() -> bool:
    return request.blueprint == "api" or request.path.startswith("/api/")


def error_response(status: int, code: str, message: str, field: str | None = None):
    db.session.rollback()
    if wants_json():
        return jsonify({"error": {"code": code, "message": message, "field": field}}), status
    return render_template(
        "error.html", status=status, code=code, message=message, field=field
    ), status


# Werkzeug's own descriptions are English; ours, by status, in the user's language.
HTTP_MESSAGES = {
    400: _l("the request could not be understood"),
    401: _l("log in first"),
    403: _l("you are not allowed to do this"),
    404: _l("there is no such page or record"),
    405: _l("this address does not take that method"),
    413: _l("the upload is too large"),
    429: _l("too many attempts; wait a little and try again"),
    500: _l("something went wrong on our side; the error is logged"),
}


def http_message(exc: HTTPException) -> str:
    """An HTTP error's reason: ours translated; werkzeug's default replaced by ours."""
    if isinstance(exc.description, Phrase):
        return translate_error(exc.description)
    if not exc.description or exc.description == type(exc).description:
        return str(HTTP_MESSAGES.get(exc.code or 500, exc.name or ""))
    return translate(exc.description) or ""


def _http_code(exc: HTTPException) -> str:
    return (exc.name or "error").lower().replace(" ", "_").replace("'", "")


RETRY_AFTER = 5  # seconds: about what a restart or a fail-over takes


def database_away(exc: BaseException) -> bool:
    """A failure of the database's availability, not of the request."""
    return isinstance(exc, OperationalError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )


@event.listens_for(Session, "before_commit")
def _committing(session) -> None:
    try:
        g._ipam_committing = True  # a failure from here on may have committed
    except RuntimeError:  # outside a request (CLI, jobs): nothing to mark
        pass


@event.listens_for(Session, "after_commit")
def _committed(session) -> None:
    try:
        g._ipam_committing = False
    except RuntimeError:
        pass


def _unavailable():
    """503 with Retry-After; the page is one that needs no database (no user, no menu)."""
    message = translate("the database is not answering; try again in a few seconds")
    if wants_json():
        body = jsonify(
            {"error": {"code": "database_unavailable", "message": message, "field": None}}
        )
    else:
        body = render_template("unavailable.html", message=message)
    return body, 503, {"Retry-After": str(RETRY_AFTER)}


def register(app: Flask) -> None:
    @app.errorhandler(DBAPIError)
    def database_error(exc: DBAPIError):
        if not database_away(exc):
            return unexpected(exc)
        log.warning("database unavailable on %s %s: %s", request.method, request.path, exc)
        try:
            db.session.rollback()
        except DBAPIError:
            pass
        db.session.remove()  # the next use takes a fresh connection from the pool
        sqlite = db.engine.dialect.name == "sqlite"
        # SQLite: a read that had to write, refused the upgrade, runs again as a writer;
        # a writer that waited its whole time for the lock would only wait again.
        again_as_writer = sqlite and not g.get("_ipam_retried") and write_from_the_start()
        if sqlite and not again_as_writer:
            return _unavailable()
        if g.get("_ipam_retried") or g.get("_ipam_committing"):
            return _unavailable()
        g._ipam_retried = True
        try:  # once more, on a fresh connection; the outer dispatch finalizes the answer
            rv = current_app.preprocess_request()
            if rv is None:
                rv = current_app.dispatch_request()
            return rv
        except Exception as again:  # noqa: BLE001 - handled as any error of the request
            return current_app.handle_user_exception(again)

    @app.errorhandler(IpamError)
    def domain_error(exc: IpamError):
        return error_response(exc.status, exc.code, translate_error(exc), exc.field)

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        return error_response(
            400,
            "csrf",
            translate_error(Phrase("the form's CSRF token is missing or wrong; reload the page")),
            "csrf_token",
        )

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        response = error_response(exc.code or 500, _http_code(exc), http_message(exc))
        if exc.code == 401 and wants_json():
            response[0].headers["WWW-Authenticate"] = 'Bearer realm="ipam"'
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", str(HTTP_MESSAGES[500]))
