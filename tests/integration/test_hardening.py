"""Hardening of issue 13, finding 11: host keys, discovery, headers, health-check redirects."""

from __future__ import annotations

import base64
import json
import socket

import pytest
from django.urls import reverse

from devices import ssh
from devices.models import Device, DeviceStatus

pytestmark = pytest.mark.django_db

OLD = base64.b64encode(b"old-host-key-blob").decode()
NEW = base64.b64encode(b"new-host-key-blob").decode()
NEWER = base64.b64encode(b"newer-host-key-blob").decode()


def _refusing_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again: connecting is refused


@pytest.fixture
def changed_device():
    return Device.objects.create(
        name="lab-pi",
        address="127.0.0.1",
        port=_refusing_port(),
        username="root",
        status=DeviceStatus.HOST_KEY_CHANGED,
        private_key="not-a-real-key",
        public_key="ssh-ed25519 AAAA",
        host_key_type="ssh-ed25519",
        host_key=OLD,
        offered_host_key_type="ssh-ed25519",
        offered_host_key=NEW,
    )


def _post_json(client, url, body):
    return client.post(url, json.dumps(body), content_type="application/json")


# --- (c) trusting a new host key needs the fingerprint that was shown ------------------------


def test_the_api_shows_the_new_identity_and_refuses_to_accept_without_its_fingerprint(
    admin_client, changed_device
):
    url = f"/api/v1/devices/{changed_device.pk}"
    shown = admin_client.get(url).json()["offered_host_key_fingerprint"]
    assert shown == ssh.fingerprint(NEW)
    assert _post_json(admin_client, f"{url}/accept-host-key", {}).status_code == 422
    changed_device.refresh_from_db()
    assert changed_device.host_key == OLD


def test_a_second_change_between_showing_and_accepting_is_refused(admin_client, changed_device):
    url = f"/api/v1/devices/{changed_device.pk}"
    shown = admin_client.get(url).json()["offered_host_key_fingerprint"]
    Device.objects.filter(pk=changed_device.pk).update(offered_host_key=NEWER)  # changed again
    response = _post_json(admin_client, f"{url}/accept-host-key", {"fingerprint": shown})
    assert response.status_code == 409
    assert "changed again" in response.json()["detail"]
    changed_device.refresh_from_db()
    assert changed_device.host_key == OLD and changed_device.offered_host_key == NEWER


def test_the_fingerprint_shown_is_accepted(admin_client, changed_device):
    url = f"/api/v1/devices/{changed_device.pk}"
    shown = admin_client.get(url).json()["offered_host_key_fingerprint"]
    response = _post_json(admin_client, f"{url}/accept-host-key", {"fingerprint": shown})
    assert response.status_code == 200, response.content
    changed_device.refresh_from_db()
    assert changed_device.host_key == NEW and changed_device.offered_host_key == ""


def test_the_trust_button_carries_the_fingerprint_and_a_second_change_is_refused(
    admin_client, changed_device
):
    page = admin_client.get(reverse("device_detail", args=[changed_device.pk])).text
    shown = ssh.fingerprint(NEW)
    assert f'name="fingerprint" value="{shown}"' in page
    Device.objects.filter(pk=changed_device.pk).update(offered_host_key=NEWER)
    response = admin_client.post(
        reverse("device_trust_host_key", args=[changed_device.pk]),
        {"fingerprint": shown},
        follow=True,
    )
    assert "changed again" in response.text
    changed_device.refresh_from_db()
    assert changed_device.host_key == OLD


# --- (d) discovery: home networks only unless confirmed; rate-limited --------------------


@pytest.fixture
def fresh_limiter(monkeypatch):
    from devices import discovery

    monkeypatch.setattr(discovery, "scan_limiter", discovery._ScanLimiter())
    return discovery


def test_discover_is_reachable_and_refuses_a_public_network_unless_confirmed(
    admin_client, fresh_limiter, settings
):
    settings.DISCOVERY_TIMEOUT_SECONDS = 0.2
    response = _post_json(admin_client, "/api/v1/devices/discover", {"cidr": "198.51.100.0/30"})
    assert response.status_code == 422
    assert "not a home network" in response.json()["detail"]
    assert response.json()["field"] == "cidr"
    # This machine itself (loopback) is scanned without asking; nothing else is touched.
    response = _post_json(admin_client, "/api/v1/devices/discover", {"cidr": "127.0.0.1/32"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "cidr",
    [
        "10.1.2.0/24",
        "172.16.5.0/24",
        "192.168.1.0/24",
        "169.254.1.0/24",
        "fd00::/120",
        "fe80::/120",
    ],
)
def test_home_networks_need_no_confirmation(cidr):
    from devices.discovery import parse_network

    assert parse_network(cidr)


@pytest.mark.parametrize("cidr", ["8.8.8.0/24", "172.32.0.0/24", "2001:db8::/120", "100.64.0.0/24"])
def test_other_networks_need_confirmation(cidr):
    from devices.discovery import DiscoveryError, parse_network

    with pytest.raises(DiscoveryError, match="not a home network"):
        parse_network(cidr)
    assert parse_network(cidr, confirm_public=True)


def test_the_size_cap_holds_even_when_confirmed(settings):
    from devices.discovery import DiscoveryError, parse_network

    with pytest.raises(DiscoveryError, match="at most"):
        parse_network("8.0.0.0/8", confirm_public=True)


def test_discovery_is_rate_limited_per_person(
    admin_client, fresh_limiter, settings, django_user_model
):
    settings.DISCOVERY_SCANS_PER_MINUTE = 2
    body = {"cidr": "127.0.0.1/32"}
    assert _post_json(admin_client, "/api/v1/devices/discover", body).status_code == 200
    assert _post_json(admin_client, "/api/v1/devices/discover", body).status_code == 200
    third = _post_json(admin_client, "/api/v1/devices/discover", body)
    assert third.status_code == 429
    assert "Wait" in third.json()["detail"]
    # Another person is not held up.
    other = django_user_model.objects.create_superuser("other", password="x-long-password-1")
    from django.test import Client

    client = Client()
    client.force_login(other)
    assert _post_json(client, "/api/v1/devices/discover", body).status_code == 200


def test_one_scan_at_a_time_per_person(fresh_limiter):
    from devices.discovery import DiscoveryBusy

    with fresh_limiter.scan_limiter.slot("user:1"):
        with (
            pytest.raises(DiscoveryBusy, match="still running"),
            fresh_limiter.scan_limiter.slot("user:1"),
        ):
            pass
        with fresh_limiter.scan_limiter.slot("user:2"):
            pass


# --- (a) Content-Security-Policy without inline script ---------------------------------------


def _csp(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


def test_pages_send_a_content_security_policy_without_inline_script(admin_client):
    for url in ("/", "/devices/add/", "/settings/tokens/", "/admin/", "/api/v1/docs"):
        response = admin_client.get(url)
        assert response.status_code == 200, url
        policy = _csp(response)
        assert policy["script-src"] == ["'self'"], url
        assert "'unsafe-inline'" not in policy.get("default-src", []), url
        assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"], url


def test_the_api_docs_use_our_own_files_not_a_cdn(admin_client):
    html = admin_client.get("/api/v1/docs").text
    assert "/static/vendor/swagger-ui-bundle-5.35.0.js" in html
    assert "cdn" not in html.lower()


def test_no_template_has_inline_script_or_event_handlers():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    templates = [p for p in root.glob("**/templates/**/*.html") if ".venv" not in p.parts]
    assert len(templates) > 20
    offenders = []
    for path in templates:
        text = path.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            if "src=" not in tag and 'type="application/json"' not in tag:
                offenders.append(f"{path}: {tag}")
        offenders += [f"{path}: {m}" for m in re.findall(r"\son[a-z]+\s*=", text)]
        offenders += [f"{path}: javascript:" for _ in re.findall(r"javascript:", text)]
    assert offenders == []


# --- (b) no-store on answers with logs, tokens and "What I did" ------------------------------


def test_pages_and_api_answers_are_never_stored(admin_client):
    from devices.models import Device
    from marketplace.models import Deployment

    device = Device.objects.create(
        name="server-02",
        address="127.0.0.1",
        port=_refusing_port(),
        username="root",
        private_key="not-a-real-key",
        public_key="ssh-ed25519 AAAA",
    )
    deployment = Deployment.objects.create(
        slug="vaultwarden",
        app_name="Vaultwarden",
        category="security",
        device=device,
        project="hl-vaultwarden-default",
        instance="default",
        status="running",
    )
    urls = [
        "/settings/tokens/",
        f"/api/v1/deployments/{deployment.pk}/debug",
        f"/api/v1/deployments/{deployment.pk}/logs",
        f"/api/v1/deployments/{deployment.pk}",
        "/api/v1/devices",
        reverse("deployment_detail", args=[deployment.pk]),
        reverse("deployment_debug", args=[deployment.pk]),
        reverse("deployment_logs", args=[deployment.pk]),
    ]
    for url in urls:
        response = admin_client.get(url)
        assert "no-store" in response.get("Cache-Control", ""), (url, response.status_code)
    created = admin_client.post("/settings/tokens/", {"name": "backup script"})
    assert "no-store" in created["Cache-Control"]


def test_the_scan_page_offers_to_confirm_a_network_that_is_not_a_home_network(
    admin_client, fresh_limiter
):
    response = admin_client.post(
        reverse("device_scan"), {"cidr": "198.51.100.0/30"}, HTTP_HX_REQUEST="true"
    )
    assert "not a home network" in response.text
    assert 'name="confirm_public"' in response.text and 'form="scan-form"' in response.text
    home = admin_client.post(
        reverse("device_scan"), {"cidr": "127.0.0.1/32"}, HTTP_HX_REQUEST="true"
    )
    assert 'name="confirm_public"' not in home.text
