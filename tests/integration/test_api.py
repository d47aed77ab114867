"""The JSON API's doors: authentication, shapes, and field-naming errors (no device needed)."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from devices.models import Device

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_user():
    return get_user_model().objects.create_superuser("admin", "admin@example.com", "a-long-test-password")


@pytest.fixture
def token(admin_user, capsys):
    call_command("issue_api_token", "admin")
    return capsys.readouterr().out.strip().splitlines()[-1]


@pytest.fixture
def api(client, token):
    def call(method: str, path: str, body=None):
        kwargs = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
        if body is not None:
            kwargs.update(data=json.dumps(body), content_type="application/json")
        return getattr(client, method)(f"/api/v1{path}", **kwargs)

    return call


def _device(**overrides) -> Device:
    fields = dict(
        name="server-02", address="10.0.0.2", port=22, username="root",
        private_key="-----BEGIN OPENSSH PRIVATE KEY-----\nSECRET-KEY-MATERIAL\n-----END OPENSSH PRIVATE KEY-----\n",
        public_key="ssh-ed25519 AAAA test", status="online",
        ram_total_bytes=8 * 2**30, ram_used_bytes=2 * 2**30,
        storage_total_bytes=100 * 2**30, storage_used_bytes=40 * 2**30,
        cpu_cores=2, cpu_usage_percent=40.0,
    )
    fields.update(overrides)
    return Device.objects.create(**fields)


def test_health_needs_no_login(client):
    response = client.get("/api/v1/system/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.parametrize("path", ["/system/version", "/devices", "/resources", "/devices/1"])
def test_everything_else_needs_authentication(client, path):
    assert client.get(f"/api/v1{path}").status_code == 401


def test_a_wrong_bearer_token_is_refused(client, token):
    response = client.get("/api/v1/devices", HTTP_AUTHORIZATION="Bearer hlo_not-the-token")
    assert response.status_code == 401


def test_the_token_command_prints_the_token_last_and_stores_only_its_hash(token):
    from homelab.models import ApiToken

    assert token.startswith("hlo_")
    stored = ApiToken.objects.get()
    assert token not in (stored.token_hash, stored.hint) and len(stored.token_hash) == 64


def test_the_token_command_explains_an_unknown_user(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no account named 'nobody'"):
        call_command("issue_api_token", "nobody")


def test_a_browser_session_works_too(client, admin_user):
    client.force_login(admin_user)
    assert client.get("/api/v1/system/version").json()["api"] == "v1"


def test_a_device_carries_its_metrics_and_never_a_credential(api):
    device = _device()
    body = api("get", f"/devices/{device.id}").json()
    for key in ("id", "name", "address", "status", "ram_total_bytes", "ram_used_bytes",
                "storage_total_bytes", "storage_used_bytes", "cpu_cores", "cpu_usage_percent",
                "load_1m", "uptime_seconds", "docker_version", "compose_version", "arch"):
        assert key in body, key
    text = json.dumps(api("get", "/devices").json())
    assert "SECRET-KEY-MATERIAL" not in text and "private_key" not in text and "password" not in text


def test_an_unknown_device_is_a_clear_404(api):
    response = api("get", "/devices/999")
    assert response.status_code == 404 and "no device with id 999" in response.json()["detail"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"address": "10.0.0.9", "username": "root", "password": "x"}, "name"),
        ({"name": "a", "address": "10.0.0.9", "username": "root", "password": "x", "port": 70000}, "port"),
        ({"name": "a", "address": "10.0.0.9", "username": "root", "password": "x", "type": "toaster"}, "type"),
    ],
)
def test_a_bad_field_is_named_in_the_error(api, body, field):
    response = api("post", "/devices", body)
    assert response.status_code == 422
    assert field in [error["field"] for error in response.json()["errors"]]
    assert response.json()["detail"].startswith("Please correct:")


def test_a_device_needs_a_password_or_a_key(api):
    response = api("post", "/devices", {"name": "a", "address": "10.0.0.9", "username": "root"})
    assert response.status_code == 422 and response.json()["field"] == "password"


def test_resources_sum_online_devices_only(api):
    _device(name="a", address="10.0.0.3")
    _device(name="b", address="10.0.0.4", ram_total_bytes=4 * 2**30, ram_used_bytes=2**30, cpu_usage_percent=20.0)
    _device(name="c", address="10.0.0.5", status="offline")
    body = api("get", "/resources").json()
    assert body["ram_total_bytes"] == 12 * 2**30
    assert body["ram_used_bytes"] == 3 * 2**30
    assert body["storage_total_bytes"] == 200 * 2**30
    assert body["cpu_cores_total"] == 4
    assert body["cpu_usage_avg_percent"] == pytest.approx(30.0)
    assert body["devices_online"] == 2 and body["devices_offline"] == 1
    assert body["apps_total"] == 0 and body["apps_running"] == 0
    assert body["pooling_saved_ram_bytes"] == 0


def test_openapi_docs_need_a_login(client, admin_user):
    assert client.get("/api/v1/docs").status_code == 302
    client.force_login(admin_user)
    assert client.get("/api/v1/docs").status_code == 200
    assert client.get("/api/v1/openapi.json").status_code == 200
