"""The API's own description: /openapi.json and a readable page of it."""

from __future__ import annotations

from flask import jsonify, render_template

from ..access import PUBLIC
from .endpoint import endpoint


@endpoint("GET", "/openapi.json", access=PUBLIC)
def openapi():
    """This description, OpenAPI 3.1"""
    from .spec import spec

    return jsonify(spec())


@endpoint("GET", "/docs", access=PUBLIC, produces={"text/html": "the description as a page"})
def docs():
    """The description as a page"""
    from .spec import spec

    return render_template("api_docs.html", spec=spec())
