"""Quarantine (addresses cooling down after reclamation) in the JSON API."""

from __future__ import annotations

from ipam import reclamation

from ..access import READERS, STAFF, actor
from ..extensions import db
from ..schemas.ledger import QuarantineList, ReleasedOut, ReleaseIn
from ..usecase import run
from .endpoint import endpoint


@endpoint("GET", "/quarantine", access=READERS, out=QuarantineList)
def quarantine_list():
    """Blocks in quarantine"""
    return {"items": reclamation.quarantined(db.session)}


@endpoint(
    "POST", "/quarantine/<int:quarantine_id>/release", access=STAFF, body=ReleaseIn,
    out=ReleasedOut,
)  # fmt: skip
def quarantine_release(quarantine_id, body: ReleaseIn):
    """Release a block early (a reason is required before its time)"""
    released = run(
        lambda s: reclamation.release_quarantine(
            s, actor=actor(), quarantine_id=quarantine_id, early_reason=body.reason
        )
    )
    return {"released": released}
