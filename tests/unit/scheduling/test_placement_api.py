"""The placement service and its API, against the test database (no devices reached)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from devices.models import Device, DeviceMetric
from homelab.services import api_token_issue
from scheduling import services
from scheduling.admin import PlacementSettingsForm
from scheduling.models import PlacementChoice, PlacementSettings
from scheduling.scoring import GIB, MIB
from tests.unit.scheduling.factories import make_device

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    return get_user_model().objects.create_superuser("owner", password="a-long-password-1")


@pytest.fixture
def client(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def homelab():
    return {
        "server-01": make_device("server-01", ram_free_gb=4, cpu_usage_percent=85),
        "server-02": make_device("server-02", ram_free_gb=8, cpu_usage_percent=40),
        "pi-4": make_device(
            "pi-4",
            ram_free_gb=2,
            ram_total_gb=4,
            arch="aarch64",
            storage_total_bytes=64 * GIB,
            storage_used_bytes=40 * GIB,
        ),
    }


def test_it_requires_login(db):
    response = (
        __import__("django.test", fromlist=["Client"])
        .Client()
        .get("/api/v1/applications/vaultwarden/placement")
    )
    assert response.status_code == 401


def test_it_ranks_the_devices_for_a_known_app(client, homelab):
    response = client.get("/api/v1/applications/vaultwarden/placement")

    assert response.status_code == 200
    body = response.json()
    assert body["recommended"] == homelab["server-02"].pk
    assert body["policy"] == "spread"
    names = [c["device_name"] for c in body["candidates"]]
    assert names[0] == "server-02" and set(names) == set(homelab)
    first = body["candidates"][0]
    assert set(first) == {
        "device_id",
        "device_name",
        "score",
        "scores",
        "eligible",
        "label",
        "reasons",
        "summary",
    }
    assert set(first["scores"]) == {"ram", "storage", "cpu", "load", "uptime"}
    assert first["label"] == "Recommended" and first["eligible"] is True
    assert first["summary"].startswith("server-02: 8 GB RAM free (app needs 128 MB), 40 % load")
    scores = [c["score"] for c in body["candidates"]]
    assert scores == sorted(scores, reverse=True)


def test_it_answers_a_bearer_token(db, homelab, user):
    _, raw = api_token_issue(username=user.username)

    response = Client().get(
        "/api/v1/applications/vaultwarden/placement", HTTP_AUTHORIZATION=f"Bearer {raw}"
    )
    assert response.status_code == 200


def test_an_unknown_app_is_a_404_naming_the_slug(client, homelab):
    response = client.get("/api/v1/applications/no-such-app/placement")
    assert response.status_code == 404
    assert response.json()["detail"].startswith("slug: no app called 'no-such-app'")


def test_an_unknown_policy_is_a_422_naming_the_field(client, homelab):
    response = client.get("/api/v1/applications/vaultwarden/placement?policy=balanced")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "policy"


def test_the_policy_can_be_chosen_per_request(client, homelab):
    response = client.get("/api/v1/applications/vaultwarden/placement?policy=pack")
    assert response.status_code == 200
    assert response.json()["policy"] == "pack"


def post(client, body):
    return client.post("/api/v1/placement", body, content_type="application/json")


def test_ad_hoc_requirements_are_ranked(client, homelab):
    response = post(
        client, {"name": "Big thing", "min_ram_bytes": 3 * GIB, "architectures": ["amd64"]}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["recommended"] == homelab["server-02"].pk
    pi = next(c for c in body["candidates"] if c["device_name"] == "pi-4")
    assert pi["eligible"] is False and pi["label"] == "Not recommended"
    assert "2 GB RAM free, app needs 3 GB" in pi["reasons"]
    assert "arm64 device, app is built for amd64 only" in pi["reasons"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"min_ram_bytes": -1}, "min_ram_bytes"),
        ({"min_storage_bytes": -5}, "min_storage_bytes"),
        ({"min_ram_bytes": 2 * GIB, "recommended_ram_bytes": GIB}, "recommended_ram_bytes"),
        ({"weights": {"ram": 0, "storage": 0, "cpu": 0, "load": 0, "uptime": 0}}, "weights"),
        ({"weights": {"ram": -3}}, "weights.ram"),
        ({"ports": [0]}, "ports"),
        ({"policy": "fastest"}, "policy"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(client, homelab, body, field):
    response = post(client, body)
    assert response.status_code == 422, response.content
    errors = response.json()["errors"]
    assert errors[0]["field"] == field
    assert response.json()["detail"].startswith("Please correct:")


def test_weights_in_the_request_change_the_winner(client, homelab):
    response = post(
        client,
        {
            "min_ram_bytes": 256 * MIB,
            "weights": {"ram": 0, "storage": 0, "cpu": 0, "load": 1, "uptime": 0},
        },
    )
    body = response.json()
    assert body["candidates"][0]["device_name"] == "pi-4"  # least loaded


def test_with_no_eligible_device_each_device_says_why(client, homelab):
    response = post(client, {"min_ram_bytes": 64 * GIB})
    body = response.json()
    assert body["recommended"] is None
    assert body["message"].startswith("No device can run this app")
    assert len(body["candidates"]) == 3
    for candidate in body["candidates"]:
        assert candidate["eligible"] is False
        assert candidate["reasons"] and "app needs 64 GB" in candidate["reasons"][0]


def test_reservations_spread_deployments_before_the_next_poll(homelab):
    app = services.requirements_build(
        name="x", min_ram_bytes=1 * GIB, recommended_ram_bytes=2 * GIB
    )
    first = services.placement_rank(requirements=app)
    assert first.recommended.device_name == "server-02"

    reservation = services.reservation_create(
        device_id=first.recommended_device_id, label="x", ram_bytes=6 * GIB, ports=[8080]
    )
    second = services.placement_rank(requirements=app)
    assert second.recommended.device_name != "server-02"
    reserved = second.candidate(homelab["server-02"].pk)
    assert reserved.summary.startswith("server-02: 2 GB RAM free")

    with_port = services.requirements_build(name="y", min_ram_bytes=MIB, ports=[8080])
    blocked = services.placement_rank(requirements=with_port).candidate(homelab["server-02"].pk)
    assert "port 8080 is already in use" in blocked.reasons

    assert services.reservation_release(reservation_id=reservation.pk) is True
    assert services.reservation_release(reservation_id=reservation.pk) is False
    assert services.placement_rank(requirements=app).recommended.device_name == "server-02"


def test_an_expired_reservation_no_longer_counts(homelab):
    app = services.requirements_build(name="x", min_ram_bytes=1 * GIB)
    services.reservation_create(
        device_id=homelab["server-02"].pk,
        label="old",
        ram_bytes=7 * GIB,
        now=timezone.now() - timedelta(hours=1),
    )
    assert services.placement_rank(requirements=app).recommended.device_name == "server-02"


def test_reservation_input_is_checked(homelab):
    with pytest.raises(services.PlacementError) as raised:
        services.reservation_create(device_id=homelab["pi-4"].pk, label="x", ram_bytes=-1)
    assert raised.value.field == "ram_bytes"
    with pytest.raises(services.PlacementError) as raised:
        services.reservation_create(device_id=999999, label="x")
    assert raised.value.field == "device_id" and raised.value.code == 404


def test_reliability_comes_from_the_poll_history_of_the_last_7_days(homelab):
    now = timezone.now()
    device = homelab["server-01"]
    for minutes, online in enumerate([True, True, True, False]):
        DeviceMetric.objects.create(
            device=device, time=now - timedelta(minutes=minutes), online=online
        )
    # An old outage outside the window does not count.
    DeviceMetric.objects.create(device=device, time=now - timedelta(days=8), online=False)
    ranking = services.placement_rank_app(slug="vaultwarden")
    candidate = ranking.candidate(device.pk)
    assert candidate.scores.uptime == 75.0
    assert "75 % uptime" in candidate.summary
    assert ranking.candidate(homelab["pi-4"].pk).scores.uptime == 50.0  # no history: neutral


def test_an_offline_device_is_disqualified(homelab):
    Device.objects.filter(pk=homelab["server-02"].pk).update(status="offline")
    ranking = services.placement_rank_app(slug="vaultwarden")
    offline = ranking.candidate(homelab["server-02"].pk)
    assert not offline.eligible
    assert ranking.recommended.device_name != "server-02"


def test_the_admin_weights_apply_and_settings_are_the_default(homelab, settings):
    app = services.requirements_build(name="x", min_ram_bytes=256 * MIB)
    assert services.placement_rank(requirements=app).weights.ram == 40

    settings.PLACEMENT_WEIGHTS = {"ram": 0, "storage": 0, "cpu": 0, "load": 1, "uptime": 0}
    assert services.placement_rank(requirements=app).recommended.device_name == "pi-4"

    services.placement_settings_update(
        weights={"ram": 40, "storage": 30, "cpu": 15, "load": 10, "uptime": 5}, policy="pack"
    )
    ranking = services.placement_rank(requirements=app)
    assert ranking.weights.ram == 40 and ranking.policy.value == "pack"
    assert PlacementSettings.objects.count() == 1

    services.placement_settings_reset()
    assert services.placement_rank(requirements=app).weights.load == 1


def test_bad_weights_in_settings_stop_with_the_setting_named(homelab, settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.PLACEMENT_WEIGHTS = {"ram": -1}
    with pytest.raises(ImproperlyConfigured, match="PLACEMENT_WEIGHTS"):
        services.placement_rank_app(slug="vaultwarden")


def test_the_admin_form_refuses_weights_that_sum_to_zero():
    data = {f"weight_{n}": 0 for n in ("ram", "storage", "cpu", "load", "uptime")} | {
        "policy": "spread"
    }
    form = PlacementSettingsForm(data=data)
    assert not form.is_valid()
    assert "At least one weight must be above 0" in str(form.errors)
    form = PlacementSettingsForm(data=data | {"weight_cpu": -2})
    assert not form.is_valid() and "weight_cpu" in form.errors


def test_choosing_another_device_is_recorded_as_an_override(client, homelab):
    response = client.post(
        "/api/v1/placement/choices",
        {"slug": "vaultwarden", "device_id": homelab["server-01"].pk},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["override"] is True
    assert body["message"] == "server-01 chosen instead of server-02 for Vaultwarden"
    choice = PlacementChoice.objects.get()
    assert choice.recommended_device == homelab["server-02"]


def test_choosing_an_unknown_device_is_a_404_naming_it(client, homelab):
    response = client.post(
        "/api/v1/placement/choices",
        {"slug": "vaultwarden", "device_id": 424242},
        content_type="application/json",
    )
    assert response.status_code == 404
    assert response.json()["detail"].startswith("device_id:")


def test_the_ranking_takes_a_fixed_number_of_queries(homelab, django_assert_max_num_queries):
    # settings, devices, availability, reservations, and the ports live deployments hold
    for i in range(20):
        make_device(f"extra-{i}", ram_free_gb=1 + i % 5)
    with django_assert_max_num_queries(5):
        services.placement_rank_app(slug="nextcloud")


def test_a_port_held_by_a_running_app_disqualifies_the_device(homelab):
    from marketplace.models import Deployment, DeploymentStatus

    device = Device.objects.get(name="server-02")
    Deployment.objects.create(
        slug="vaultwarden", app_name="Vaultwarden", device=device, instance="default",
        project="hl-vaultwarden-default", status=DeploymentStatus.RUNNING, config={"ports": {"web": 8081}},
    )
    ranking = services.placement_rank(
        requirements=services.requirements_build(name="Needs 8081", ports=[8081])
    )
    candidate = next(c for c in ranking.candidates if c.device_name == "server-02")
    assert not candidate.eligible
    assert any("8081" in reason for reason in candidate.reasons)


def test_a_device_that_runs_apps_is_not_removed_until_they_are(homelab):
    from devices.services import DeviceError, device_remove
    from marketplace.models import Deployment, DeploymentStatus

    device = Device.objects.get(name="server-02")
    live = Deployment.objects.create(
        slug="vaultwarden", app_name="Vaultwarden", device=device, instance="default",
        project="hl-vaultwarden-default", status=DeploymentStatus.RUNNING, config={},
    )
    with pytest.raises(DeviceError, match="still runs 1 app"):
        device_remove(device=device)
    assert Device.objects.filter(pk=device.pk).exists()
    Deployment.objects.filter(pk=live.pk).update(status=DeploymentStatus.REMOVED)
    device.status = "offline"  # nothing to run on it: just forget it
    device_remove(device=device)
    assert not Device.objects.filter(pk=device.pk).exists()
