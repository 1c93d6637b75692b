"""The web front doors of ipam: the Flask app (app.py), its pages, API and the `ipam` command.

The factory and its helpers live in app.py and load on first use (`from web import
create_app` works as before): `ipam whois` and `ipam --help` import web.cli without Flask.
"""

from __future__ import annotations

__all__ = ["MISSING_SECRET", "add_web", "create_app", "database_url", "migrations_dir"]


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module("web.app"), name)
