"""History charts and "Looking ahead" (issue 17, parts 5 and 6): the history API, the
device page's chart data and the dashboard's forecasts, from real metric rows."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from devices.history import history_rollup
from devices.models import DeviceMetric
from tests.integration.test_marketplace_pages import make_device

pytestmark = pytest.mark.django_db

GiB = 1024**3


def _history(person, device_id: int, range_name: str):
    return person.client().get(
        f"/api/v1/devices/{device_id}/history", {"range": range_name}, **person.api_headers()
    )


def _fill_disk(device, *, days: int, used_now_gib: float, per_day_gib: float):
    """One reading every two hours, the disk growing steadily."""
    now = timezone.now()
    for step in range(days * 12 + 1):
        ago = timedelta(hours=2 * step)
        DeviceMetric.objects.create(
            device=device,
            time=now - ago,
            online=True,
            cpu_usage_percent=12.5,
            ram_total_bytes=device.ram_total_bytes,
            ram_used_bytes=2 * GiB,
            storage_total_bytes=device.storage_total_bytes,
            storage_used_bytes=int(
                (used_now_gib - per_day_gib * ago.total_seconds() / 86400) * GiB
            ),
            load_1m=0.3,
        )


def test_every_range_answers_points_oldest_first_the_long_ones_from_hourly_rollups(cast_viewer):
    device = make_device("server-02", ram_total_gib=8, ram_used_gib=2)
    _fill_disk(device, days=6, used_now_gib=100, per_day_gib=2)
    history_rollup()

    for range_name, expected in (("1h", 1), ("24h", 13), ("7d", 72)):
        answer = _history(cast_viewer, device.pk, range_name)
        assert answer.status_code == 200, answer.content
        points = answer.json()["points"]
        assert abs(len(points) - expected) <= 1, range_name  # the edges move with the clock
        assert {
            "time",
            "cpu_percent",
            "ram_used_bytes",
            "storage_used_bytes",
            "temperature_c",
        } <= set(points[0])
        assert [p["time"] for p in points] == sorted(p["time"] for p in points)
    assert _history(cast_viewer, device.pk, "30d").json()["points"][0]["cpu_percent"] == 12.5


def test_an_unknown_range_or_device_is_refused(cast_viewer):
    device = make_device("server-02", ram_total_gib=8, ram_used_gib=2)
    assert _history(cast_viewer, device.pk, "1y").status_code == 422
    assert _history(cast_viewer, 999999, "1h").status_code == 404


def test_the_device_page_loads_uplot_from_our_files_and_passes_the_points_without_inline_script(
    cast_viewer,
):
    device = make_device("server-02", ram_total_gib=8, ram_used_gib=2)
    _fill_disk(device, days=1, used_now_gib=100, per_day_gib=2)

    body = cast_viewer.client().get(reverse("device_detail", args=[device.pk])).content.decode()

    assert re.search(r'<script src="/static/vendor/uplot-1\.6\.31\.min\.js" defer>', body)
    assert 'href="/static/vendor/uplot-1.6.31.min.css"' in body
    assert f'data-history-url="/api/v1/devices/{device.pk}/history"' in body
    for label in ("1 h", "24 h", "7 d", "30 d"):
        assert f">{label}</button>" in body
    data = re.search(
        r'<script id="history-points" type="application/json">(.*?)</script>', body, re.S
    )
    # the oldest reading, 24 h ago to the second, may fall just outside the range
    assert len(json.loads(data.group(1))) in (12, 13)
    scripts = re.findall(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", body)
    assert scripts == []


def test_a_filling_disk_is_foreseen_on_the_dashboard_and_the_device_page(cast_viewer):
    device = make_device(
        "server-02", ram_total_gib=8, ram_used_gib=2, storage_total_bytes=146 * GiB
    )
    _fill_disk(device, days=6, used_now_gib=100, per_day_gib=2)
    history_rollup()
    client = cast_viewer.client()

    dashboard = client.get(reverse("dashboard")).content.decode()
    assert "Looking ahead" in dashboard
    assert re.search(
        r"server-02&#x27;s disk fills in about (2[1-5]) days at this rate\.", dashboard
    )
    assert "2.0 GB a day" in dashboard

    page = client.get(reverse("device_detail", args=[device.pk])).content.decode()
    assert "server-02&#x27;s disk fills in about" in page


def test_the_dashboard_says_nothing_ahead_when_nothing_is_coming(cast_viewer):
    device = make_device("server-02", ram_total_gib=8, ram_used_gib=2)
    _fill_disk(device, days=3, used_now_gib=100, per_day_gib=0)
    body = cast_viewer.client().get(reverse("dashboard")).content.decode()
    assert "Looking ahead" not in body
