"""Looking ahead (devices.forecast): pure functions over synthetic series, no database."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from devices import forecast

GiB = 1024**3
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _hourly(days: int, value_at) -> list[tuple[datetime, float]]:
    start = NOW - timedelta(days=days)
    return [(start + timedelta(hours=h), value_at(h)) for h in range(days * 24 + 1)]


def test_a_steadily_growing_disk_is_forecast_to_fill_within_ten_percent_of_the_true_date():
    capacity = 500 * GiB
    per_hour = 0.25 * GiB  # 6 GB a day
    used_now = 362 * GiB
    series = _hourly(14, lambda h: used_now - (14 * 24 - h) * per_hour)
    true_days = (capacity - used_now) / (per_hour * 24)  # 23 days

    finding = forecast.fill_forecast(
        device_name="server-02", kind="storage", series=series, capacity_bytes=capacity, now=NOW
    )

    assert finding is not None
    assert abs(finding.days_left - true_days) <= 0.1 * true_days
    true_date = NOW + timedelta(days=true_days)
    assert abs((finding.fill_date - true_date).total_seconds()) <= 0.1 * true_days * 86400
    assert finding.sentence == "server-02's disk fills in about 23 days at this rate."
    assert finding.figures["Growing by"] == "6.0 GB a day"
    assert "R²" in " ".join(finding.figures)


def test_slight_noise_on_the_growth_still_gives_a_forecast_close_to_the_truth():
    rng = random.Random(7)
    capacity = 100 * GiB
    series = _hourly(10, lambda h: 50 * GiB + h * 0.05 * GiB + rng.uniform(-0.2, 0.2) * GiB)
    finding = forecast.fill_forecast(
        device_name="nas", kind="storage", series=series, capacity_bytes=capacity, now=NOW
    )
    true_days = (capacity - (50 + 240 * 0.05) * GiB) / (0.05 * GiB * 24)
    assert finding is not None
    assert abs(finding.days_left - true_days) <= 0.1 * true_days


def test_pure_noise_gives_no_forecast():
    rng = random.Random(3)
    series = _hourly(10, lambda h: 50 * GiB + rng.uniform(-5, 5) * GiB)
    assert (
        forecast.fill_forecast(
            device_name="nas", kind="storage", series=series, capacity_bytes=100 * GiB, now=NOW
        )
        is None
    )


def test_a_flat_series_gives_no_forecast():
    series = _hourly(10, lambda h: 50 * GiB)
    assert (
        forecast.fill_forecast(
            device_name="nas", kind="memory", series=series, capacity_bytes=100 * GiB, now=NOW
        )
        is None
    )


def test_a_shrinking_disk_or_a_fill_beyond_a_year_gives_no_forecast():
    shrinking = _hourly(10, lambda h: 80 * GiB - h * 0.01 * GiB)
    slow = _hourly(10, lambda h: 10 * GiB + h * 1024**2)  # 24 MB a day into 90 GB free
    for series in (shrinking, slow):
        assert (
            forecast.fill_forecast(
                device_name="pi", kind="storage", series=series, capacity_bytes=100 * GiB, now=NOW
            )
            is None
        )


def test_too_few_or_too_short_series_give_no_forecast():
    short = [(NOW - timedelta(hours=h), 50 * GiB - h * GiB) for h in range(6)]
    assert (
        forecast.fill_forecast(
            device_name="pi", kind="storage", series=short, capacity_bytes=100 * GiB, now=NOW
        )
        is None
    )
    assert (
        forecast.fill_forecast(
            device_name="pi", kind="storage", series=short[:3], capacity_bytes=100 * GiB, now=NOW
        )
        is None
    )
    growing = _hourly(5, lambda h: 10 * GiB + h * GiB)
    assert (
        forecast.fill_forecast(
            device_name="pi", kind="storage", series=growing, capacity_bytes=None, now=NOW
        )
        is None
    )


def test_memory_running_out_is_said_in_its_own_words():
    series = _hourly(5, lambda h: 2 * GiB + h * 0.01 * GiB)
    finding = forecast.fill_forecast(
        device_name="db-1", kind="memory", series=series, capacity_bytes=4 * GiB, now=NOW
    )
    assert finding is not None
    assert finding.sentence.startswith("db-1's memory runs out in about ")


def test_a_device_hot_for_most_of_the_day_is_reported_with_its_figures():
    series = [(NOW - timedelta(hours=h), 74.0 if h % 4 else 60.0) for h in range(24)]
    finding = forecast.sustained_heat(device_name="pi-4", series=series, now=NOW)
    assert finding is not None
    assert "hotter than 70 °C for most of the last day" in finding.sentence
    assert finding.figures["Time above 70 °C"] == "75 % of the readings"
    assert finding.figures["Highest"] == "74.0 °C"


def test_a_device_warm_only_at_times_or_hot_days_ago_is_not_reported():
    sometimes = [(NOW - timedelta(hours=h), 75.0 if h % 3 == 0 else 55.0) for h in range(24)]
    long_ago = [(NOW - timedelta(days=2, hours=h), 80.0) for h in range(24)]
    assert forecast.sustained_heat(device_name="pi-4", series=sometimes, now=NOW) is None
    assert forecast.sustained_heat(device_name="pi-4", series=long_ago, now=NOW) is None


def test_a_device_that_drops_off_often_is_reported_and_a_steady_one_is_not():
    window = timedelta(days=7)
    flaky = [(NOW - timedelta(hours=h), h % 10 != 0) for h in range(100, -1, -1)]
    steady = [(NOW - timedelta(hours=h), h != 50) for h in range(100, -1, -1)]
    finding = forecast.flaky_network(device_name="pi-zero", samples=flaky, window=window, now=NOW)
    assert finding is not None
    assert finding.figures["Drops"] == "10"
    assert finding.sentence.startswith(
        "pi-zero dropped off the network 10 times in the last 7 days."
    )
    assert "%" in finding.figures["Reachable"]
    assert forecast.flaky_network(device_name="pi", samples=steady, window=window, now=NOW) is None


def test_least_squares_finds_an_exact_line_and_refuses_a_vertical_one():
    fit = forecast.least_squares([0, 1, 2, 3], [1, 3, 5, 7])
    assert (fit.slope, fit.intercept, fit.r_squared) == (2.0, 1.0, 1.0)
    assert forecast.least_squares([1, 1, 1], [1, 2, 3]) is None
