"""Data centres (sites) in the JSON API: the register, their workers, placing pools."""

from __future__ import annotations

from flask import current_app

from ipam import datacentres, pools

from ..access import READERS, STAFF, actor
from ..extensions import db
from ..schemas.datacentres import DataCentreIn, DataCentreOut, PlaceIn, PoolSiteOut
from ..usecase import run
from .endpoint import endpoint


def _out(o: datacentres.Overview) -> dict:
    return DataCentreOut(
        name=o.name,
        description=o.description,
        pools=[p.prefix for p in o.pools],
        live_workers=o.health.live,
        waiting=o.health.waiting,
        oldest_waiting=o.health.oldest,
        why_waiting=o.health.reason,
    ).model_dump(mode="json")


@endpoint("GET", "/data-centres", access=READERS, out=list[DataCentreOut])
def data_centres_list():
    """Data centres with their pools, live probe workers and waiting runs (those whose runs
    wait for no worker first)"""
    return [_out(o) for o in datacentres.overview(db.session, current_app.config)]


@endpoint("POST", "/data-centres", access=STAFF, body=DataCentreIn, out=DataCentreOut, status=201)
def data_centre_add(body: DataCentreIn):
    """Add a data centre; its workers: `ipam worker --site NAME` inside it"""
    dc = run(lambda s: datacentres.add(s, body.name, actor=actor(), description=body.description))
    return {"name": dc.name, "description": dc.description}


@endpoint("POST", "/pools/<int:pool_id>/site", access=STAFF, body=PlaceIn, out=PoolSiteOut)
def pool_place(pool_id, body: PlaceIn):
    """Put a pool in a data centre ("default": back to its parent's); its runs go there"""

    def place(s):
        pool = datacentres.place_pool(s, pools.get_pool(s, pool_id), body.site, actor=actor())
        return {"id": pool.id, "prefix": pool.prefix, "site": datacentres.site_of_pool(s, pool)}

    return run(place)
