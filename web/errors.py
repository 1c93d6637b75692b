"""Error handlers: the API always answers {"error": {code, message, field}}; the UI a page.

Domain errors carry their own status (422 validation, 404 not found, 409
conflicts); HTTP errors keep theirs (400 bad body, 401, 403, 405, 429). Any
error rolls the session back, so nothing half-written survives a failure.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from ipam.errors import IpamError

from .extensions import db
from .messages import translate

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


def _http_code(exc: HTTPException) -> str:
    return (exc.name or "error").lower().replace(" ", "_").replace("'", "")


def register(app: Flask) -> None:
    @app.errorhandler(IpamError)
    def domain_error(exc: IpamError):
        return error_response(exc.status, exc.code, translate(exc.message), exc.field)

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        return error_response(
            400,
            "csrf",
            f"the form's CSRF token is missing or wrong: {exc.description}",
            "csrf_token",
        )

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        response = error_response(exc.code or 500, _http_code(exc), exc.description or "")
        if exc.code == 401 and wants_json():
            response[0].headers["WWW-Authenticate"] = 'Bearer realm="ipam"'
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", InternalServerError.description)
