"""The dashboard says which devices its totals count (issue 14, item 12)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from devices.models import DeviceStatus
from tests.integration.test_marketplace_pages import make_device

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("owner", password="pw-Owner-123"))
    return client


def test_the_totals_name_the_offline_device_they_leave_out(signed_in):
    make_device("lab-server-1", ram_total_gib=8, ram_used_gib=1)
    make_device("lab-server-2", ram_total_gib=8, ram_used_gib=1)
    make_device(
        "lab-pi",
        ram_total_gib=2,
        ram_used_gib=1,
        status=DeviceStatus.OFFLINE,
        last_seen=timezone.now() - timedelta(minutes=5, seconds=10),
    )

    html = signed_in.get("/").content.decode()

    assert "Total resources across 2 online devices (lab-pi offline, last seen 5 min ago)" in html
    assert "across 3 devices" not in html
    assert "16.0 GB" in html or "16 GB" in html  # the two online servers only


def test_with_every_device_online_the_heading_stays_short(signed_in):
    make_device("lab-server-1", ram_total_gib=8, ram_used_gib=1)

    html = signed_in.get("/").content.decode()

    assert "Total resources across 1 device<" in html
