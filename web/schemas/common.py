"""Types every schema shares: bounded numbers, text without NUL, instants, pages, errors.

Why bounds everywhere: a request must fail as a 422 naming its field, never
reach the database with a value the column cannot hold (ids past 2^31, NUL
characters PostgreSQL refuses, numbers past 2^63).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
)

from ipam.privacy import mask, mask_id, masked

MAX_ID = 2**31 - 1  # the id columns are 32-bit integers on PostgreSQL
MAX_TEXT = 100_000


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _no_nul_anywhere(value: Any) -> Any:
    """Free-form JSON (a change request's changes, contact lists): no NUL in any string."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            _no_nul(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return value


Text = Annotated[str, Field(max_length=MAX_TEXT), AfterValidator(_no_nul)]
ShortText = Annotated[str, Field(max_length=1000), AfterValidator(_no_nul)]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Count = Annotated[int, Field(ge=0, le=MAX_ID)]
# A reference to an object: its id, or its name, code or prefix (the domain resolves it).
Ref = Annotated[
    Annotated[int, Field(ge=1, le=MAX_ID)] | Annotated[str, Field(max_length=1000)],
    AfterValidator(lambda v: _no_nul(v) if isinstance(v, str) else v),
    WithJsonSchema(
        {"oneOf": [{"type": "integer", "minimum": 1, "maximum": MAX_ID}, {"type": "string"}]}
    ),
]
JsonObject = Annotated[dict[str, Any], AfterValidator(_no_nul_anywhere)]
People = Annotated[list[dict[str, Any]], Field(max_length=100), AfterValidator(_no_nul_anywhere)]


def _tristate(value):
    """'true', 'false' or 'all' (None) from a query string."""
    if value is None or isinstance(value, bool):
        return value
    text = str(value).lower()
    if text in ("1", "true", "yes"):
        return True
    if text in ("0", "false", "no"):
        return False
    if text == "all":
        return None
    raise ValueError(f"{value!r} is not true, false or all")


TriState = Annotated[
    bool | None,
    BeforeValidator(_tristate),
    WithJsonSchema({"type": "string", "enum": ["true", "false", "all"]}),
]


# Answers -----------------------------------------------------------------------
def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


# Instants and dates print as ISO 8601 with their offset, as the audit log writes them.
Instant = Annotated[datetime, PlainSerializer(_iso, return_type=str)]
Day = Annotated[date, PlainSerializer(_iso, return_type=str)]
Masked = Annotated[str | None, AfterValidator(lambda v: mask(v))]
MaskedId = Annotated[str | None, AfterValidator(mask_id)]


MaskedPeople = Annotated[list[dict[str, Any]], BeforeValidator(lambda v: masked(v or []))]


class In(BaseModel):
    """A request body: unknown fields are refused; types are JSON's own ("5" is no number)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Query(BaseModel):
    """A query string: unknown parameters are refused; values are text, read as their type."""

    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    """An answer, read from the ledger's objects."""

    model_config = ConfigDict(from_attributes=True)


class ListQuery(Query):
    limit: int = Field(50, ge=1, le=500, description="page size")
    offset: int = Field(0, ge=0, le=MAX_ID, description="items to skip")


T = TypeVar("T")


class Page(Out, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int
    next: str | None = Field(description="the next page's URL, if any")


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None


class Error(BaseModel):
    error: ErrorDetail


class Empty(In):
    """No fields."""
