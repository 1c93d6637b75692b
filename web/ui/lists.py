"""Lists to filter, sort, page and export: allocations, subleases, sublessees, customers,
abuse cases, incidents, findings and the audit log."""

from __future__ import annotations

from flask import render_template, request

from ipam import customers, lists
from ipam.errors import IpamError
from ipam.listing import Window

from .. import tables
from ..access import OWN, customer_scope, scope
from ..extensions import db
from ..messages import language
from .helpers import form_errors, int_arg, view

PAGE = 50


@view("/lists", access=OWN)
def lists_page():
    return render_template("lists.html", lists=tables.visible(), lang=language())


@view("/lists/<name>", access=OWN)
def list_page(name):
    lang = language()
    args = request.args
    listdef = lists.get_list(name)
    sort = args.get("sort") or None
    errors, rows, total, values = {}, [], 0, {}
    limit, offset = int_arg("limit", PAGE, 1, lists.MAX_PAGE), int_arg("offset", 0, 0, 2**31 - 1)
    try:
        listdef, values = tables.open_list(name, args)
        if args.get("format") == "csv":
            return tables.csv_response(listdef, values, sort, lang)
        rows, total = tables.page(listdef, values, sort, limit, offset)
    except IpamError as exc:
        errors = form_errors(exc)
    shown = [lists.shown(listdef, row, lang, tables.zone()) for row in rows]
    choices = None
    if customer_scope() is None and any(f.kind == "customer" for f in listdef.filters):
        choices = customers.list_customers(db.session, scope=scope(), window=Window(500))[0]
    kept = {k: v for k, v in args.items() if k not in ("offset", "format") and v}
    return render_template(
        "list.html",
        listdef=listdef,
        rows=shown,
        total=total,
        offset=offset,
        limit=limit,
        sort=sort or listdef.default_sort,
        cap=lists.COUNT_CAP,
        kept=kept,
        errors=errors,
        customers=choices,
        lang=lang,
        args=args,
    )
