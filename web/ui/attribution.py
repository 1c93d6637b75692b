"""Who held an address at a time, in the UI."""

from __future__ import annotations

from flask import (
    render_template,
    request,
)

from ipam.errors import IpamError

from ..access import (
    OWN,
)
from ..attribution import attribute
from .helpers import form_errors, view


@view("/attribution", access=OWN)
def attribution_page():
    address = request.args.get("address", "").strip()
    at = request.args.get("at", "").strip()
    result, error = None, None
    if address:
        try:
            at_value = at or None
            if at and len(at) == 16 and "T" in at:  # from <input type=datetime-local>: Beijing time
                at_value = at + ":00+08:00"
            result = attribute(address, at_value, False, None)
        except IpamError as exc:
            error = exc
    return render_template(
        "attribution.html", address=address, at=at, result=result, errors=form_errors(error)
    ), (error.status if error else 200)
