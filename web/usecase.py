"""One use case, one transaction (ipam.db.transaction), committed at the request boundary."""

from __future__ import annotations

from collections.abc import Callable

from ipam.db import transaction

from .access import actor
from .extensions import db
from .mail import deliver_queued


def run(change: Callable, then: Callable | None = None):
    """Call `change(session)`, commit, send the mail it queued, then shape the result.

    Any error rolls everything back, so a refused request leaves nothing half-written
    and mails nothing. Shaping after commit keeps pool locks short; the session does
    not expire objects on commit (web/extensions.py), so shaping needs no reload.
    """
    session = db.session()  # the request's own session, not the scoped proxy: no lookup per use
    with transaction(session):
        result = change(session)
    deliver_queued(actor())
    return then(result) if then is not None else result
