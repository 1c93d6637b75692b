"""Template helpers: local times, languages, the navigation a role sees."""

from __future__ import annotations

from datetime import date, datetime

from flask import Flask, request
from flask_babel import format_datetime, get_locale
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from netaddr import IPAddress

from ipam.models import CaseState, Role
from ipam.privacy import mask, mask_id, masked
from ipam.reports.base import term

from .extensions import LANGUAGES
from .labels import actor, label, probe_method, verb
from .messages import logged

NAV = [
    ("ui.dashboard", _l("Dashboard"), set(Role)),
    ("ui.pools_page", _l("Pools"), {Role.ADMIN, Role.ENGINEER, Role.AUDITOR}),
    ("ui.customers_page", _l("Customers"), {Role.ADMIN, Role.ENGINEER, Role.AUDITOR}),
    ("ui.change_requests_page", _l("Change requests"), set(Role)),
    ("ui.quarantine", _l("Quarantine"), {Role.ADMIN, Role.ENGINEER, Role.AUDITOR}),
    ("ui.probes_page", _l("Probes"), {Role.ADMIN, Role.ENGINEER, Role.AUDITOR}),
    ("ui.findings_page", _l("Findings"), {Role.ADMIN, Role.ENGINEER, Role.AUDITOR}),
    ("ui.abuse_cases_page", _l("Abuse cases"), {Role.ADMIN, Role.ENGINEER, Role.AUDITOR}),
    ("ui.incidents_page", _l("Incidents"), {Role.ADMIN, Role.ENGINEER, Role.AUDITOR}),
    ("ui.attribution_page", _l("Who held it?"), set(Role)),
    ("ui.sites_page", _l("Sites"), set(Role)),
    ("ui.reports_page", _l("Regulatory reports"), set(Role)),
    ("ui.lists_page", _l("Lists"), set(Role)),
    ("ui.certificates_page", _l("Certificates"), set(Role)),
    ("ui.tokens", _l("API tokens"), set(Role)),
    ("ui.users_page", _l("Users"), {Role.ADMIN}),
    ("ui.account", _l("My account"), set(Role)),
]


def localtime(value) -> str:
    """A stored UTC instant in the display time zone (Asia/Shanghai by default)."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        return format_datetime(value, "yyyy-MM-dd HH:mm")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def size(value: int, prefix: str) -> str:
    """A count of addresses as people read it: IPv4 with separators, IPv6 in /64s (a
    30-digit number says nothing), e.g. "4,096 × /64"."""
    value = int(value or 0)
    if ":" not in str(prefix):
        return f"{value:,}"
    sixty_fours, rest = divmod(value, 1 << 64)
    if not sixty_fours:
        return f"{rest:,}"
    return f"{sixty_fours:,} × /64" + (f" + {rest:,}" if rest else "")


def register(app: Flask) -> None:
    app.jinja_env.filters["size"] = size
    app.jinja_env.filters["localtime"] = localtime
    app.jinja_env.filters["label"] = label
    app.jinja_env.filters["verb"] = verb
    app.jinja_env.filters["actor"] = actor
    app.jinja_env.filters["logged"] = logged
    app.jinja_env.filters["probe_method"] = probe_method
    app.jinja_env.filters["term"] = term
    app.jinja_env.filters["case_state"] = lambda v: label(CaseState(v)) if v else ""
    app.jinja_env.filters["address"] = lambda value, family: str(
        IPAddress(int.from_bytes(value, "big"), family)
    )
    app.jinja_env.filters["mask_id"] = mask_id
    app.jinja_env.filters["masked"] = masked
    app.jinja_env.filters["mask_phone"] = mask
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True

    @app.context_processor
    def common():
        role = current_user.role if current_user.is_authenticated else None
        nav = [(ep, label) for ep, label, roles in NAV if role in roles]
        return {
            "nav": nav,
            "languages": LANGUAGES,
            "locale": str(get_locale()),
            "Role": Role,
            "role": role,
            "next_url": request.full_path.rstrip("?"),
        }
