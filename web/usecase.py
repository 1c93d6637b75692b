"""One use case, one transaction, committed at the request boundary."""

from __future__ import annotations

from collections.abc import Callable

from .extensions import db


def run(change: Callable, then: Callable | None = None):
    """Call `change(session)`, shape the result with `then` (before commit), commit.

    Any error rolls everything back, so a refused request leaves nothing half-written.
    """
    try:
        result = change(db.session)
        shaped = then(result) if then is not None else result
        db.session.commit()
        return shaped
    except Exception:
        db.session.rollback()
        raise
