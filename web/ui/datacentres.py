"""Data centres (sites) in the UI: their pools, probe workers and waiting runs."""

from __future__ import annotations

from flask import current_app, render_template, request, url_for
from flask_babel import gettext as _

from ipam import datacentres, pools
from ipam.errors import IpamError

from ..access import READERS, STAFF, actor
from ..extensions import db
from .helpers import act, attempt, form_errors, view


def _page(error: IpamError | None = None):
    return render_template(
        "data_centres.html",
        centres=datacentres.overview(db.session, current_app.config),
        pools=pools.list_pools(db.session)[0],
        broker=bool(current_app.config.get("IPAM_BROKER_URL")),
        errors=form_errors(error),
        form=request.form,
    ), (error.status if error else 200)


@view("/data-centres", access=READERS)
def data_centres_page():
    return _page()


@view("/data-centres", methods=["POST"], access=STAFF)
def data_centre_add():
    form = request.form
    response, error = attempt(
        lambda s: datacentres.add(
            s, form.get("name", ""), actor=actor(), description=form.get("description", "")
        ),
        _("Data centre added: start its probe worker there."),
        url_for("ui.data_centres_page"),
    )
    return response if error is None else _page(error)


@view("/data-centres/place", methods=["POST"], access=STAFF)
def data_centre_place():
    form = request.form
    return act(
        lambda s: datacentres.place_pool(
            s, pools.get_pool(s, form.get("pool", "")), form.get("site", ""), actor=actor()
        ),
        _("Pool placed: its probe runs go to that data centre's workers."),
        url_for("ui.data_centres_page"),
    )
