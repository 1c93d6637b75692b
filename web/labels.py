"""The words shown for every state and kind, translated here and only here.

Templates write `case.state|label`. The labels are kept per enum: two enums
may share a value ("open" is a case state, a finding status and an incident
state) and need not share a word.
"""

from __future__ import annotations

import enum

from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from ipam.models import (
    CaseState,
    CustomerAnswer,
    FindingStatus,
    Holding,
    IncidentState,
    RejectedStatus,
    RunStatus,
    RunTrigger,
    SanctionStatus,
)

LABELS: dict[type[enum.Enum], dict[str, object]] = {
    CaseState: {
        "open": _l("open"),
        "notified": _l("notified"),
        "acknowledged": _l("acknowledged"),
        "escalated": _l("escalated"),
        "resolved": _l("resolved"),
    },
    CustomerAnswer: {
        "none": _l("none"),
        "acknowledged": _l("acknowledged"),
        "answered": _l("answered"),
        "disputed": _l("disputed"),
    },
    FindingStatus: {"open": _l("open"), "resolved": _l("resolved")},
    Holding: {
        "held": _l("held"),
        "unallocated": _l("unallocated"),
        "quarantined": _l("quarantined"),
    },
    IncidentState: {"open": _l("open"), "reported": _l("reported"), "closed": _l("closed")},
    RejectedStatus: {"rejected": _l("rejected"), "accepted": _l("accepted")},
    RunStatus: {
        "queued": _l("queued"),
        "running": _l("running"),
        "done": _l("done"),
        "failed": _l("failed"),
    },
    RunTrigger: {"schedule": _l("schedule"), "manual": _l("manual")},
    SanctionStatus: {
        "proposed": _l("proposed"),
        "confirmed": _l("confirmed"),
        "cancelled": _l("cancelled"),
    },
}


def label(value) -> str:
    """The word for a state or kind in the user's language (other enums: their value's)."""
    if value is None:
        return ""
    words = LABELS.get(type(value))
    if words is not None and str(value) in words:
        return str(words[str(value)])
    return gettext(str(value.value if isinstance(value, enum.Enum) else value))
