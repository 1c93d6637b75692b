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


# What was done, as the case history and the incident log name it (their `action`/`kind`),
# and the actions a case page offers.
VERBS: dict[str, object] = {
    "notify": _l("notify"),
    "acknowledge": _l("acknowledge"),
    "resolve": _l("resolve"),
    "escalate": _l("escalate"),
    "mail": _l("mail the customer"),
    "sanction": _l("sanction"),
    "assign": _l("assign"),
    "reminder": _l("reminder"),
    "customer_acknowledged": _l("customer acknowledged"),
    "customer_answered": _l("customer answered"),
    "customer_disputed": _l("customer disputed"),
    "sanction.propose": _l("sanction proposed"),
    "sanction.confirm": _l("sanction confirmed"),
    "declare": _l("declare"),
    "measure": _l("measure"),
    "note": _l("note"),
    "evidence": _l("evidence frozen"),
    "report": _l("report to the authority"),
    "close": _l("close"),
}

# How a probe schedule looks at its addresses.
PROBE_METHODS: dict[str, object] = {
    "icmp": _l("ping (ICMP)"),
    "tcp": _l("TCP ports"),
    "dns": _l("reverse DNS"),
    "blocklist": _l("blocklists"),
}


def probe_method(value) -> str:
    word = PROBE_METHODS.get(str(value))
    return str(word) if word is not None else str(value)


# Who did it: the audit's actor strings (`user:NAME`, `cli:LOGIN`, `scheduler:HOST`...).
ACTORS = {
    "user": lambda name: gettext("user %(name)s", name=name),
    "cli": lambda name: gettext("command line (%(name)s)", name=name),
    "scheduler": lambda name: gettext("scheduler (%(name)s)", name=name),
    "probe-run": lambda name: gettext("probe run %(name)s", name=name),
    "demo": lambda name: gettext("demo data"),
    "anonymous": lambda name: gettext("anonymous"),
}


def verb(value) -> str:
    """An action of a case or an incident in the user's language (unknown ones as stored)."""
    word = VERBS.get(str(value or ""))
    return str(word) if word is not None else str(value or "")


def actor(value) -> str:
    """An actor string as words: `user:engineer` is "用户 engineer"; unknown kinds as stored."""
    text = str(value or "")
    kind, _, name = text.partition(":")
    word = ACTORS.get(kind)
    return word(name) if word is not None else text


def label(value) -> str:
    """The word for a state or kind in the user's language (other enums: their value's)."""
    if value is None:
        return ""
    words = LABELS.get(type(value))
    if words is not None and str(value) in words:
        return str(words[str(value)])
    return gettext(str(value.value if isinstance(value, enum.Enum) else value))
