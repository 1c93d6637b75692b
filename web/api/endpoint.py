"""One declaration per endpoint: its route, who may call it, its query, body and answer.

`@endpoint("POST", "/pools", access=STAFF, body=PoolIn, out=PoolOut, status=201)`
registers the view on the API blueprint, its rule in web/access.py, and its
schemas for web/api/spec.py; it parses the query string and the body with
those schemas before the view runs. Nothing is kept in step by hand.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field
from typing import Any

import pydantic
from flask import Response, abort, jsonify, request
from pydantic import BaseModel, TypeAdapter

from ipam.errors import IpamError, Phrase, ValidationError

from ..access import RULES
from . import api

# Paths of the blueprint with their declarations, for the spec, in declaration order.
ENDPOINTS: list[Endpoint] = []


@dataclass
class Endpoint:
    name: str
    method: str
    path: str
    summary: str
    description: str
    access: frozenset | None
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    out: Any = None
    status: int = 200
    # Non-JSON bodies it takes ({media type: description}) and non-JSON answers it gives.
    consumes: dict[str, str] = field(default_factory=dict)
    produces: dict[str, str] = field(default_factory=dict)
    # Statuses whose answer is not the usual error shape: {status: (schema, description)}.
    answers: dict[int, tuple[Any, str]] = field(default_factory=dict)


def endpoint(
    method: str,
    path: str,
    *,
    access: frozenset | None,
    query: type[BaseModel] | None = None,
    body: type[BaseModel] | None = None,
    out: Any = None,
    status: int = 200,
    consumes: dict[str, str] | None = None,
    produces: dict[str, str] | None = None,
    answers: dict[int, tuple[Any, str]] | None = None,
    parse: bool = True,
):
    """Declare and register an API view; it receives `query=` and `body=` already checked.

    parse=False: the body is declared (for the spec) but the view parses it itself, for
    the one case where a scope check must come before the fields are judged.
    """

    def register(view):
        name = view.__name__
        doc = inspect.cleandoc(view.__doc__ or name.replace("_", " "))
        summary, _, description = doc.partition("\n")
        adapter = TypeAdapter(out) if out is not None else None
        ep = Endpoint(
            name=name,
            method=method,
            path=path,
            summary=summary.strip(),
            description=description.strip(),
            access=access,
            query=query,
            body=body,
            out=out,
            status=status,
            consumes=consumes or {},
            produces=produces or {},
            answers=answers or {},
        )

        @functools.wraps(view)
        def handle(**kwargs):
            if query is not None:
                kwargs["query"] = parse_query(query)
            if body is not None and parse:
                kwargs["body"] = parse_body(body)
            result = view(**kwargs)
            if isinstance(result, Response | tuple | str):
                return result
            if adapter is not None:  # ORM objects or dicts, shaped (and masked) by the schema
                shaped = adapter.validate_python(result, from_attributes=True)
                result = adapter.dump_python(shaped, mode="json", by_alias=True)
            return jsonify(result), status

        api.add_url_rule(path, name, handle, methods=[method])
        RULES[f"api.{name}"] = access
        ENDPOINTS.append(ep)
        return handle

    return register


# parsing -------------------------------------------------------------------------
_LIST_FIELDS: dict[type, frozenset[str]] = {}


def _list_fields(model: type[BaseModel]) -> frozenset[str]:
    """Query parameters that may repeat (declared as lists)."""
    if model not in _LIST_FIELDS:
        _LIST_FIELDS[model] = frozenset(
            name for name, f in model.model_fields.items() if "list" in str(f.annotation).lower()
        )
    return _LIST_FIELDS[model]


def parse_query(model: type[BaseModel]) -> BaseModel:
    """The query string as `model`; the first wrong parameter is a 422 naming it."""
    lists = _list_fields(model)
    data = {
        key: (request.args.getlist(key) if key in lists else request.args.get(key))
        for key in request.args
    }
    # An empty parameter (?status=) means "not given", as forms send it.
    data = {k: v for k, v in data.items() if v not in ("", [])}
    return validate(model, data)


def parse_body(model: type[BaseModel]) -> BaseModel:
    """The JSON body as `model`: 400 for what is not a JSON object, 422 for a wrong field."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        return validate(model, {})
    if request.mimetype != "application/json":
        abort(
            400,
            description=Phrase("the body is not valid JSON (send Content-Type: application/json)"),
        )
    try:
        return model.model_validate_json(raw)
    except pydantic.ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        if first["type"] == "json_invalid":
            abort(
                400,
                description=Phrase(
                    "the body is not valid JSON: {error}", error=first["ctx"]["error"]
                ),
            )
        if first["type"] in ("model_type", "model_attributes_type") and not first["loc"]:
            abort(400, description=Phrase("the body must be a JSON object"))
        raise as_validation_error(first) from None


def validate(model: type[BaseModel], data: dict) -> BaseModel:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise as_validation_error(exc.errors(include_url=False)[0]) from None


# One plain reason per kind of mistake; the field is named separately.
REASONS = {
    "missing": "is required",
    "extra_forbidden": "is not a field of this request",
    "string_type": "must be text",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "date_type": "must be a date (YYYY-MM-DD)",
    "date_parsing": "must be a date (YYYY-MM-DD)",
    "date_from_datetime_parsing": "must be a date (YYYY-MM-DD)",
    "date_from_datetime_inexact": "must be a date (YYYY-MM-DD)",
}


def as_validation_error(err: dict) -> ValidationError:
    """A pydantic error as the domain's ValidationError(reason, field)."""
    # The field is the top-level name; inside it only list positions are kept (union
    # members and validator names also show up in pydantic's location).
    loc = err["loc"]
    field_name = str(loc[0]) if loc else "body"
    places = [str(part) for part in loc[1:] if isinstance(part, int)]
    inner = Phrase("item {index}", index=".".join(places)) if places else None
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind in REASONS:
        reason = Phrase(REASONS[kind])
    elif kind in ("greater_than_equal", "greater_than"):
        reason = Phrase("must be ≥ {low}", low=ctx.get("ge", ctx.get("gt")))
    elif kind in ("less_than_equal", "less_than"):
        reason = Phrase("must be ≤ {high}", high=ctx.get("le", ctx.get("lt")))
    elif kind == "string_too_long":
        reason = Phrase("is longer than {n} characters", n=ctx.get("max_length"))
    elif kind == "too_long":
        reason = Phrase("is longer than {n} items", n=ctx.get("max_length"))
    elif kind == "string_too_short":
        reason = Phrase("needs at least {n} characters", n=ctx.get("min_length"))
    elif kind == "too_short":
        reason = Phrase("needs at least {n} items", n=ctx.get("min_length"))
    elif kind in ("literal_error", "enum"):
        choices = ctx.get("expected", "").replace(chr(39), "")
        reason = Phrase("must be one of {choices}", choices=choices)
    elif kind == "value_error" and isinstance(ctx.get("error"), IpamError):
        reason = Phrase(ctx["error"].template, **ctx["error"].params)
    elif kind == "value_error":
        reason = Phrase("{reason}", reason=str(ctx.get("error") or err["msg"]))
    else:
        reason = Phrase("{reason}", reason=err["msg"])
    if inner:
        return ValidationError("{inner}: {reason}", field_name, inner=inner, reason=reason)
    return ValidationError(reason.template, field_name, **reason.params)
