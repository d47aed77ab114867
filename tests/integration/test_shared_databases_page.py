"""The Shared databases page reads as plain sentences (issue 14, item 15): no image tags,
server settings or formulas in the page's own words; how savings are measured sits
behind "How we measure", and a server with one app does not claim savings."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from devices.models import Device
from pooling.models import PooledDatabase, SharedInstance

pytestmark = pytest.mark.django_db
MIB = 2**20
JARGON = ("documented default", "shared_buffers", "postgres:16", "docker stats", "\u00d7", "\u2212", "Baseline")


@pytest.fixture
def page(client):
    client.force_login(get_user_model().objects.create_superuser("owner", password="pw-Owner-123"))
    device = Device.objects.create(
        name="lab-server-2", address="10.0.0.2", username="root", private_key="x",
        public_key="y", status="online",
    )
    shared = SharedInstance.objects.create(
        device=device, engine="postgres", version="16", project="hl-shared-postgres",
        admin_password="secret", status="running", measured_memory_bytes=40 * MIB,
    )
    PooledDatabase.objects.create(
        instance=shared, project="hl-nextcloud-default", app_name="Nextcloud",
        app_instance="default", database_name="nextcloud", role_name="nextcloud",
    )

    def get() -> tuple[str, str]:
        html = client.get(reverse("pooling_index")).content.decode()
        details = re.search(r'<details class="advanced how-we-measure">.*?</details>', html, re.S)
        assert details, "no 'How we measure' details on the page"
        outside = html.replace(details.group(0), "")
        return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", outside)), details.group(0)

    return get, shared


def test_the_page_speaks_plainly_and_keeps_the_method_behind_how_we_measure(page):
    get, _shared = page
    text, details = get()
    for word in JARGON:
        assert word not in text, f"{word!r} on the page itself"
    assert "<summary>How we measure</summary>" in details
    assert "postgres:16" in details  # the source of the figure is still there for the curious
    assert "Used by 1 app." in text


def test_a_server_with_one_app_claims_no_savings_and_with_two_it_does(page):
    get, shared = page
    text, _ = get()
    assert "less than" not in text
    assert "sharing starts to save memory when a second app uses it" in text
    PooledDatabase.objects.create(
        instance=shared, project="hl-paperless-ngx-default", app_name="Paperless-ngx",
        app_instance="default", database_name="paperless", role_name="paperless",
    )
    text, _ = get()
    assert re.search(r"It uses 40(\.0)? MB of memory, [\d.]+ MB less than 2 separate servers would", text), text
