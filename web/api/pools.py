"""Pools and the address map in the JSON API."""

from __future__ import annotations

from ipam import addressmap, pools

from ..access import READERS, STAFF, actor
from ..extensions import db
from ..schemas.common import Page
from ..schemas.ledger import MapOut, MapQuery, PoolIn, PoolOut, PoolQuery
from ..usecase import run
from .endpoint import endpoint
from .helpers import paged, window


@endpoint("GET", "/pools", access=READERS, query=PoolQuery, out=Page[PoolOut])
def pools_list(query: PoolQuery):
    """Pools"""
    family = int(query.family) if query.family else None
    rows, total = pools.list_pools(db.session, family=family, window=window(query))
    return paged(rows, total, query)


@endpoint("POST", "/pools", access=STAFF, body=PoolIn, out=PoolOut, status=201)
def pool_add(body: PoolIn):
    """Add a pool (nested pools find their parent)"""
    return run(
        lambda s: pools.add_pool(
            s, body.prefix, body.name, parent=body.parent, description=body.description,
            actor=actor(),
        )
    )  # fmt: skip


@endpoint("GET", "/pools/<int:pool_id>", access=READERS, out=PoolOut)
def pool(pool_id):
    """A pool with its utilization"""
    p = pools.get_pool(db.session, pool_id)
    return {
        **PoolOut.model_validate(p).model_dump(),
        "utilization": pools.utilization(db.session, p),
    }


@endpoint("GET", "/map", access=READERS, query=MapQuery, out=MapOut)
def address_map(query: MapQuery):
    """The address map of ?prefix=: per cell, how many addresses are in each state"""
    amap = addressmap.address_map(db.session, query.prefix)
    return {
        "prefix": str(amap.block),
        "cell_prefixlen": amap.cell_prefixlen,
        "totals": amap.totals(),
        "cells": [
            {
                "prefix": str(c.block),
                "state": c.state,
                "allocated": c.allocated,
                "subleased": c.subleased,
                "quarantined": c.quarantined,
            }
            for c in amap.cells
        ],
    }
