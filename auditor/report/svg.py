"""Inline SVG charts for the HTML report.

The report is one offline file, so charts are drawn here as plain SVG markup instead of by a
charting script. Every label is tenant text (flow, step and environment names) and goes
through `text` (`auditor.report.html_text`), which removes control characters and escapes it;
each function returns `Markup` so that the template inserts the drawing as it is. An empty
list gives a short "no data" paragraph rather than an empty frame.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from markupsafe import Markup

from auditor.report.document import DayRuns, NoisyFlow, QueueLatency, SlowFlow, SlowStep
from auditor.report.html_text import clean, format_count, format_ms, format_rate, number, text

WIDTH = 760  # viewBox width; the SVG scales to the page with width="100%"
LABEL_WIDTH = 290  # left column for the row labels of the horizontal charts
ROW_HEIGHT = 26
TALL_ROW = 36  # rows labelled with a name and, below it, its environment
LABEL_CHARS = 44  # labels longer than this are shortened; the full text is in a <title>

Percentiles = SlowStep | SlowFlow  # a row of a duration chart
Named = SlowStep | SlowFlow | NoisyFlow  # a row labelled with a name and its environment


def shorten(value: object, limit: int = LABEL_CHARS) -> str:
    """`value` cut to `limit` characters with an ellipsis; cut before escaping, so that an
    entity is never split."""
    s = clean(value)
    return s if len(s) <= limit else s[: limit - 1].rstrip() + "…"


def _f(x: float) -> str:
    """A coordinate, short enough to keep the file small."""
    return f"{x:.1f}".rstrip("0").rstrip(".")


def no_data(what: str) -> Markup:
    """The paragraph shown instead of a chart with nothing to draw."""
    return Markup('<p class="no-data">No data: {}.</p>').format(what)


def _svg(height: float, title: str, body: list[Markup]) -> Markup:
    head = Markup(
        '<svg class="chart" xmlns="http://www.w3.org/2000/svg" role="img" '
        'viewBox="0 0 {w} {h}" width="100%" preserveAspectRatio="xMinYMin meet">'
        "<title>{title}</title>"
    ).format(w=WIDTH, h=_f(height), title=text(title))
    return head + Markup("").join(body) + Markup("</svg>")


def _nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above `value` (axis maximum)."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= step * power:
            return step * power
    return 10 * power


def _duration_axis(peak_ms: float) -> tuple[float, float, str]:
    """An axis maximum for durations up to `peak_ms`, chosen round in the unit a reader
    would use (10 s, 30 min, not 33.3 min): (maximum in ms, ms per unit, unit)."""
    unit_ms, unit = 1.0, "ms"
    for size, name in ((1e3, "s"), (6e4, "min"), (3.6e6, "h"), (8.64e7, "d")):
        if peak_ms >= size:
            unit_ms, unit = size, name
    return _nice_ceiling(peak_ms / unit_ms) * unit_ms, unit_ms, unit


def _label(x: float, y: float, value: object, *, anchor: str = "end", cls: str = "") -> Markup:
    """A text label shortened to fit, with the full text as its tooltip."""
    full = clean(value)
    short = shorten(full)
    tip = Markup("<title>{}</title>").format(full) if short != full else Markup("")
    return Markup('<text x="{x}" y="{y}" text-anchor="{a}" class="{c}">{tip}{t}</text>').format(
        x=_f(x), y=_f(y), a=anchor, c=cls, tip=tip, t=short
    )


def _row_name(row: Named) -> str:
    return f"{clean(row.name)} · {clean(row.environment)}"


def _two_line_label(x: float, mid: float, row: Named) -> Markup:
    """A row's name and, smaller below it, its environment: the same flow name can exist in
    several environments."""
    return _label(x, mid - 2, row.name) + _label(x, mid + 11, row.environment, cls="env")


def runs_per_day(rows: Sequence[DayRuns]) -> Markup:
    """Flow runs per day as bars, the failed part of each bar in the failure colour."""
    days = [r for r in rows if number(r.runs) is not None]
    if not days:
        return no_data("no flow runs in the window")
    top, left, bottom, right = 24.0, 56.0, 40.0, 12.0
    height = 240.0
    plot_h = height - top - bottom
    plot_w = WIDTH - left - right
    peak = _nice_ceiling(max(number(r.runs) or 0.0 for r in days))
    slot = plot_w / len(days)
    bar = max(1.0, slot * 0.7)
    body: list[Markup] = []
    for k in range(5):
        value = peak * k / 4
        y = top + plot_h - plot_h * k / 4
        body.append(
            Markup(
                '<line class="grid" x1="{x1}" x2="{x2}" y1="{y}" y2="{y}"/>'
                '<text class="tick" x="{tx}" y="{ty}" text-anchor="end">{v}</text>'
            ).format(
                x1=_f(left),
                x2=_f(left + plot_w),
                y=_f(y),
                tx=_f(left - 6),
                ty=_f(y + 4),
                v=format_count(value),
            )
        )
    every = max(1, math.ceil(len(days) / 12))  # at most about twelve day labels
    for i, row in enumerate(days):
        runs = number(row.runs) or 0.0
        failed = min(runs, number(row.failed) or 0.0)
        x = left + i * slot + (slot - bar) / 2
        h_runs = plot_h * runs / peak
        h_failed = plot_h * failed / peak
        day = clean(row.day)
        tip = Markup("<title>{d}: {r} runs, {f} failed</title>").format(
            d=day, r=format_count(runs), f=format_count(failed)
        )
        body.append(
            Markup(
                '<g><rect class="bar" x="{x}" y="{y}" width="{w}" height="{h}"/>'
                '<rect class="bar-fail" x="{x}" y="{yf}" width="{w}" height="{hf}"/>{tip}</g>'
            ).format(
                x=_f(x),
                y=_f(top + plot_h - h_runs),
                w=_f(bar),
                h=_f(h_runs),
                yf=_f(top + plot_h - h_failed),
                hf=_f(h_failed),
                tip=tip,
            )
        )
        if i % every == 0:
            # ISO days are shown as MM-DD; anything else is shown as given, shortened.
            short = day[5:] if re.fullmatch(r"\d{4}-\d{2}-\d{2}", day) else shorten(day, 10)
            body.append(
                Markup('<text class="tick" x="{x}" y="{y}" text-anchor="middle">{t}</text>').format(
                    x=_f(x + bar / 2), y=_f(top + plot_h + 16), t=short
                )
            )
    body.append(
        Markup(
            '<line class="axis" x1="{l}" x2="{r}" y1="{y}" y2="{y}"/>'
            '<rect class="bar" x="{l}" y="{ly}" width="10" height="10"/>'
            '<text class="legend" x="{t1}" y="{ty}">runs</text>'
            '<rect class="bar-fail" x="{l2}" y="{ly}" width="10" height="10"/>'
            '<text class="legend" x="{t2}" y="{ty}">failed</text>'
        ).format(
            l=_f(left),
            r=_f(left + plot_w),
            y=_f(top + plot_h),
            ly=_f(height - 14),
            t1=_f(left + 14),
            l2=_f(left + 60),
            t2=_f(left + 74),
            ty=_f(height - 5),
        )
    )
    return _svg(height, "Flow runs and failed runs per day", body)


def _log_ticks(low: float, high: float) -> list[tuple[float, str]]:
    """Readable duration ticks between `low` and `high` milliseconds."""
    ticks = (
        (1.0, "1 ms"), (10.0, "10 ms"), (100.0, "100 ms"), (1e3, "1 s"), (1e4, "10 s"),
        (6e4, "1 min"), (6e5, "10 min"), (3.6e6, "1 h"), (3.6e7, "10 h"), (8.64e7, "1 d"),
        (8.64e8, "10 d"),
    )  # fmt: skip
    return [(v, label) for v, label in ticks if low <= v <= high]


def duration_percentiles(rows: Sequence[Percentiles], *, what: str) -> Markup:
    """p50, p95 and p99 (and max) per row on a logarithmic duration axis: a line from p50 to
    p99, dots at p50 and p95, a ring at p99, a tick at max. Durations span from milliseconds
    to hours, so a linear axis would hide all but the slowest row."""
    drawn = [r for r in rows if number(r.p95_ms) is not None]
    if not drawn:
        return no_data(f"no {what} durations in the window")
    values = [
        v
        for r in drawn
        for ms in (r.p50_ms, r.p95_ms, r.p99_ms, r.max_ms)
        if (v := number(ms)) is not None and v > 0
    ]
    low = 10.0 ** math.floor(math.log10(min(values))) if values else 1.0
    high = 10.0 ** math.ceil(math.log10(max(values))) if values else 10.0
    if high <= low:
        high = low * 10
    top, bottom, right = 16.0, 44.0, 84.0
    plot_l = float(LABEL_WIDTH)
    plot_w = WIDTH - plot_l - right
    height = top + TALL_ROW * len(drawn) + bottom
    span = math.log10(high) - math.log10(low)

    def xpos(ms: float) -> float:
        ms = min(max(ms, low), high)
        return plot_l + plot_w * (math.log10(ms) - math.log10(low)) / span

    body: list[Markup] = []
    plot_bottom = top + TALL_ROW * len(drawn)
    for value, label in _log_ticks(low, high):
        x = xpos(value)
        body.append(
            Markup(
                '<line class="grid" x1="{x}" x2="{x}" y1="{t}" y2="{b}"/>'
                '<text class="tick" x="{x}" y="{ty}" text-anchor="middle">{l}</text>'
            ).format(x=_f(x), t=_f(top), b=_f(plot_bottom), ty=_f(plot_bottom + 14), l=label)
        )
    for i, row in enumerate(drawn):
        y = top + TALL_ROW * i + TALL_ROW / 2
        p50, p95 = number(row.p50_ms), number(row.p95_ms)
        p99, mx = number(row.p99_ms), number(row.max_ms)
        body.append(_two_line_label(plot_l - 8, y, row))
        parts: list[Markup] = []
        ends = [v for v in (p50, p99) if v is not None and v > 0]
        if len(ends) == 2:
            parts.append(
                Markup('<line class="range" x1="{a}" x2="{b}" y1="{y}" y2="{y}"/>').format(
                    a=_f(xpos(ends[0])), b=_f(xpos(ends[1])), y=_f(y)
                )
            )
        if mx is not None and mx > 0:
            parts.append(
                Markup('<line class="max" x1="{x}" x2="{x}" y1="{a}" y2="{b}"/>').format(
                    x=_f(xpos(mx)), a=_f(y - 6), b=_f(y + 6)
                )
            )
        for point, cls, r in ((p50, "p50", 3.5), (p99, "p99", 4.5), (p95, "p95", 4.5)):
            if point is not None and point > 0:
                parts.append(
                    Markup('<circle class="{c}" cx="{x}" cy="{y}" r="{r}"/>').format(
                        c=cls, x=_f(xpos(point)), y=_f(y), r=r
                    )
                )
        tip = Markup("<title>{n}: p50 {a}, p95 {b}, p99 {c}, max {d}</title>").format(
            n=_row_name(row), a=format_ms(p50), b=format_ms(p95), c=format_ms(p99), d=format_ms(mx)
        )
        body.append(Markup("<g>{}{}</g>").format(Markup("").join(parts), tip))
        body.append(
            Markup('<text class="value" x="{x}" y="{y}">p95 {v}</text>').format(
                x=_f(plot_l + plot_w + 6), y=_f(y + 4), v=format_ms(p95)
            )
        )
    ly = height - 10
    body.append(
        Markup(
            '<line class="axis" x1="{l}" x2="{r}" y1="{b}" y2="{b}"/>'
            '<circle class="p50" cx="{x1}" cy="{cy}" r="3.5"/>'
            '<text class="legend" x="{t1}" y="{ly}">p50</text>'
            '<circle class="p95" cx="{x2}" cy="{cy}" r="4.5"/>'
            '<text class="legend" x="{t2}" y="{ly}">p95</text>'
            '<circle class="p99" cx="{x3}" cy="{cy}" r="4.5"/>'
            '<text class="legend" x="{t3}" y="{ly}">p99</text>'
            '<line class="max" x1="{x4}" x2="{x4}" y1="{m1}" y2="{m2}"/>'
            '<text class="legend" x="{t4}" y="{ly}">max (log scale)</text>'
        ).format(
            l=_f(plot_l),
            r=_f(plot_l + plot_w),
            b=_f(plot_bottom),
            cy=_f(ly - 4),
            ly=_f(ly),
            x1=_f(plot_l + 4),
            t1=_f(plot_l + 12),
            x2=_f(plot_l + 54),
            t2=_f(plot_l + 62),
            x3=_f(plot_l + 104),
            t3=_f(plot_l + 112),
            x4=_f(plot_l + 154),
            m1=_f(ly - 10),
            m2=_f(ly + 2),
            t4=_f(plot_l + 160),
        )
    )
    return _svg(height, f"Duration percentiles of the slowest {what}", body)


def noisy_flows(rows: Sequence[NoisyFlow]) -> Markup:
    """The share of each flow's runs that changed nothing, as a bar with its 95 % Wilson
    interval as an error bar: a small sample gives a wide interval, so a reader sees how
    sure the estimate is."""
    drawn = [r for r in rows if number(r.rate) is not None]
    if not drawn:
        return no_data("no flow was measured with unnecessary runs")
    top, bottom, right = 16.0, 44.0, 110.0
    plot_l = float(LABEL_WIDTH)
    plot_w = WIDTH - plot_l - right
    plot_bottom = top + TALL_ROW * len(drawn)
    height = plot_bottom + bottom

    def xpos(rate: float) -> float:
        return plot_l + plot_w * min(max(rate, 0.0), 1.0)

    body: list[Markup] = []
    for k in range(5):
        x = xpos(k / 4)
        body.append(
            Markup(
                '<line class="grid" x1="{x}" x2="{x}" y1="{t}" y2="{b}"/>'
                '<text class="tick" x="{x}" y="{ty}" text-anchor="middle">{l} %</text>'
            ).format(x=_f(x), t=_f(top), b=_f(plot_bottom), ty=_f(plot_bottom + 14), l=k * 25)
        )
    for i, row in enumerate(drawn):
        y = top + TALL_ROW * i
        mid = y + TALL_ROW / 2
        rate = number(row.rate) or 0.0
        low, high = number(row.rate_low), number(row.rate_high)
        body.append(_two_line_label(plot_l - 8, mid, row))
        parts = [
            Markup('<rect class="bar" x="{x}" y="{y}" width="{w}" height="{h}"/>').format(
                x=_f(plot_l), y=_f(y + 8), w=_f(xpos(rate) - plot_l), h=_f(TALL_ROW - 16)
            )
        ]
        if low is not None and high is not None:
            parts.append(
                Markup('<path class="error" d="M{a} {m}H{b}M{a} {t}V{u}M{b} {t}V{u}"/>').format(
                    a=_f(xpos(low)), b=_f(xpos(high)), m=_f(mid), t=_f(mid - 5), u=_f(mid + 5)
                )
            )
        tip = Markup(
            "<title>{n}: {r} of runs changed nothing (95 % interval {lo} to {hi}); "
            "about {e} of {f} finished runs, {s} sampled</title>"
        ).format(
            n=_row_name(row),
            r=format_rate(rate),
            lo=format_rate(low),
            hi=format_rate(high),
            e=format_count(row.estimated_unnecessary),
            f=format_count(row.finished_runs),
            s=format_count(row.sampled),
        )
        body.append(Markup("<g>{}{}</g>").format(Markup("").join(parts), tip))
        body.append(
            Markup('<text class="value" x="{x}" y="{y}">{r} · {e} of {f}</text>').format(
                x=_f(plot_l + plot_w + 6),
                y=_f(mid + 4),
                r=format_rate(rate),
                e=format_count(row.estimated_unnecessary),
                f=format_count(row.finished_runs),
            )
        )
    ly = height - 10
    body.append(
        Markup(
            '<line class="axis" x1="{l}" x2="{r}" y1="{b}" y2="{b}"/>'
            '<rect class="bar" x="{l}" y="{ry}" width="10" height="10"/>'
            '<text class="legend" x="{t1}" y="{ly}">runs that changed nothing</text>'
            '<path class="error" d="M{e1} {cy}H{e2}M{e1} {a}V{c}M{e2} {a}V{c}"/>'
            '<text class="legend" x="{t2}" y="{ly}">95 % Wilson interval</text>'
        ).format(
            l=_f(plot_l),
            r=_f(plot_l + plot_w),
            b=_f(plot_bottom),
            ry=_f(ly - 9),
            ly=_f(ly),
            t1=_f(plot_l + 14),
            e1=_f(plot_l + 180),
            e2=_f(plot_l + 200),
            cy=_f(ly - 4),
            a=_f(ly - 8),
            c=_f(ly),
            t2=_f(plot_l + 206),
        )
    )
    return _svg(height, "Flows with the most runs that changed nothing", body)


def queue_latency(rows: Sequence[QueueLatency]) -> Markup:
    """The p95 wait of system jobs between creation and start, per environment, as bars on a
    linear axis (a wait is compared with the others, so lengths must be proportional)."""
    drawn = [r for r in rows if number(r.p95_ms) is not None]
    if not drawn:
        return no_data("no system jobs were measured")
    top, bottom, right = 16.0, 30.0, 80.0
    plot_l = float(LABEL_WIDTH)
    plot_w = WIDTH - plot_l - right
    plot_bottom = top + ROW_HEIGHT * len(drawn)
    height = plot_bottom + bottom
    peak, unit_ms, unit = _duration_axis(max(number(r.p95_ms) or 0.0 for r in drawn))
    body: list[Markup] = []
    for k in range(5):
        x = plot_l + plot_w * k / 4
        body.append(
            Markup(
                '<line class="grid" x1="{x}" x2="{x}" y1="{t}" y2="{b}"/>'
                '<text class="tick" x="{x}" y="{ty}" text-anchor="middle">{l}</text>'
            ).format(
                x=_f(x),
                t=_f(top),
                b=_f(plot_bottom),
                ty=_f(plot_bottom + 14),
                l=f"{peak * k / 4 / unit_ms:g} {unit}",
            )
        )
    for i, row in enumerate(drawn):
        y = top + ROW_HEIGHT * i
        mid = y + ROW_HEIGHT / 2
        value = max(0.0, number(row.p95_ms) or 0.0)
        env = clean(row.environment)
        body.append(_label(plot_l - 8, mid + 4, env))
        body.append(
            Markup(
                '<g><rect class="bar" x="{x}" y="{y}" width="{w}" height="{h}"/>'
                "<title>{n}: p95 queue latency {v}</title></g>"
                '<text class="value" x="{vx}" y="{vy}">{v}</text>'
            ).format(
                x=_f(plot_l),
                y=_f(y + 6),
                w=_f(plot_w * value / peak),
                h=_f(ROW_HEIGHT - 12),
                n=env,
                v=format_ms(value),
                vx=_f(plot_l + plot_w * value / peak + 6),
                vy=_f(mid + 4),
            )
        )
    body.append(
        Markup('<line class="axis" x1="{l}" x2="{r}" y1="{b}" y2="{b}"/>').format(
            l=_f(plot_l), r=_f(plot_l + plot_w), b=_f(plot_bottom)
        )
    )
    return _svg(height, "System-job queue latency (p95) per environment", body)


__all__ = [
    "duration_percentiles",
    "no_data",
    "noisy_flows",
    "queue_latency",
    "runs_per_day",
    "shorten",
]
