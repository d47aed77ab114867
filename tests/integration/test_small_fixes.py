"""Small things seen on the pages (issue 14, item 18)."""

from __future__ import annotations

import re

import pytest

from tests.integration.test_marketplace_pages import make_device

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("owner", password="pw-Owner-123"))
    return client


def _add_device_links(html: str) -> int:
    return len(re.findall(r'href="/devices/add/"', html))


@pytest.mark.parametrize("path", ["/", "/devices/"])
def test_add_device_appears_once_on_a_screen_with_devices(signed_in, path):
    make_device("lab-server-1", ram_total_gib=8, ram_used_gib=1)
    html = signed_in.get(path).content.decode()
    assert _add_device_links(html) == 1  # the navigation's


def test_device_names_do_not_wrap_in_the_devices_table(signed_in):
    make_device("living-room-raspberry-pi", ram_total_gib=2, ram_used_gib=1)
    html = signed_in.get("/devices/").content.decode()
    cell = re.search(r"<td([^>]*)><a [^>]*><strong>living-room-raspberry-pi<", html)
    assert cell and "nowrap" in cell.group(1)


def test_a_new_api_token_has_a_copy_button(signed_in):
    response = signed_in.post("/settings/tokens/", {"name": "backup script"})
    html = response.content.decode()
    token = re.search(r'<code class="token-once" id="new-token">([^<]+)</code>', html).group(1)
    assert token
    assert re.search(r'<button type="button"[^>]*data-copy="new-token"[^>]*>Copy</button>', html)
    assert "onclick" not in html  # the copying is in static/js/app.js
