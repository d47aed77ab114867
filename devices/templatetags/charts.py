"""Line charts with axes, drawn on the server as SVG (no script, nothing from elsewhere).

`{% line_chart values times label %}` draws a percentage over time:

1. The y axis runs 0-100 % with a labelled grid line every 25 %.
2. The x axis is the time of the readings: the first, middle and last one are labelled
   (hours:minutes, or day and hours when they span more than a day); a point's place
   follows its time, so a gap in the readings is a gap in the line.
3. Readings that are not known (the device was offline) break the line.
4. A sentence for screen readers says what the chart shows: range, lowest, highest, last.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.html import format_html, format_html_join

register = template.Library()

WIDTH = 480
HEIGHT = 170
LEFT = 44  # room for "100 %"
RIGHT = 12
TOP = 10
BOTTOM = 28  # room for the times
GRID_STEP = 25


def _time_words(moment: datetime, *, with_day: bool) -> str:
    local = timezone.localtime(moment) if timezone.is_aware(moment) else moment
    return local.strftime("%d %b %H:%M" if with_day else "%H:%M").lstrip("0")


def _percent(value: float) -> str:
    return f"{value:.0f} %"


@register.simple_tag
def line_chart(
    values: Sequence[float | None],
    times: Sequence[datetime] | None = None,
    label: str = "",
    css_class: str = "chart",
    maximum: float = 100.0,
) -> str:
    """An SVG line chart of VALUES (percentages, oldest first) at TIMES, with both axes."""
    values = list(values)
    usable = [v for v in values if v is not None]
    if len(usable) < 2:
        return format_html('<p class="muted small">{}</p>', "Not enough readings yet.")
    times = list(times or [])
    if len(times) != len(values):
        times = []
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM

    if times:
        start, end = times[0], times[-1]
        span = (end - start).total_seconds() or 1.0
        xs = [LEFT + plot_w * (t - start).total_seconds() / span for t in times]
    else:
        xs = [LEFT + plot_w * i / max(len(values) - 1, 1) for i in range(len(values))]

    def y_of(value: float) -> float:
        return TOP + plot_h * (1 - min(max(value, 0.0), maximum) / maximum)

    # the line, broken where a reading is missing
    runs: list[list[str]] = [[]]
    for x, value in zip(xs, values, strict=True):
        if value is None:
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append(f"{x:.1f},{y_of(value):.1f}")
    lines = format_html_join(
        "",
        '<polyline class="chart-line" fill="none" points="{}"/>',
        ((" ".join(run),) for run in runs if len(run) >= 2),
    )
    dots = format_html_join(
        "",
        '<circle class="chart-line" cx="{}" cy="{}" r="1.5"/>',
        ((run[0].split(",")[0], run[0].split(",")[1]) for run in runs if len(run) == 1),
    )

    grid = format_html_join(
        "",
        '<line class="chart-grid" x1="{}" x2="{}" y1="{}" y2="{}"/>'
        '<text class="chart-tick y-tick" x="{}" y="{}" text-anchor="end">{}</text>',
        (
            (
                LEFT,
                WIDTH - RIGHT,
                f"{y_of(level):.1f}",
                f"{y_of(level):.1f}",
                LEFT - 6,
                f"{y_of(level) + 4:.1f}",
                _percent(level),
            )
            for level in range(0, int(maximum) + 1, GRID_STEP)
        ),
    )

    x_ticks = ""
    if times:
        with_day = (times[-1] - times[0]).total_seconds() > 20 * 3600
        picks = [(0, "start"), (len(times) // 2, "middle"), (len(times) - 1, "end")]
        x_ticks = format_html_join(
            "",
            '<text class="chart-tick x-tick" x="{}" y="{}" text-anchor="{}">{}</text>',
            (
                (f"{xs[i]:.1f}", HEIGHT - 8, anchor, _time_words(times[i], with_day=with_day))
                for i, anchor in picks
            ),
        )
        period = (
            f" from {_time_words(times[0], with_day=with_day)}"
            f" to {_time_words(times[-1], with_day=with_day)}"
        )
    else:
        period = ""
    last = next(v for v in reversed(values) if v is not None)
    summary = (
        f"{label}{period}: lowest {_percent(min(usable))}, highest {_percent(max(usable))}, "
        f"last {_percent(last)}."
    )
    return format_html(
        '<figure class="{}"><svg viewBox="0 0 {} {}" role="img" aria-label="{}">'
        '<line class="chart-axis" x1="{}" x2="{}" y1="{}" y2="{}"/>'
        '<line class="chart-axis" x1="{}" x2="{}" y1="{}" y2="{}"/>'
        '{}{}{}{}</svg><figcaption class="visually-hidden">{}</figcaption></figure>',
        css_class,
        WIDTH,
        HEIGHT,
        summary,
        LEFT,
        LEFT,
        TOP,
        TOP + plot_h,
        LEFT,
        WIDTH - RIGHT,
        TOP + plot_h,
        TOP + plot_h,
        grid,
        x_ticks,
        lines,
        dots,
        summary,
    )
