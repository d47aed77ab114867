"""Hourly rollups of device metrics (devices.history): exact min/avg/max, idempotent,
catching up, purging; and the chart points of each range."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from django_q.models import Schedule
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices import history
from devices.models import Device, DeviceMetric, DeviceMetricHour

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 1, 12, 20, tzinfo=UTC)
HOUR = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def _device(name: str = "server-02") -> Device:
    return Device.objects.create(
        name=name, address="192.0.2.10", username="root", private_key="x", public_key="y"
    )


def _metric(
    device: Device,
    time: datetime,
    *,
    online: bool = True,
    cpu=10.0,
    ram=1000,
    storage=5000,
    load=0.5,
):
    return DeviceMetric.objects.create(
        device=device,
        time=time,
        online=online,
        cpu_usage_percent=cpu if online else None,
        ram_used_bytes=ram if online else None,
        ram_total_bytes=8000 if online else None,
        storage_used_bytes=storage if online else None,
        storage_total_bytes=90000 if online else None,
        load_1m=load if online else None,
    )


ROW = st.tuples(
    st.integers(min_value=0, max_value=3599),  # second of the hour
    st.booleans(),  # answered
    st.floats(min_value=0, max_value=100, allow_nan=False),
    st.integers(min_value=0, max_value=2**40),
    st.integers(min_value=0, max_value=2**42),
    st.floats(min_value=0, max_value=64, allow_nan=False),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(ROW, min_size=1, max_size=30))
def test_the_rollup_keeps_min_avg_and_max_exactly_as_the_raw_rows_have_them(rows):
    DeviceMetricHour.objects.all().delete()
    Device.objects.all().delete()
    device = _device()
    for second, online, cpu, ram, storage, load in rows:
        _metric(
            device,
            HOUR + timedelta(seconds=second),
            online=online,
            cpu=cpu,
            ram=ram,
            storage=storage,
            load=load,
        )

    assert history.history_rollup(now=NOW) == 1

    hour = DeviceMetricHour.objects.get(device=device)
    online_rows = [row for row in rows if row[1]]
    assert (hour.hour, hour.samples, hour.online_samples) == (HOUR, len(rows), len(online_rows))
    for index, prefix in (
        (2, "cpu_percent"),
        (3, "ram_used_bytes"),
        (4, "storage_used_bytes"),
        (5, "load_1m"),
    ):
        values = [row[index] for row in online_rows]
        expected = (
            (min(values), math.fsum(values) / len(values), max(values))
            if values
            else (None, None, None)
        )
        got = (
            getattr(hour, f"{prefix}_min"),
            getattr(hour, f"{prefix}_avg"),
            getattr(hour, f"{prefix}_max"),
        )
        assert got == expected, prefix


def test_running_it_twice_changes_nothing_and_the_current_hour_waits_until_it_is_over():
    device = _device()
    for minute in (0, 30, 59):
        _metric(device, HOUR + timedelta(minutes=minute), cpu=minute)
    _metric(device, NOW - timedelta(minutes=5))  # the current hour: not complete yet

    assert history.history_rollup(now=NOW) == 1
    first = list(DeviceMetricHour.objects.values())
    assert history.history_rollup(now=NOW) == 0
    assert list(DeviceMetricHour.objects.values()) == first
    assert first[0]["cpu_percent_avg"] == pytest.approx(89 / 3)

    assert history.history_rollup(now=NOW + timedelta(hours=1)) == 1
    assert DeviceMetricHour.objects.count() == 2


def test_a_stopped_worker_catches_up_every_missed_hour_then_purges_old_raw_rows(settings):
    settings.METRIC_RETENTION_DAYS = 8
    device = _device()
    start = NOW - timedelta(days=9)
    for hours in range(0, 9 * 24, 6):
        _metric(device, start + timedelta(hours=hours, minutes=5))

    written = history.history_rollup(now=NOW)

    assert written == 36
    assert DeviceMetricHour.objects.filter(device=device).count() == 36
    assert not DeviceMetric.objects.filter(time__lt=NOW - timedelta(days=8)).exists()
    assert DeviceMetric.objects.exists()
    # the hours of purged raw rows are kept in the rollups
    assert DeviceMetricHour.objects.filter(hour__lt=NOW - timedelta(days=8)).exists()


def test_rollups_older_than_a_year_are_purged():
    device = _device()
    DeviceMetricHour.objects.create(
        device=device, hour=NOW - timedelta(days=400), samples=1, online_samples=1
    )
    DeviceMetricHour.objects.create(
        device=device, hour=NOW - timedelta(days=300), samples=1, online_samples=1
    )
    history.history_rollup(now=NOW)
    assert list(DeviceMetricHour.objects.values_list("hour", flat=True)) == [
        NOW - timedelta(days=300)
    ]


def test_the_hourly_schedule_is_created_once():
    history.ensure_history_schedule()
    history.ensure_history_schedule()
    schedule = Schedule.objects.get(name=history.ROLLUP_SCHEDULE_NAME)
    assert (schedule.func, schedule.schedule_type, schedule.repeats) == (
        "devices.history.rollup_task",
        Schedule.HOURLY,
        -1,
    )


def test_short_ranges_read_raw_rows_thinned_to_three_hundred_points_with_gaps_while_offline():
    device = _device()
    for index in range(400):
        _metric(device, NOW - timedelta(seconds=3 * index), online=index != 10, cpu=float(index))
    points = history.history_points(device, range_name="1h", now=NOW)
    assert len(points) == 300
    assert points[0]["cpu_percent"] == 399.0 and points[-1]["cpu_percent"] == 0.0
    assert [p["time"] for p in points] == sorted(p["time"] for p in points)
    assert set(points[0]) == {
        "time",
        "cpu_percent",
        "ram_used_bytes",
        "storage_used_bytes",
        "load_1m",
        "temperature_c",
    }
    assert len(history.history_points(device, range_name="24h", now=NOW)) == 300

    other = _device("pi-4")
    for hours, online in ((3, True), (2, False), (1, True)):
        _metric(other, NOW - timedelta(hours=hours), online=online, cpu=42.0)
    day = history.history_points(other, range_name="24h", now=NOW)
    assert [p["cpu_percent"] for p in day] == [42.0, None, 42.0]
    assert len(history.history_points(other, range_name="1h", now=NOW)) == 1  # the one an hour ago


def test_long_ranges_read_the_hourly_rollups():
    device = _device()
    for days_ago in (2, 6, 20):
        DeviceMetricHour.objects.create(
            device=device,
            hour=NOW.replace(minute=0) - timedelta(days=days_ago),
            samples=120,
            online_samples=120,
            cpu_percent_avg=float(days_ago),
            ram_used_bytes_avg=1500.4,
        )
    assert [p["cpu_percent"] for p in history.history_points(device, range_name="7d", now=NOW)] == [
        6.0,
        2.0,
    ]
    month = history.history_points(device, range_name="30d", now=NOW)
    assert [p["cpu_percent"] for p in month] == [20.0, 6.0, 2.0]
    assert month[0]["ram_used_bytes"] == 1500


def test_thin_keeps_the_first_and_the_last():
    assert history.thin(list(range(10)), 4) == [0, 3, 6, 9]
    assert history.thin([1, 2], 300) == [1, 2]


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(answered=st.lists(st.booleans(), min_size=1, max_size=40), rolled_hours=st.integers(0, 5))
def test_drops_counted_from_the_rollups_equal_those_of_the_raw_checks(answered, rolled_hours):
    """A week of raw checks is not read: hours already summed up count their drops, and the
    hours' edges and the raw checks after them add theirs; the total is the raw count."""
    DeviceMetricHour.objects.all().delete()
    Device.objects.all().delete()
    device = _device()
    start = NOW.replace(minute=0) - timedelta(hours=5)
    for index, online in enumerate(answered):  # one check every 8 minutes over ~5 hours
        _metric(device, start + timedelta(minutes=8 * index), online=online)
    history.history_rollup(now=start + timedelta(hours=rolled_hours))

    counts = history._network_counts(device, now=NOW)

    assert counts["drops"] == history.count_drops(answered)
    assert (counts["checks"], counts["answered"]) == (len(answered), sum(answered))


def test_a_device_that_keeps_dropping_off_is_foreseen_from_its_summed_up_hours():
    device = _device("pi-zero")
    start = NOW.replace(minute=0) - timedelta(hours=30)
    for step in range(30 * 4):  # every 15 minutes; missing one check every 5 hours
        _metric(device, start + timedelta(minutes=15 * step), online=step % 20 != 19)
    history.history_rollup(now=NOW)

    findings = history.device_forecasts(device, now=NOW)

    assert [finding.kind for finding in findings] == ["network"]
    assert findings[0].figures["Drops"] == "6"
    assert findings[0].sentence.startswith(
        "pi-zero dropped off the network 6 times in the last 7 days."
    )
