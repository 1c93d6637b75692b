"""What the UI's pages share: routes with their access rule, form outcomes, pages of a list."""

from __future__ import annotations

from flask import flash, redirect, render_template, request

from ipam.errors import IpamError, ValidationError

from ..access import RULES
from ..messages import translate_error
from ..usecase import run
from . import ui


def view(rule: str, *, access: frozenset | None, methods=("GET",)):
    """Register a page on the UI blueprint with who may open it (web/access.py)."""

    def register(fn):
        ui.add_url_rule(rule, fn.__name__, fn, methods=list(methods))
        RULES[f"ui.{fn.__name__}"] = access
        return fn

    return register


def attempt(change, done_message: str, then_url: str):
    """Run a use case from a form: on success flash and redirect; on error return the error."""
    try:
        run(change)
    except IpamError as exc:
        return None, exc
    flash(done_message)
    return redirect(then_url), None


def act(change, done_message: str, back_url: str):
    """Run a one-button action: on success flash and go back; on error show why, with its status."""
    response, error = attempt(change, done_message, back_url)
    if error is None:
        return response
    return render_template(
        "error.html",
        status=error.status,
        code=error.code,
        message=translate_error(error),
        field=error.field,
    ), error.status


def form_errors(exc: IpamError | None) -> dict:
    if exc is None:
        return {}
    return {exc.field or "_": translate_error(exc)}


def int_arg(name: str, default: int, low: int, high: int) -> int:
    """A whole number from the query string, within bounds, else a 422 naming it."""
    raw = request.args.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError("{raw!r} is not a whole number", name, raw=raw) from None
    if not low <= value <= high:
        raise ValidationError("must be between {low} and {high}", name, low=low, high=high)
    return value


def page_of(rows, total: int, limit: int, offset: int) -> dict:
    """One page of a list for a template: its rows, the total, and where the next one starts."""
    nxt = offset + limit if offset + limit < total else None
    return {"items": rows, "total": total, "limit": limit, "offset": offset, "next": nxt}
