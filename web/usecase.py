"""One use case, one transaction, committed at the request boundary."""

from __future__ import annotations

from collections.abc import Callable

from .extensions import db


def run(change: Callable, then: Callable | None = None):
    """Call `change(session)`, commit, then shape the result with `then`.

    Any error rolls everything back, so a refused request leaves nothing half-written.
    Shaping after commit keeps pool locks short; the session does not expire
    objects on commit (web/extensions.py), so shaping needs no reload.
    """
    try:
        result = change(db.session)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return then(result) if then is not None else result
