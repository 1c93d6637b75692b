"""The HTML UI: the blueprint and one module of pages per resource.

Pages are thin: parse the form, call one ipam/ function, render with form
errors inline. Each is declared with its access rule (`view`, helpers.py).
"""

from flask import Blueprint

ui = Blueprint("ui", __name__)

from . import (  # noqa: E402,F401  (each module registers its pages on `ui`)
    abuse,
    attribution,
    change_requests,
    customers,
    dashboard,
    datacentres,
    incidents,
    leasing,
    lists,
    pools,
    probes,
    reports,
    users,
)
