"""Which apps run where (issue 14, item 7): a device's page and its dashboard card list its
apps, each linked to the app's page, and "Apps running" counts apps, not containers (the
shared PostgreSQL's container is not an app)."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from devices.models import Device
from marketplace.models import Deployment

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client):
    client.force_login(get_user_model().objects.create_superuser("owner", password="pw-Owner-123"))
    return client


def _device(name: str, address: str) -> Device:
    return Device.objects.create(
        name=name, address=address, port=22, username="root", private_key="not-a-real-key",
        public_key="ssh-ed25519 AAAA", status="online", ram_total_bytes=8 * 2**30,
        ram_used_bytes=2 * 2**30, cpu_cores=4, cpu_usage_percent=5.0,
        containers_running=3,  # two apps and the shared PostgreSQL
    )


def _app(device: Device, slug: str, name: str, status: str = "running", instance: str = "default"):
    return Deployment.objects.create(
        slug=slug, app_name=name, device=device, instance=instance,
        project=f"hl-{slug}-{instance}", status=status,
    )


@pytest.fixture
def homelab():
    server = _device("lab-server-2", "10.0.0.2")
    other = _device("lab-pi", "10.0.0.3")
    apps = {
        "nextcloud": _app(server, "nextcloud", "Nextcloud"),
        "paperless": _app(server, "paperless-ngx", "Paperless-ngx"),
        "old": _app(server, "vaultwarden", "Vaultwarden", status="removed"),
        "elsewhere": _app(other, "uptime-kuma", "Uptime Kuma", status="stopped"),
    }
    return server, other, apps


def _text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def test_the_device_page_lists_its_apps_and_counts_apps_not_containers(signed_in, homelab):
    server, _other, apps = homelab
    response = signed_in.get(reverse("device_detail", args=[server.pk]))
    html = response.content.decode()
    for key in ("nextcloud", "paperless"):
        url = reverse("deployment_detail", args=[apps[key].pk])
        assert f'href="{url}">{apps[key].app_name}</a>' in html
    assert "Vaultwarden" not in html  # removed: not on the device any more
    assert "Uptime Kuma" not in html  # on another device
    assert "Apps running 2 " in _text(response)


def test_a_stopped_app_is_listed_but_not_counted_as_running(signed_in, homelab):
    _server, other, _apps = homelab
    response = signed_in.get(reverse("device_detail", args=[other.pk]))
    text = _text(response)
    assert "Uptime Kuma (stopped)" in text
    assert "Apps running 0 (of 1)" in text


def test_the_dashboard_cards_list_each_devices_apps(signed_in, homelab):
    server, other, apps = homelab
    html = signed_in.get(reverse("dashboard")).content.decode()
    cards = {
        device.name: html[html.index(f'id="device-{device.pk}"') :].split("</article>", 1)[0]
        for device in (server, other)
    }
    nextcloud = reverse("deployment_detail", args=[apps["nextcloud"].pk])
    assert f'href="{nextcloud}">Nextcloud</a>' in cards["lab-server-2"]
    assert "Paperless-ngx" in cards["lab-server-2"] and "Uptime Kuma" not in cards["lab-server-2"]
    assert "Uptime Kuma" in cards["lab-pi"] and "Nextcloud" not in cards["lab-pi"]


def test_a_device_without_apps_says_so(signed_in):
    device = _device("empty-one", "10.0.0.9")
    assert "No apps here yet." in signed_in.get(reverse("device_detail", args=[device.pk])).content.decode()
