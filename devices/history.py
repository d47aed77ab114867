"""A device's metrics over time: hourly rollups, the purge of old rows, and chart points.

Raw DeviceMetric rows (one per poll, every ~30 s) are kept METRIC_RETENTION_DAYS (8);
each clock hour is summed up in one DeviceMetricHour row (min/avg/max) kept
ROLLUP_RETENTION_DAYS (a year). Charts of 1 h and 24 h read raw rows; 7 d and 30 d read
the rollups, so a 30-day chart reads at most 720 rows.

`history_rollup` runs every hour (`ensure_history_schedule`, called at start-up):

1. For each device, the first hour to sum up is the hour after its latest rollup, or the
   hour of its oldest raw row when it has none (so a stopped worker catches up).
2. Every complete hour (ending at or before the current hour's start) that has raw rows
   gets one rollup row, written with update_or_create on (device, hour): running it twice
   changes nothing.
3. Raw rows older than the retention are deleted, then rollups older than a year. Rows
   are summed up before they are purged, because step 1 runs first.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Literal

from django.conf import settings
from django.db.models import Max, Min
from django.utils import timezone

from devices import forecast
from devices.models import Device, DeviceMetric, DeviceMetricHour

logger = logging.getLogger(__name__)

ROLLUP_SCHEDULE_NAME = "device-history-rollup"
ROLLUP_RETENTION_DAYS = 366
MAX_RAW_POINTS = 300

# Figures summed up per hour: (the raw row's field, the rollup fields' prefix).
FIGURES: tuple[tuple[str, str], ...] = (
    ("cpu_usage_percent", "cpu_percent"),
    ("ram_used_bytes", "ram_used_bytes"),
    ("storage_used_bytes", "storage_used_bytes"),
    ("load_1m", "load_1m"),
)
# Polling does not read a temperature yet; once DeviceMetric has `temperature_c`, it is
# summed up like the others.
if any(field.name == "temperature_c" for field in DeviceMetric._meta.get_fields()):
    FIGURES += (("temperature_c", "temperature_c"),)
INTEGER_FIGURES = {"ram_used_bytes", "storage_used_bytes"}

HistoryRange = Literal["1h", "24h", "7d", "30d"]
RANGES: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
RAW_RANGES = {"1h", "24h"}


def hour_start(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def summarize(
    values: Iterable[float | int | None],
) -> tuple[float | None, float | None, float | None]:
    """(min, avg, max) of the values that are not None; (None, None, None) when none are.
    The average is math.fsum / count: exact to the last bit for any order of the values."""
    present = [value for value in values if value is not None]
    if not present:
        return None, None, None
    return min(present), math.fsum(present) / len(present), max(present)


def count_drops(answered: Sequence[bool]) -> int:
    """How often an answered check is followed by a missed one (checks oldest first)."""
    return sum(1 for before, after in pairwise(answered) if before and not after)


def rollup_fields(rows: Sequence[dict]) -> dict:
    """The DeviceMetricHour fields (but device and hour) for one hour's raw rows."""
    online = [row for row in rows if row["online"]]
    answered = [row["online"] for row in rows]
    fields: dict = {
        "samples": len(rows),
        "online_samples": len(online),
        "drops": count_drops(answered),
        "first_online": answered[0] if answered else None,
        "last_online": answered[-1] if answered else None,
    }
    for raw_name, prefix in FIGURES:
        low, average, high = summarize(row[raw_name] for row in online)
        fields[f"{prefix}_min"] = low
        fields[f"{prefix}_avg"] = average
        fields[f"{prefix}_max"] = high
    for name in ("ram_total_bytes", "storage_total_bytes"):
        known = [row[name] for row in online if row[name] is not None]
        fields[name] = known[-1] if known else None
    return fields


def _raw_fields() -> list[str]:
    return [
        "time",
        "online",
        "ram_total_bytes",
        "storage_total_bytes",
        *(raw for raw, _ in FIGURES),
    ]


def history_rollup(*, now: datetime | None = None) -> int:
    """Sum up every complete hour not summed up yet, then purge old rows (see the module
    docstring); returns how many hours were written."""
    now = now or timezone.now()
    current_hour = hour_start(now)
    written = 0
    for device_id in Device.objects.values_list("pk", flat=True):
        written += _rollup_device(device_id, before=current_hour)
    raw_cutoff = now - timedelta(days=settings.METRIC_RETENTION_DAYS)
    DeviceMetric.objects.filter(time__lt=raw_cutoff).delete()
    DeviceMetricHour.objects.filter(hour__lt=now - timedelta(days=ROLLUP_RETENTION_DAYS)).delete()
    return written


def _rollup_device(device_id: int, *, before: datetime) -> int:
    latest = DeviceMetricHour.objects.filter(device_id=device_id).aggregate(latest=Max("hour"))[
        "latest"
    ]
    if latest is not None:
        start = latest + timedelta(hours=1)
    else:
        oldest = DeviceMetric.objects.filter(device_id=device_id).aggregate(oldest=Min("time"))[
            "oldest"
        ]
        if oldest is None:
            return 0
        start = hour_start(oldest)
    if start >= before:
        return 0
    rows = (
        DeviceMetric.objects.filter(device_id=device_id, time__gte=start, time__lt=before)
        .order_by("time")
        .values(*_raw_fields())
    )
    by_hour: dict[datetime, list[dict]] = {}
    for row in rows.iterator(chunk_size=2000):
        by_hour.setdefault(hour_start(row["time"]), []).append(row)
    for hour, hour_rows in by_hour.items():
        DeviceMetricHour.objects.update_or_create(
            device_id=device_id, hour=hour, defaults=rollup_fields(hour_rows)
        )
    return len(by_hour)


def rollup_task() -> int:
    """The hourly django-q2 task: a door to history_rollup."""
    return history_rollup()


def ensure_history_schedule() -> None:
    """Create or update the hourly "device-history-rollup" schedule (idempotent)."""
    from django_q.models import Schedule

    defaults = {
        "func": "devices.history.rollup_task",
        "schedule_type": Schedule.HOURLY,
        "repeats": -1,
    }
    schedule, created = Schedule.objects.get_or_create(
        name=ROLLUP_SCHEDULE_NAME, defaults={**defaults, "next_run": timezone.now()}
    )
    if not created:
        changed = [key for key, value in defaults.items() if getattr(schedule, key) != value]
        for key in changed:
            setattr(schedule, key, defaults[key])
        if changed:
            schedule.save(update_fields=changed)
    logger.info("Device history summed up every hour (schedule %s)", ROLLUP_SCHEDULE_NAME)


# ------------------------------------------------------------------ chart points


def thin(items: Sequence, limit: int = MAX_RAW_POINTS) -> list:
    """At most `limit` items picked evenly, the first and the last always kept."""
    count = len(items)
    if count <= limit:
        return list(items)
    if limit <= 1:
        return [items[-1]]
    return [items[round(index * (count - 1) / (limit - 1))] for index in range(limit)]


def history_points(device: Device, *, range_name: str, now: datetime | None = None) -> list[dict]:
    """The device's chart points over `range_name` (1h, 24h, 7d, 30d), oldest first:
    {time, cpu_percent, ram_used_bytes, storage_used_bytes, load_1m, temperature_c}, the
    figures None while the device did not answer (a gap in the chart)."""
    now = now or timezone.now()
    since = now - RANGES[range_name]
    if range_name in RAW_RANGES:
        rows = list(
            DeviceMetric.objects.filter(device=device, time__gte=since, time__lte=now)
            .order_by("time")
            .values(*_raw_fields())
        )
        return [
            {
                "time": row["time"],
                "cpu_percent": row["cpu_usage_percent"] if row["online"] else None,
                "ram_used_bytes": row["ram_used_bytes"] if row["online"] else None,
                "storage_used_bytes": row["storage_used_bytes"] if row["online"] else None,
                "load_1m": row["load_1m"] if row["online"] else None,
                "temperature_c": row.get("temperature_c") if row["online"] else None,
            }
            for row in thin(rows)
        ]
    hours = DeviceMetricHour.objects.filter(
        device=device, hour__gte=hour_start(since), hour__lte=now
    ).order_by("hour")
    return [
        {
            "time": hour.hour,
            "cpu_percent": hour.cpu_percent_avg,
            "ram_used_bytes": None
            if hour.ram_used_bytes_avg is None
            else round(hour.ram_used_bytes_avg),
            "storage_used_bytes": None
            if hour.storage_used_bytes_avg is None
            else round(hour.storage_used_bytes_avg),
            "load_1m": hour.load_1m_avg,
            "temperature_c": hour.temperature_c_avg,
        }
        for hour in hours
    ]


# ------------------------------------------------------------------ looking ahead
FORECAST_WINDOW = timedelta(days=30)
NETWORK_WINDOW = timedelta(days=7)


def _series(
    device: Device, *, rollup_field: str, raw_field: str, since: datetime, now: datetime
) -> list:
    """(time, value) over [since, now]: hourly averages, then the raw rows after the last
    summed-up hour (thinned), so a new install forecasts from raw rows alone."""
    hours = list(
        DeviceMetricHour.objects.filter(device=device, hour__gte=since, hour__lte=now)
        .order_by("hour")
        .values_list("hour", rollup_field)
    )
    series = [(hour + timedelta(minutes=30), value) for hour, value in hours if value is not None]
    raw_since = hours[-1][0] + timedelta(hours=1) if hours else since
    raw = list(
        DeviceMetric.objects.filter(device=device, online=True, time__gte=raw_since, time__lte=now)
        .order_by("time")
        .values_list("time", raw_field)
    )
    series += [(moment, value) for moment, value in thin(raw) if value is not None]
    return series


def _network_counts(device: Device, *, now: datetime) -> dict:
    """Checks, answered checks and drops (an answered check, then a missed one) over
    NETWORK_WINDOW: the hourly rollups' counts, the drops between their hours, then the
    raw checks after the last rolled-up hour (a week of raw checks is ~20,000 rows)."""
    hours = list(
        DeviceMetricHour.objects.filter(
            device=device, hour__gte=hour_start(now - NETWORK_WINDOW), hour__lte=now
        )
        .order_by("hour")
        .values("hour", "samples", "online_samples", "drops", "first_online", "last_online")
    )
    checks = sum(hour["samples"] for hour in hours)
    answered = sum(hour["online_samples"] for hour in hours)
    drops = sum(hour["drops"] for hour in hours)
    # between hours: the last check of one hour against the first check of the next
    for before, after in pairwise(hours):
        if before["last_online"] and after["first_online"] is False:
            drops += 1
    raw_since = hours[-1]["hour"] + timedelta(hours=1) if hours else now - NETWORK_WINDOW
    raw = list(
        DeviceMetric.objects.filter(device=device, time__gte=raw_since, time__lte=now)
        .order_by("time")
        .values_list("online", flat=True)
    )
    checks += len(raw)
    answered += sum(1 for state in raw if state)
    carried = [hours[-1]["last_online"]] if hours and hours[-1]["last_online"] is not None else []
    drops += count_drops([*carried, *raw])
    return {"drops": drops, "checks": checks, "answered": answered, "window": NETWORK_WINDOW}


def device_forecasts(device: Device, *, now: datetime | None = None) -> list:
    """What devices.forecast finds in this device's history (storage, memory, heat, network)."""
    now = now or timezone.now()
    since = now - FORECAST_WINDOW
    findings = [
        forecast.fill_forecast(
            device_name=device.name,
            kind="storage",
            series=_series(
                device,
                rollup_field="storage_used_bytes_avg",
                raw_field="storage_used_bytes",
                since=since,
                now=now,
            ),
            capacity_bytes=device.storage_total_bytes,
            now=now,
        ),
        forecast.fill_forecast(
            device_name=device.name,
            kind="memory",
            series=_series(
                device,
                rollup_field="ram_used_bytes_avg",
                raw_field="ram_used_bytes",
                since=since,
                now=now,
            ),
            capacity_bytes=device.ram_total_bytes,
            now=now,
        ),
    ]
    if any(raw == "temperature_c" for raw, _ in FIGURES):
        findings.append(
            forecast.sustained_heat(
                device_name=device.name,
                series=_series(
                    device,
                    rollup_field="temperature_c_avg",
                    raw_field="temperature_c",
                    since=now - timedelta(days=1),
                    now=now,
                ),
                now=now,
            )
        )
    findings.append(
        forecast.flaky_network_counts(device_name=device.name, **_network_counts(device, now=now))
    )
    return [finding for finding in findings if finding is not None]


def homelab_forecasts(*, now: datetime | None = None) -> list:
    """Every device's findings, the soonest fill dates first (the dashboard's "Looking ahead")."""
    findings = [
        finding for device in Device.objects.all() for finding in device_forecasts(device, now=now)
    ]
    return sorted(findings, key=lambda f: (f.days_left is None, f.days_left or 0, f.device_name))
