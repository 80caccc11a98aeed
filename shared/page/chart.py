"""Distance per week for the last 12 months, as an inline SVG bar chart: pure, no library, no script.

Weeks start on Monday in ACTIVITY_TIMEZONE. Only activities on Strava (synced or duplicate) count, so a
week with nothing synced is a gap, drawn as a marker under the axis so it stands out rather than vanishes.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

WEEKS = 52
WIDTH, HEIGHT = 780, 200
LEFT, BOTTOM, TOP = 40, 24, 10


@dataclass(frozen=True)
class Week:
    start: date  # Monday
    km: float
    synced: int


def weekly(done: Iterable[tuple[date, float | None]], today: date, weeks: int = WEEKS) -> list[Week]:
    """`weeks` weeks ending with today's, oldest first, from (local day, metres) of each activity on Strava."""
    first = today - timedelta(days=today.weekday()) - timedelta(weeks=weeks - 1)
    km = [0.0] * weeks
    count = [0] * weeks
    for day, metres in done:
        index = (day - first).days // 7
        if 0 <= index < weeks:
            km[index] += (metres or 0.0) / 1000
            count[index] += 1
    return [Week(first + timedelta(weeks=i), round(km[i], 2), count[i]) for i in range(weeks)]


def _nice_top(value: float) -> float:
    for step in (5, 10, 20, 25, 50, 100, 200, 250, 500, 1000):
        if value <= step:
            return float(step)
    return float(int(value / 1000 + 1) * 1000)


def svg(weeks: list[Week], *, title_id: str = "chart-title", desc_id: str = "chart-desc") -> str:
    """The chart as SVG markup; styled by class from the stylesheet (the CSP forbids inline styles)."""
    top = _nice_top(max((w.km for w in weeks), default=0.0))
    plot_w, plot_h = WIDTH - LEFT - 4, HEIGHT - BOTTOM - TOP
    slot = plot_w / max(1, len(weeks))
    total_km = sum(w.km for w in weeks)
    synced = sum(w.synced for w in weeks)
    gaps = sum(1 for w in weeks if w.synced == 0)
    out = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="{title_id} {desc_id}"'
        ' preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{title_id}">Distance per week, last {len(weeks)} weeks</title>',
        f'<desc id="{desc_id}">{total_km:.1f} km in {synced} activities on Strava; {gaps} weeks with nothing '
        'synced, marked under the axis.</desc>',
    ]
    for fraction in (0.0, 0.5, 1.0):
        y = TOP + plot_h * (1 - fraction)
        out.append(f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - 4}" y2="{y:.1f}"/>')
        out.append(f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{top * fraction:g}</text>')
    for i, week in enumerate(weeks):
        x = LEFT + i * slot
        label = html.escape(f"week of {week.start:%d %b %Y}: {week.km:.1f} km, {week.synced} synced")
        if week.synced == 0:
            out.append(f'<rect class="gap" x="{x + slot * 0.2:.1f}" y="{TOP + plot_h + 3}" width="{slot * 0.6:.1f}"'
                       f' height="5"><title>{label} (nothing synced)</title></rect>')
            continue
        h = max(2.0, plot_h * week.km / top)
        out.append(f'<rect class="bar" x="{x + slot * 0.1:.1f}" y="{TOP + plot_h - h:.1f}" width="{slot * 0.8:.1f}"'
                   f' height="{h:.1f}"><title>{label}</title></rect>')
    for i, week in enumerate(weeks):
        if week.start.day <= 7:  # the first week of each month gets its name
            x = LEFT + i * slot
            out.append(f'<text class="axis" x="{x:.1f}" y="{HEIGHT - 4}">{week.start:%b}</text>')
    out.append("</svg>")
    return "".join(out)
