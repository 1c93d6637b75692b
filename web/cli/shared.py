"""What the commands share that loads nothing heavy (`ipam whois` uses it without the app):
the actor option, the display zone, an attribution as a terminal shows it."""

from __future__ import annotations

import os
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click


def default_actor() -> str:
    import getpass

    return os.environ.get("IPAM_ACTOR") or f"cli:{getpass.getuser()}"


actor_option = click.option(
    "--actor",
    default=default_actor,
    show_default="cli:$USER",
    help="who makes the change, for the audit log",
)


def zone(name: str) -> ZoneInfo:
    """The zone times are shown in (IPAM_TIMEZONE); an unknown name is an error line."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise click.ClickException(f"IPAM_TIMEZONE: {name!r} is not a known time zone") from None


def format_attribution(r, zone: ZoneInfo | None = None) -> str:
    """Render an attribution for a terminal, times in `zone` (default UTC)."""
    zone = zone or ZoneInfo("UTC")

    def show(value):
        return value.astimezone(zone).isoformat() if value else "now"

    lines = [f"address:   {r.address}", f"at:        {show(r.at)}", f"status:    {r.status}"]
    if r.pool:
        lines.append(f"pool:      {r.pool['name']} ({r.pool['prefix']})")
    if r.allocation:
        a = r.allocation
        lines.append(
            f"allocation: {a['prefix']} from {show(a['valid_from'])} to {show(a['valid_to'])}"
            + (f" ({a['end_reason']})" if a["end_reason"] else "")
        )
    if r.customer:
        c = r.customer
        lines.append(f"customer:  {c['name']} (USCC {c['uscc']}, {c['kind']})")
        for p in c.get("contacts", []):
            lines.append(
                "  contact: "
                + ", ".join(str(p[k]) for k in ("name", "role", "phone", "email") if p.get(k))
            )
    if r.sublease:
        s = r.sublease
        lines.append(
            f"sublease:  {s['prefix']} from {show(s['valid_from'])} to {show(s['valid_to'])}"
        )
    if r.sublessee:
        p = r.sublessee
        lines.append(f"sublessee: {p['name']} ({p['kind']}, {p['id_type']} {p['id_number']})")
        lines.append(f"  contact: {p['contact_person']}, {p['phone']}, {p['email']}")
        lines.append(f"  purpose: {p['purpose']}")
    if r.quarantine:
        q = r.quarantine
        lines.append(
            f"quarantine: {q['prefix']} since {show(q['since'])} until "
            f"{show(q['until'])}: {q['reason']}"
        )
    lines.extend(f"note:      {n}" for n in r.notes)
    return "\n".join(lines)
