"""The JSON API at /api/v1: the blueprint and one module of endpoints per resource.

Each endpoint is declared once with `@endpoint` (endpoint.py): route, access
rule, query, body and answer schemas. Every failure answers
{"error": {"code", "message", "field"}} (web/errors.py).
"""

from flask import Blueprint

api = Blueprint("api", __name__)

from . import (  # noqa: E402,F401  (each module registers its endpoints on `api`)
    abuse,
    allocations,
    attribution,
    change_requests,
    customers,
    datacentres,
    docs,
    incidents,
    jobs,
    leasing,
    lists,
    pools,
    probes,
    quarantine,
    reports,
    users,
)
