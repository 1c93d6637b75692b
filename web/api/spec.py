"""The OpenAPI 3.1 description of /api/v1, written from the endpoints' own declarations.

Paths, methods, access, parameters, bodies and answers all come from
`@endpoint(...)` (web/api/endpoint.py) and the pydantic schemas it names, so
the description cannot drift from what the API checks and answers.
"""

from __future__ import annotations

import functools
import re

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from ..schemas.common import Error
from .endpoint import ENDPOINTS, Endpoint

REF = "#/components/schemas/{model}"
ERRORS = (
    ("400", "malformed request"),
    ("401", "not logged in"),
    ("403", "your role may not"),
    ("404", "no such object (or not yours)"),
    ("409", "conflict or exhausted"),
    ("422", "a field is invalid"),
)
PATH_ARG = re.compile(r"<(?:\w+:)?(\w+)>")
PATH_PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")


def _path_schema(converter: str) -> dict:
    """An id (<int:...>) or a name (a report's)."""
    if converter == "int":
        return {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
    return {"type": "string", "minLength": 1, "maxLength": 64}


def _who(ep: Endpoint) -> str:
    if ep.access is None:
        return "public"
    return ", ".join(sorted(role.value for role in ep.access))


def _query_parameters(model: type[BaseModel], schemas: dict) -> list[dict]:
    schema = schemas[(model, "validation")]
    props = schema.get("properties", {})
    required = set(schema.get("required", []))
    out = []
    for name, prop in props.items():
        prop = dict(prop)
        description = prop.pop("description", None)
        prop.pop("title", None)
        param = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if description:
            param["description"] = description
        out.append(param)
    return out


@functools.cache
def spec() -> dict:
    """The whole description (built once: the declarations do not change at run time)."""
    from pydantic import TypeAdapter

    models: list[tuple[type[BaseModel], str]] = []
    for ep in ENDPOINTS:
        for model, mode in ((ep.query, "validation"), (ep.body, "validation")):
            if model is not None:
                models.append((model, mode))
    models.append((Error, "serialization"))
    keys, top = models_json_schema(list(dict.fromkeys(models)), ref_template=REF)
    components = dict(top.get("$defs", {}))
    # Queries are inlined as parameters: resolve them without their own components.
    query_schemas = {
        (ep.query, "validation"): ep.query.model_json_schema(ref_template=REF)
        for ep in ENDPOINTS
        if ep.query is not None
    }
    for schema in query_schemas.values():
        components.update(schema.pop("$defs", {}))

    paths: dict[str, dict] = {}
    for ep in ENDPOINTS:
        path = PATH_ARG.sub(r"{\1}", ep.path)
        op: dict = {
            "operationId": ep.name,
            "summary": ep.summary,
            "description": (ep.description + "\n\n" if ep.description else "")
            + f"Who may call it: {_who(ep)}.",
            "parameters": [
                {"name": name, "in": "path", "required": True, "schema": _path_schema(conv)}
                for conv, name in PATH_PARAM.findall(ep.path)
            ],
        }
        if ep.query is not None:
            op["parameters"] += _query_parameters(ep.query, query_schemas)
        content: dict = {}
        if ep.body is not None:
            content["application/json"] = {"schema": keys[(ep.body, "validation")]}
        for media, text in ep.consumes.items():
            content.setdefault(media, {"schema": {"type": "string", "description": text}})
        if content:
            op["requestBody"] = {"required": ep.body is None, "content": content}
        answer: dict = {"description": "success"}
        if ep.out is not None:
            schema = TypeAdapter(ep.out).json_schema(ref_template=REF, mode="serialization")
            components.update(schema.pop("$defs", {}))
            answer["content"] = {"application/json": {"schema": schema}}
        for media, text in ep.produces.items():
            answer.setdefault("content", {})[media] = {
                "schema": {"type": "string", "description": text}
            }
        op["responses"] = {
            str(ep.status): answer,
            **{
                code: {
                    "description": text,
                    "content": {
                        "application/json": {"schema": {"$ref": REF.format(model="Error")}}
                    },
                }
                for code, text in ERRORS
            },
        }
        for code, (model, text) in ep.answers.items():
            schema = TypeAdapter(model).json_schema(ref_template=REF, mode="serialization")
            components.update(schema.pop("$defs", {}))
            op["responses"][str(code)] = {
                "description": text,
                "content": {"application/json": {"schema": schema}},
            }
        if ep.access is None:
            op["security"] = []
        paths.setdefault(path, {})[ep.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ipam API",
            "version": "1",
            "description": "IP address management for an ISP: pools, customers, allocations, "
            "sublessees (clause 19), change requests (clause 18), quarantine, attribution, "
            "probes and the abuse desk. "
            'Every error answers {"error": {"code", "message", "field"}}.',
        },
        "servers": [{"url": "/api/v1"}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "token": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "session"},
            },
            "schemas": components,
        },
        "security": [{"token": []}, {"session": []}],
    }
