"""What several API modules share: pages of a list, the caller's customer scope."""

from __future__ import annotations

from flask import current_app, request, url_for

from ipam import customers
from ipam.errors import NotFound
from ipam.listing import Window

from ..access import customer_scope, load
from ..extensions import db


def window(query) -> Window:
    """The page a list query asks for (?limit=, ?offset=)."""
    return Window(query.limit, query.offset)


def paged(rows, total: int, query) -> dict:
    """A page's answer: its rows, the total and the next page's URL."""
    limit, offset = query.limit, query.offset
    nxt = None
    if offset + limit < total:
        args = {**request.args.to_dict(), "offset": offset + limit, "limit": limit}
        nxt = url_for(request.endpoint, **(request.view_args or {}), **args)
    return {"items": rows, "total": total, "limit": limit, "offset": offset, "next": nxt}


def scoped_customer(ref=None) -> int | None:
    """The customer a list or a new object is for: a customer user's own, else the one named."""
    scope = customer_scope()
    if scope is not None:
        if ref not in (None, "") and load("customer", ref).id != scope:
            raise NotFound("no customer {ref!r}", "customer", ref=ref)
        return scope
    if ref in (None, ""):
        return None
    return customers.get_customer(db.session, ref).id


def quarantine_days(value: int | None) -> int:
    """The cool-down asked for, else the configured one."""
    return current_app.config["IPAM_QUARANTINE_DAYS"] if value is None else value


def policy():
    """The abuse desk's case policy, checked at start (web/__init__.py)."""
    return current_app.config["IPAM_ABUSE_POLICY"]
