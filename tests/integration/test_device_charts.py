"""The device page's charts have axes and a scale (issue 14, item 20), drawn as SVG on the
server. Django's test client with metric rows; no device is needed."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from devices.models import DeviceMetric
from devices.templatetags.charts import line_chart
from tests.integration.test_marketplace_pages import make_device

pytestmark = pytest.mark.django_db

GiB = 1024**3


@pytest.fixture
def signed_in(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("owner", password="pw-Ow-1"))
    return client


def _charts(body: str) -> list[str]:
    return re.findall(r'<figure class="chart[^"]*">.*?</figure>', body, flags=re.S)


def test_the_device_page_draws_both_charts_with_a_percent_scale_and_times(signed_in):
    device = make_device("lab-server-1", ram_total_gib=8, ram_used_gib=2)
    now = datetime.now(UTC)
    start = now - timedelta(hours=2)
    for minutes in range(0, 121, 10):
        DeviceMetric.objects.create(
            device=device,
            time=start + timedelta(minutes=minutes),
            online=minutes != 60,  # one missed poll: a gap in the line
            ram_total_bytes=8 * GiB,
            ram_used_bytes=2 * GiB + minutes * 16 * 1024**2,
            cpu_usage_percent=10 + minutes / 4,
        )
    body = signed_in.get(reverse("device_detail", args=[device.pk])).content.decode()
    charts = _charts(body)
    assert len(charts) == 2
    for chart in charts:
        # the y axis: a labelled line every 25 %
        for level in ("0 %", "25 %", "50 %", "75 %", "100 %"):
            assert f'text-anchor="end">{level}</text>' in chart
        assert chart.count('class="chart-axis"') == 2
        # the x axis: the first, middle and last reading's time
        ticks = re.findall(r'class="chart-tick x-tick"[^>]*>([^<]+)</text>', chart)
        assert len(ticks) == 3 and all(re.fullmatch(r"\d{1,2}:\d\d", t) for t in ticks)
        assert ticks[0] == start.strftime("%H:%M").lstrip("0")
        # the missed poll breaks the line in two
        assert chart.count("<polyline") == 2
        # not squashed into a sliver: the SVG keeps its proportions
        assert 'preserveAspectRatio="none"' not in chart
        assert 'viewBox="0 0 480 170"' in chart
    assert "Memory used from " in charts[0] and "Processor busy from " in charts[1]
    assert "lowest 10 %, highest 40 %, last 40 %." in charts[1]


def test_a_value_is_placed_on_the_scale():
    times = [datetime(2026, 1, 5, 10, m, tzinfo=UTC) for m in (0, 30)]
    svg = line_chart([0.0, 100.0], times, "Processor busy")
    # plot from y=10 (100 %) to y=142 (0 %), x from 44 to 468
    assert 'points="44.0,142.0 468.0,10.0"' in svg
    assert "10:00" in svg and "10:30" in svg


def test_too_few_readings_say_so_instead_of_an_empty_chart():
    assert "Not enough readings yet." in line_chart([None, 12.0], None, "Memory used")
