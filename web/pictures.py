"""Pictures drawn on the server as SVG: no script, no CDN, readable in both languages.

Each picture has a title and a description for screen readers, and the page shows
the same facts as a table beside it (the text alternative).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from markupsafe import Markup, escape

from ipam.history import LANES, Timeline

from .labels import label

WIDTH, LEFT, ROW, GAP = 960, 120, 18, 6
COLOURS = {
    "holder": "#1565c0",
    "sublease": "#6a1b9a",
    "quarantine": "#a84300",
    "finding": "#2e7d32",
    "case": "#c62828",
}


def lane_name(lane: str) -> str:
    return {
        "holder": _("Holder"),
        "sublease": _("Sublessee"),
        "quarantine": _("Quarantine"),
        "finding": _("Probe findings"),
        "case": _("Abuse cases"),
    }[lane]


def span_label(span) -> str:
    """What a span is, in the user's language (a finding's kind, a case's category)."""
    if span.lane in ("finding", "case"):
        return label(span.label) or span.label
    return span.label


def _rows(spans) -> list[list]:
    """Spans of one lane put into rows so that none overlaps another in its row."""
    rows: list[list] = []
    for s in spans:
        for row in rows:
            last = row[-1]
            if last.end is not None and last.end <= s.start:
                row.append(s)
                break
        else:
            rows.append([s])
    return rows or [[]]


def _ticks(start: datetime, end: datetime, zone: ZoneInfo) -> list[datetime]:
    """Month or year starts across the axis, at most about ten."""
    local = start.astimezone(zone)
    months = (end - start).days / 30
    step = 1 if months <= 12 else 3 if months <= 36 else 12
    tick = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if step == 12:
        tick = tick.replace(month=1)
    out = []
    while tick <= end:
        if tick >= start:
            out.append(tick)
        month = tick.month - 1 + step
        tick = tick.replace(year=tick.year + month // 12, month=month % 12 + 1)
    return out


def timeline_svg(tl: Timeline, zone_name: str) -> Markup:
    zone = ZoneInfo(zone_name)
    span_seconds = max((tl.end - tl.start).total_seconds(), 1)
    inner = WIDTH - LEFT - 10

    def x(when: datetime) -> float:
        return LEFT + inner * (when - tl.start).total_seconds() / span_seconds

    parts: list[str] = []
    y = 24
    for lane in LANES:
        rows = _rows(tl.lane(lane))
        height = len(rows) * (ROW + 2)
        parts.append(
            f'<text x="4" y="{y + 13}" class="lane">{escape(lane_name(lane))}</text>'
            f'<line x1="{LEFT}" x2="{WIDTH - 10}" y1="{y + height + GAP / 2}" '
            f'y2="{y + height + GAP / 2}" stroke="#d0d7de"/>'
        )
        for i, row in enumerate(rows):
            for s in row:
                x0 = x(s.start)
                x1 = x(s.end or tl.end)
                w = max(x1 - x0, 3)
                top = y + i * (ROW + 2)
                end = s.end.astimezone(zone).strftime("%Y-%m-%d") if s.end else _("now")
                what = f"{span_label(s)} · {s.prefix} · {s.start.astimezone(zone):%Y-%m-%d} – {end}"
                dash = ' stroke-dasharray="3 2" fill-opacity="0.55"' if s.end is None else ""
                parts.append(
                    f'<g class="span" data-lane="{lane}"><title>{escape(what)}</title>'
                    f'<rect x="{x0:.1f}" y="{top}" width="{w:.1f}" height="{ROW}" rx="2" '
                    f'fill="{COLOURS[lane]}" stroke="#000" stroke-width="0.5"{dash}/>'
                )
                if w > 60:
                    text = escape(span_label(s))
                    parts.append(f'<text x="{x0 + 3:.1f}" y="{top + 13}" class="in">{text}</text>')
                parts.append("</g>")
        y += height + GAP
    axis = y + 4
    parts.append(f'<line x1="{LEFT}" x2="{WIDTH - 10}" y1="{axis}" y2="{axis}" stroke="#555"/>')
    for tick in _ticks(tl.start, tl.end, zone):
        tx = x(tick)
        anchor = ' style="text-anchor:end"' if tx > WIDTH - 40 else ""
        parts.append(
            f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="20" y2="{axis + 4}" stroke="#e3e6ea"/>'
            f'<text x="{tx:.1f}" y="{axis + 16}" class="tick"{anchor}>{tick:%Y-%m}</text>'
        )
    height = axis + 24
    title = escape(_("History of %(block)s", block=str(tl.block)))
    desc = escape(
        _(
            "%(n)s spans from %(start)s to %(end)s; the table below lists them.",
            n=len(tl.spans),
            start=f"{tl.start.astimezone(zone):%Y-%m-%d}",
            end=f"{tl.end.astimezone(zone):%Y-%m-%d}",
        )
    )
    return Markup(
        f'<svg id="timeline" role="img" aria-labelledby="timeline-title timeline-desc" '
        f'viewBox="0 0 {WIDTH} {height}" width="100%" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="timeline-title">{title}</title><desc id="timeline-desc">{desc}</desc>'
        "<style>.lane{font:600 12px sans-serif;fill:#1d2733}.in{font:11px sans-serif;"
        "fill:#fff}.tick{font:11px sans-serif;fill:#333;text-anchor:middle}</style>"
        + "".join(parts)
        + "</svg>"
    )


def week_start(when: datetime, zone: ZoneInfo) -> datetime:
    local = when.astimezone(zone)
    monday = local - timedelta(days=local.weekday())
    return monday.replace(hour=0, minute=0, second=0, microsecond=0)


PALETTE = ("#1565c0", "#c62828", "#2e7d32", "#6a1b9a", "#a84300", "#00695c", "#ad1457",
           "#4e342e", "#37474f")  # fmt: skip


def _frame(pid: str, title: str, desc: str, height: int, body: list[str]) -> Markup:
    return Markup(
        f'<svg id="{pid}" role="img" aria-labelledby="{pid}-title {pid}-desc" '
        f'viewBox="0 0 {WIDTH} {height}" width="100%" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{pid}-title">{escape(title)}</title><desc id="{pid}-desc">{escape(desc)}'
        "</desc><style>.t{font:11px sans-serif;fill:#333}.n{font:600 11px sans-serif;"
        "fill:#1d2733;text-anchor:middle}</style>" + "".join(body) + "</svg>"
    )


def weekly_bars_svg(weeks: list, categories: list[str]) -> Markup:
    """Cases opened per week, stacked by category, with the total above each bar."""
    top = max((sum(c.values()) for _, c in weeks), default=0) or 1
    plot_h, base = 160, 190
    step = (WIDTH - LEFT) / max(len(weeks), 1)
    body = [f'<line x1="{LEFT}" x2="{WIDTH - 10}" y1="{base}" y2="{base}" stroke="#555"/>']
    for i, (start, counts) in enumerate(weeks):
        x0 = LEFT + i * step + step * 0.15
        w = step * 0.7
        y = base
        for j, cat in enumerate(categories):
            n = counts.get(cat, 0)
            if not n:
                continue
            h = plot_h * n / top
            y -= h
            body.append(
                f'<rect x="{x0:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" '
                f'fill="{PALETTE[j % len(PALETTE)]}">'
                f"<title>{escape(label(cat))}: {n}</title></rect>"
            )
        total = sum(counts.values())
        if total:
            body.append(f'<text x="{x0 + w / 2:.1f}" y="{y - 4:.1f}" class="n">{total}</text>')
        body.append(
            f'<text x="{x0 + w / 2:.1f}" y="{base + 14}" class="t" '
            f'style="text-anchor:middle">{start:%m-%d}</text>'
        )
    for j, cat in enumerate(categories):
        y = 20 + j * 16
        body.append(
            f'<rect x="4" y="{y - 9}" width="10" height="10" fill="{PALETTE[j % len(PALETTE)]}"/>'
            f'<text x="18" y="{y}" class="t">{escape(label(cat))}</text>'
        )
    height = max(base + 24, 20 + len(categories) * 16)
    total = sum(sum(c.values()) for _, c in weeks)
    return _frame(
        "weekly",
        _("Abuse cases opened per week, by category"),
        _(
            "%(n)s cases in %(w)s weeks; the table below gives the numbers.", n=total, w=len(weeks)
        ),  # fmt: skip
        height,
        body,
    )


def utilization_svg(points: list) -> Markup:
    """Held share of a pool over time as a line, with the percentage at each point."""
    plot_h, base = 160, 180
    step = (WIDTH - LEFT) / max(len(points) - 1, 1)
    body = [
        f'<line x1="{LEFT}" x2="{WIDTH - 10}" y1="{base}" y2="{base}" stroke="#555"/>',
        f'<text x="{LEFT - 6}" y="{base - plot_h + 4}" class="t" '
        'style="text-anchor:end">100 %</text>',
        f'<text x="{LEFT - 6}" y="{base + 4}" class="t" style="text-anchor:end">0 %</text>',
    ]
    coords = []
    for i, (at, held, size) in enumerate(points):
        share = held / size if size else 0
        x0, y0 = LEFT + i * step, base - plot_h * share
        coords.append(f"{x0:.1f},{y0:.1f}")
        body.append(
            f'<circle cx="{x0:.1f}" cy="{y0:.1f}" r="3" fill="#1565c0"/>'
            f'<text x="{x0:.1f}" y="{y0 - 7:.1f}" class="n">{share:.0%}</text>'
            f'<text x="{x0:.1f}" y="{base + 14}" class="t" style="text-anchor:middle">'
            f"{at:%Y-%m}</text>"
        )
    body.insert(
        1, f'<polyline points="{" ".join(coords)}" fill="none" stroke="#1565c0" stroke-width="2"/>'
    )
    return _frame(
        "utilization",
        _("Held share of the pool over time"),
        _("The share held at the start of each month and now; the table below gives the numbers."),
        base + 24,
        body,
    )
