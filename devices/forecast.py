"""Looking ahead: what a device's history says is coming. Pure functions: no database, no
clock; the caller passes the series and "now" (devices.history_forecasts gathers them).

Each finding carries the figures behind it, so a person can judge it:

- `fill_forecast`: storage or memory growing steadily. A least-squares line through
  (time, bytes used); a forecast only when the line explains the points well (R² at least
  MIN_R_SQUARED), the series spans at least MIN_SPAN, it grows, and it reaches the
  capacity within HORIZON. Noise and flat series give none.
- `sustained_heat`: hotter than HOT_C for most (over half) of the last day's readings.
- `flaky_network`: the device stopped answering at least FLAKY_DROPS times over the window.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise

MIN_POINTS = 6
MIN_SPAN = timedelta(hours=12)
MIN_R_SQUARED = 0.8
HORIZON = timedelta(days=365)
HOT_C = 70.0
HOT_SHARE = 0.5
FLAKY_DROPS = 3
GiB = 1024**3


@dataclass(frozen=True)
class Finding:
    """One thing worth saying: `kind` (storage, memory, heat, network), a sentence, the
    figures behind it (label -> words), and for fill forecasts the date and days left."""

    kind: str
    device_name: str
    sentence: str
    figures: dict[str, str] = field(default_factory=dict)
    fill_date: datetime | None = None
    days_left: float | None = None


@dataclass(frozen=True)
class LineFit:
    slope: float  # units per second
    intercept: float  # units at t = 0
    r_squared: float


def least_squares(xs: Sequence[float], ys: Sequence[float]) -> LineFit | None:
    """The line y = slope * x + intercept that best fits the points; None when x does not vary.
    R² is 1 for a perfect line and 0 when the line explains nothing (also for a flat y)."""
    count = len(xs)
    if count < 2:
        return None
    mean_x = math.fsum(xs) / count
    mean_y = math.fsum(ys) / count
    sxx = math.fsum((x - mean_x) ** 2 for x in xs)
    if sxx == 0:
        return None
    sxy = math.fsum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    syy = math.fsum((y - mean_y) ** 2 for y in ys)
    slope = sxy / sxx
    intercept = mean_y - slope * mean_x
    r_squared = 0.0 if syy == 0 else (sxy * sxy) / (sxx * syy)
    return LineFit(slope=slope, intercept=intercept, r_squared=r_squared)


def _gib(value: float) -> str:
    return f"{value / GiB:.1f} GB"


def _about_days(days: float) -> str:
    if days < 1:
        return "less than a day"
    whole = round(days)
    return f"about {whole} day{'s' if whole != 1 else ''}"


def fill_forecast(
    *,
    device_name: str,
    kind: str,
    series: Sequence[tuple[datetime, float]],
    capacity_bytes: float | None,
    now: datetime,
) -> Finding | None:
    """When (time, bytes used) grows steadily towards capacity_bytes: the day it is full.
    `kind` is "storage" or "memory"."""
    points = [(moment, used) for moment, used in series if used is not None]
    if not capacity_bytes or len(points) < MIN_POINTS:
        return None
    if points[-1][0] - points[0][0] < MIN_SPAN:
        return None
    origin = points[0][0]
    xs = [(moment - origin).total_seconds() for moment, _ in points]
    ys = [float(used) for _, used in points]
    fit = least_squares(xs, ys)
    if fit is None or fit.slope <= 0 or fit.r_squared < MIN_R_SQUARED:
        return None
    now_x = (now - origin).total_seconds()
    used_now = fit.slope * now_x + fit.intercept
    seconds_left = (capacity_bytes - used_now) / fit.slope
    if seconds_left > HORIZON.total_seconds():
        return None
    seconds_left = max(seconds_left, 0.0)
    days_left = seconds_left / 86400
    per_day = fit.slope * 86400
    what = "disk" if kind == "storage" else "memory"
    verb = "fills" if kind == "storage" else "runs out"
    sentence = f"{device_name}'s {what} {verb} in {_about_days(days_left)} at this rate."
    return Finding(
        kind=kind,
        device_name=device_name,
        sentence=sentence,
        figures={
            "Used now": f"{_gib(used_now)} of {_gib(capacity_bytes)} ({100 * used_now / capacity_bytes:.0f} %)",
            "Growing by": f"{_gib(per_day)} a day",
            "Measured over": f"{(points[-1][0] - points[0][0]).total_seconds() / 86400:.1f} days, {len(points)} readings",
            "How steady (R²)": f"{fit.r_squared:.2f}",
        },
        fill_date=now + timedelta(seconds=seconds_left),
        days_left=days_left,
    )


def sustained_heat(
    *, device_name: str, series: Sequence[tuple[datetime, float]], now: datetime
) -> Finding | None:
    """Hotter than HOT_C for most of the last day's (time, °C) readings."""
    since = now - timedelta(days=1)
    readings = [
        celsius for moment, celsius in series if celsius is not None and since <= moment <= now
    ]
    if len(readings) < MIN_POINTS:
        return None
    hot = [celsius for celsius in readings if celsius > HOT_C]
    share = len(hot) / len(readings)
    if share <= HOT_SHARE:
        return None
    return Finding(
        kind="heat",
        device_name=device_name,
        sentence=(
            f"{device_name} ran hotter than {HOT_C:.0f} °C for most of the last day. "
            "Give it better cooling or move some apps to a cooler device."
        ),
        figures={
            "Time above 70 °C": f"{100 * share:.0f} % of the readings",
            "Average": f"{math.fsum(readings) / len(readings):.1f} °C",
            "Highest": f"{max(readings):.1f} °C",
        },
    )


def flaky_network(
    *, device_name: str, samples: Sequence[tuple[datetime, bool]], window: timedelta, now: datetime
) -> Finding | None:
    """Stopped answering (an answered check followed by a missed one) FLAKY_DROPS times or more
    in the window of (time, answered) checks, oldest first."""
    since = now - window
    answered = [online for moment, online in samples if since <= moment <= now]
    drops = sum(1 for before, after in pairwise(answered) if before and not after)
    return flaky_network_counts(
        device_name=device_name,
        drops=drops,
        checks=len(answered),
        answered=sum(answered),
        window=window,
    )


def flaky_network_counts(
    *, device_name: str, drops: int, checks: int, answered: int, window: timedelta
) -> Finding | None:
    """flaky_network from counts the database made: drops, checks and answered checks."""
    if checks < MIN_POINTS or drops < FLAKY_DROPS:
        return None
    availability = 100 * answered / checks
    days = window.total_seconds() / 86400
    return Finding(
        kind="network",
        device_name=device_name,
        sentence=(
            f"{device_name} dropped off the network {drops} times in the last {days:.0f} "
            f"day{'s' if round(days) != 1 else ''}. "
            "Check its cable or Wi-Fi signal and its power supply."
        ),
        figures={
            "Drops": str(drops),
            "Reachable": f"{availability:.1f} % of {checks} checks",
        },
    )
