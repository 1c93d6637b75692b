"""The lists' query and answers (ipam/lists.py)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from .common import Count, Out, Query, ShortText


class ListQuery(Query):
    format: Literal["json", "csv"] = "json"
    lang: Literal["zh", "en"] = "zh"
    sort: ShortText | None = Field(None, description="a column's key; -key for descending")
    limit: int = Field(50, ge=1, le=500)
    offset: Count = 0
    # The filters: each list takes those it names in GET /lists.
    state: ShortText | None = None
    status: ShortText | None = None
    kind: ShortText | None = None
    category: ShortText | None = None
    customer: ShortText | None = None
    pool: ShortText | None = None
    q: ShortText | None = None
    target: ShortText | None = None
    holding: ShortText | None = None
    actor: ShortText | None = None
    owner: ShortText | None = None
    object: ShortText | None = None
    action: ShortText | None = None
    from_: ShortText | None = Field(None, alias="from", description="a date or a local time")
    to: ShortText | None = Field(None, description="a date (included) or a local time")


class ListKindOut(Out):
    name: str
    zh: str
    en: str
    columns: list[dict[str, Any]]
    filters: list[dict[str, Any]]
    sort: str


class ListRowsOut(Out):
    list: str
    columns: list[str]
    items: list[list[Any]]
    total: int = Field(description="rows that match; past offset + 10,000 counting stops")
    exact: bool = Field(description="false: total is a floor (more rows match)")
    limit: int
    offset: int
