"""Attribution in the JSON API: who held an address at a time."""

from __future__ import annotations

from ..access import OWN
from ..attribution import attribute
from ..schemas.ledger import AttributionOut, AttributionQuery
from .endpoint import endpoint


@endpoint("GET", "/attribution", access=OWN, query=AttributionQuery, out=AttributionOut)
def attribution_get(query: AttributionQuery):
    """Who held ?address= at ?at= (customer, sublessee, contacts as they were then)"""
    result = attribute(query.address, query.at, bool(query.reveal), query.reason)
    return result.as_dict()
