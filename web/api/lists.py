"""The lists in the JSON API: one page of rows (typed values) or the filtered rows as CSV."""

from __future__ import annotations

from ipam import lists

from .. import tables
from ..access import OWN
from ..schemas.lists import ListKindOut, ListQuery, ListRowsOut
from .endpoint import endpoint
from .reports import _cell


@endpoint("GET", "/lists", access=OWN, out=list[ListKindOut])
def lists_list():
    """The lists the caller may read, with their columns, filters and default order"""
    return [
        {
            "name": d.name,
            "zh": d.zh,
            "en": d.en,
            "columns": [
                {"key": c.key, "zh": c.zh, "en": c.en, "sortable": c.sort is not None}
                for c in d.cols
            ],
            "filters": [
                {"key": f.key, "kind": f.kind, "choices": list(f.choices)} for f in d.filters
            ],
            "sort": d.default_sort,
        }
        for d in tables.visible()
    ]


@endpoint(
    "GET",
    "/lists/<name>",
    access=OWN,
    query=ListQuery,
    out=ListRowsOut,
    produces={"text/csv": "?format=csv: every filtered row, UTF-8 with BOM"},
)
def list_get(name, query: ListQuery):
    """One page of a list, filtered and sorted (?format=csv: every filtered row)"""
    args = query.model_dump(by_alias=True, exclude_none=True)
    listdef, values = tables.open_list(name, args)
    if query.format == "csv":
        return tables.csv_response(listdef, values, query.sort, query.lang)
    rows, total = tables.page(listdef, values, query.sort, query.limit, query.offset)
    return {
        "list": listdef.name,
        "columns": [c.key for c in listdef.cols],
        "items": [[_cell(v) for v in row] for row in rows],
        "total": total,
        "exact": total - query.offset <= lists.COUNT_CAP,
        "limit": query.limit,
        "offset": query.offset,
    }
