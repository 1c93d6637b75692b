"""Data as plain JSON types: what answers, snapshots and the audit log store and print.

Apart from audit.py so that a reader (`ipam whois`) need not load the audit log's models.
"""

from __future__ import annotations

import json
from datetime import date, datetime


def _default(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def jsonable(data: dict) -> dict:
    """Return data as plain JSON types (dates as ISO strings, enums as values)."""
    return json.loads(json.dumps(data, default=_default))
