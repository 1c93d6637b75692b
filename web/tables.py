"""The lists (ipam/lists.py) as the caller may read them: one path for the API and the UI.

Customer users read their own records only, and not the staff's lists (the
audit log, incidents); a CSV holds exactly the rows the filters select, in the
order asked for, in the caller's language.
"""

from __future__ import annotations

from collections.abc import Mapping

from flask import Response, abort, current_app, stream_with_context

from ipam import lists
from ipam.errors import Phrase
from ipam.listing import Window

from . import replica
from .access import customer_scope, scope
from .extensions import db


def zone() -> str:
    return current_app.config["IPAM_TIMEZONE"]


def open_list(name: str, args: Mapping) -> tuple[lists.ListDef, dict]:
    """The list and its checked filters; 403 for a staff list asked for by a customer."""
    listdef = lists.get_list(name)
    if listdef.staff_only and customer_scope() is not None:
        abort(403, description=Phrase("this list is for the provider's staff and auditors"))
    return listdef, lists.parse(db.session, listdef, args, zone())


def visible() -> list[lists.ListDef]:
    customer = customer_scope() is not None
    return [d for d in lists.LISTS.values() if not (customer and d.staff_only)]


def page(listdef, values, sort, limit: int, offset: int):
    return lists.page(
        replica.session(), listdef, values, scope(), sort=sort, window=Window(limit, offset)
    )


def csv_response(listdef, values, sort, lang: str) -> Response:
    rows = lists.stream(replica.session(), listdef, values, scope(), sort=sort)
    chunks = lists.csv_chunks(listdef, rows, lang, zone())
    name = f"{listdef.name}.csv"
    return Response(
        stream_with_context(chunks),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
