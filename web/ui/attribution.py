"""Who held an address at a time, in the UI."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import (
    current_app,
    render_template,
    request,
)

from ipam import history
from ipam.errors import IpamError
from ipam.validation import local_instant

from .. import pictures
from ..access import OWN, scope
from ..attribution import attribute
from ..extensions import db
from .helpers import form_errors, view


@view("/attribution", access=OWN)
def attribution_page():
    address = request.args.get("address", "").strip()
    at = request.args.get("at", "").strip()
    result, error = None, None
    if address:
        try:  # a person types local time (the configured zone) or an ISO instant
            at_value = local_instant(at, "at", current_app.config["IPAM_TIMEZONE"])
            result = attribute(address, at_value, False, None)
        except IpamError as exc:
            error = exc
    zone = ZoneInfo(current_app.config["IPAM_TIMEZONE"])
    permalink_at = result.at.astimezone(zone).isoformat(timespec="seconds") if result else None
    return render_template(
        "attribution.html", address=address, at=at, result=result, errors=form_errors(error),
        permalink_at=permalink_at,
    ), (error.status if error else 200)  # fmt: skip


@view("/history", access=OWN)
def history_page():
    """An address's or a prefix's history as a picture, and the same as a table."""
    address = request.args.get("address", "").strip()
    tl, error, picture = None, None, None
    zone = current_app.config["IPAM_TIMEZONE"]
    if address:
        try:
            tl = history.timeline(db.session, address, scope())
            picture = pictures.timeline_svg(tl, zone)
        except IpamError as exc:
            error = exc
    return render_template(
        "history.html", address=address, tl=tl, picture=picture, errors=form_errors(error),
        span_label=pictures.span_label, lane_name=pictures.lane_name,
    ), (error.status if error else 200)  # fmt: skip
