"""Deployment services and API against the test database; the device is never reached
(the one quick port listing is faked), the pipeline itself runs in the lab tests."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from devices.models import DeviceLease
from homelab.core.models import Job
from marketplace import pipeline, recovery, services
from marketplace.models import Deployment, DeploymentStatus
from marketplace.selectors import apps_counts
from scheduling.models import Reservation
from tests.unit.scheduling.factories import make_device

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(client):
    user = get_user_model().objects.create_superuser("owner", password="a-long-password-1")
    client.force_login(user)
    return client


@pytest.fixture
def quiet_device(monkeypatch):
    """Nothing listens on the device; enqueued runs are collected, not run."""
    listened = []

    def run(self, args, *, timeout=None):
        listened.append(args)
        return 0, 'tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=1,fd=3))\n', ""

    monkeypatch.setattr(pipeline.DeploymentShell, "run", run)
    queued = []
    real = services.enqueue_run

    def enqueue_run(deployment_id):
        queued.append(deployment_id)
        return real(deployment_id)  # the job row; its worker task is not run here

    monkeypatch.setattr(services, "enqueue_run", enqueue_run)
    return queued


@pytest.fixture
def homelab():
    return {
        "small": make_device("small", ram_free_gb=1, ram_total_gb=2),
        "big": make_device("big", ram_free_gb=8),
    }


def test_deploy_without_a_device_takes_placements_choice_and_returns_202(
    client, homelab, quiet_device, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/applications/vaultwarden/deploy", {}, content_type="application/json"
        )
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["device_id"] == homelab["big"].pk and body["status"] == "validating"
    assert quiet_device == [body["deployment_id"]]  # enqueued after commit
    job = Job.objects.get(pk=body["job_id"])
    assert (job.kind, job.target_type, job.target_id) == (
        "app.deploy", "deployment", str(body["deployment_id"]),
    )  # fmt: skip
    assert job.status == "queued" and job.user.username == "owner"
    deployment = Deployment.objects.get(pk=body["deployment_id"])
    assert deployment.project == "hl-vaultwarden-default"
    assert set(deployment.secret_values()) == {"admin_token"}
    assert deployment.reservation_id and Reservation.objects.filter(ports=[8080]).exists()
    assert apps_counts() == (1, 0)

    again = client.post(
        "/api/v1/applications/vaultwarden/deploy", {}, content_type="application/json"
    )
    assert again.status_code == 202 and again.json()["deployment_id"] == deployment.pk
    assert again.json()["job_id"] == job.pk  # the same deployment, the same job
    assert Deployment.objects.count() == 1


def test_secrets_are_not_stored_in_clear(homelab, quiet_device):
    deployment = services.deployment_create(slug="vaultwarden")
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("select secrets from marketplace_deployment where id = %s", [deployment.pk])
        stored = cursor.fetchone()[0]
    assert deployment.secret_values()["admin_token"] not in stored


@pytest.mark.parametrize(
    ("payload", "status", "words"),
    [
        ({"device_id": 999}, 404, "device_id: there is no device 999"),
        ({"instance": "x;rm -rf /"}, 422, "instance: use 1-31 lowercase"),
        ({"instance": "$(id)"}, 422, "instance:"),
        ({"config": {"ports": {"web": "eighty"}}}, 422, "config.ports.web: must be a whole number"),
        ({"config": {"ports": {"nope": 8081}}}, 422, "config.ports.nope: this app has no port"),
        ({"config": {"env": {"bad name": "x"}}}, 422, "config.env.bad name:"),
        ({"config": {"env": {"TZ": ["x"]}}}, 422, "config.env.TZ: must be text"),
        ({"config": {"volumes": {}}}, 422, "config.volumes: not a known setting"),
        ({"config": {"ports": []}}, 422, "config.ports: must be an object"),
    ],
)
def test_bad_deploy_input_names_the_field(client, homelab, quiet_device, payload, status, words):
    response = client.post(
        "/api/v1/applications/vaultwarden/deploy", payload, content_type="application/json"
    )
    assert response.status_code == status, response.content
    assert words in response.json()["detail"]
    assert Deployment.objects.count() == 0


def test_an_unknown_app_is_a_404_naming_it(client, homelab):
    response = client.post(
        "/api/v1/applications/no-such-app/deploy", {}, content_type="application/json"
    )
    assert response.status_code == 404
    assert "no app 'no-such-app'" in response.json()["detail"]
    assert client.get("/api/v1/applications/no-such-app").status_code == 404


def test_an_offline_device_is_refused(client, homelab):
    homelab["big"].status = "offline"
    homelab["big"].save()
    response = client.post(
        "/api/v1/applications/vaultwarden/deploy",
        {"device_id": homelab["big"].pk},
        content_type="application/json",
    )
    assert response.status_code == 409
    assert "big is offline" in response.json()["detail"]


def test_a_device_without_resources_is_refused_with_the_reason(client, homelab):
    response = client.post(
        "/api/v1/applications/immich/deploy",
        {"device_id": homelab["small"].pk},
        content_type="application/json",
    )
    assert response.status_code == 409
    assert "RAM free, app needs" in response.json()["detail"]


def test_no_device_fits_says_why(client, homelab):
    for device in homelab.values():
        device.status = "offline"
        device.save()
    response = client.post(
        "/api/v1/applications/vaultwarden/deploy", {}, content_type="application/json"
    )
    assert response.status_code == 409
    assert "No device" in response.json()["detail"]


def test_a_port_claimed_by_another_deployment_is_named(client, homelab, quiet_device):
    first = services.deployment_create(slug="vaultwarden", device_id=homelab["big"].pk)
    Deployment.objects.filter(pk=first.pk).update(status=DeploymentStatus.RUNNING)
    response = client.post(
        "/api/v1/applications/vaultwarden/deploy",
        {"device_id": homelab["big"].pk, "instance": "second"},
        content_type="application/json",
    )
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert "port 8080/tcp (web) on big is claimed by the deployment Vaultwarden (default)" in detail
    assert "config.ports.web" in detail
    ok = client.post(
        "/api/v1/applications/vaultwarden/deploy",
        {"device_id": homelab["big"].pk, "instance": "second", "config": {"ports": {"web": 8090}}},
        content_type="application/json",
    )
    assert ok.status_code == 202, ok.content


def test_the_catalog_lists_apps_and_the_invalid_ones(client):
    body = client.get("/api/v1/applications").json()
    slugs = [a["slug"] for a in body["applications"]]
    assert "vaultwarden" in slugs and len(slugs) >= 15
    assert isinstance(body["invalid"], list)
    detail = client.get("/api/v1/applications/vaultwarden").json()
    assert detail["ports"][0]["default_host_port"] == 8080
    assert detail["secrets"] == ["admin_token"]


def test_deployments_list_detail_debug_and_errors(client, homelab, quiet_device):
    deployment = services.deployment_create(slug="vaultwarden", device_id=homelab["big"].pk)
    assert [d["id"] for d in client.get("/api/v1/deployments").json()] == [deployment.pk]
    assert client.get(f"/api/v1/deployments?device={homelab['small'].pk}").json() == []
    assert client.get("/api/v1/deployments?status=running").json() == []
    assert client.get("/api/v1/deployments?category=security").json()[0]["id"] == deployment.pk
    assert client.get("/api/v1/deployments?status=bogus").status_code == 422
    detail = client.get(f"/api/v1/deployments/{deployment.pk}").json()
    assert detail["status"] == "validating" and detail["steps"] == []
    assert "Vaultwarden" not in json.dumps(detail["config"])
    debug = client.get(f"/api/v1/deployments/{deployment.pk}/debug").json()
    assert set(debug) == {"compose", "compose_path", "commands", "rollback_log"}
    assert client.get("/api/v1/deployments/9999").status_code == 404
    # a deployment still working cannot be stopped or removed
    assert client.post(f"/api/v1/deployments/{deployment.pk}/stop").status_code == 409
    assert client.delete(f"/api/v1/deployments/{deployment.pk}").status_code == 409


def test_the_api_requires_login(db):
    from django.test import Client

    assert Client().get("/api/v1/deployments").status_code == 401


# --------------------------------------------------------------------- run and recovery
def test_a_deployment_is_claimed_only_once(homelab, quiet_device, monkeypatch):
    deployment = services.deployment_create(slug="vaultwarden", device_id=homelab["big"].pk)
    runs = []

    class FakePipeline:
        def __init__(self, d, recipe):
            runs.append(d.pk)

        def run(self, job=None):
            return pipeline.Outcome(True, "running")

    monkeypatch.setattr(pipeline, "DeploymentPipeline", FakePipeline)
    assert services.deployment_run(deployment_id=deployment.pk).status == "running"
    assert services.deployment_run(deployment_id=deployment.pk) is None
    assert runs == [deployment.pk]
    assert not DeviceLease.objects.exists()  # released
    assert apps_counts() == (1, 1)


def test_a_queued_deployment_is_resumed_at_start_up(homelab, quiet_device):
    deployment = services.deployment_create(slug="vaultwarden", device_id=homelab["big"].pk)
    quiet_device.clear()
    assert recovery.deployments_recover_interrupted() == 1
    assert quiet_device == [deployment.pk]
    assert Deployment.objects.get(pk=deployment.pk).status == "validating"


def test_an_interrupted_removal_is_marked_failed_at_start_up(homelab, quiet_device):
    deployment = services.deployment_create(slug="vaultwarden", device_id=homelab["big"].pk)
    Deployment.objects.filter(pk=deployment.pk).update(status=DeploymentStatus.REMOVING)
    recovery.deployments_recover_interrupted()
    deployment.refresh_from_db()
    assert deployment.status == "failed" and "Remove again" in deployment.error


# ------------------------------------------------------------------------ device lease
def test_the_device_lease_serialises_work_on_one_device(homelab):
    device = homelab["big"]
    with services.device_lease(device_id=device.pk, holder="first"):
        with (
            pytest.raises(services.DeploymentError) as caught,
            services.device_lease(device_id=device.pk, holder="second", wait_seconds=0),
        ):
            pass
        assert caught.value.code == 409
        # another device is free
        with services.device_lease(device_id=homelab["small"].pk, holder="second", wait_seconds=0):
            pass
    with services.device_lease(device_id=device.pk, holder="second", wait_seconds=0):
        pass
    assert not DeviceLease.objects.exists()


def test_an_expired_lease_is_taken_over(homelab):
    device = homelab["big"]
    DeviceLease.objects.create(
        device=device, holder="dead-worker", expires_at=timezone.now() - timedelta(seconds=1)
    )
    with services.device_lease(device_id=device.pk, holder="alive", wait_seconds=0):
        assert DeviceLease.objects.get().holder == "alive"


def test_the_task_is_a_door_to_deployment_run(homelab, quiet_device, monkeypatch):
    from marketplace import tasks

    deployment = services.deployment_create(slug="vaultwarden", device_id=homelab["big"].pk)

    class FakePipeline:
        def __init__(self, d, recipe):
            pass

        def run(self, job=None):
            return pipeline.Outcome(False, "rolled_back", "it broke", "health check")

    monkeypatch.setattr(pipeline, "DeploymentPipeline", FakePipeline)
    assert tasks.run_deployment(deployment.pk) == "rolled_back"
    deployment.refresh_from_db()
    assert deployment.error == "health check: it broke"
    assert Reservation.objects.get(pk=deployment.reservation_id).released_at is not None
    assert tasks.run_deployment(deployment.pk) == "not claimed"


def test_removing_a_rolled_back_deployment_touches_no_device(homelab, quiet_device, monkeypatch):
    deployment = services.deployment_create(slug="vaultwarden", device_id=homelab["big"].pk)
    Deployment.objects.filter(pk=deployment.pk).update(status=DeploymentStatus.ROLLED_BACK)
    deployment.refresh_from_db()

    def never(*args, **kwargs):
        raise AssertionError("the device must not be touched")

    monkeypatch.setattr(pipeline, "DeploymentPipeline", never)
    job = services.deployment_remove(deployment=deployment, delete_data=True, sync=True)
    assert job.kind == "app.remove" and job.status == "succeeded", job.error
    assert [(s.name, s.status) for s in job.steps.all()] == [("remove from the device", "skipped")]
    assert Deployment.objects.get(pk=deployment.pk).status == "removed"
    # its identity is free again: a new deployment of the same app+instance may be made
    assert apps_counts() == (0, 0)


def test_create_enqueues_the_real_task_after_commit(
    homelab, monkeypatch, django_capture_on_commit_callbacks
):
    """django-q2 in sync mode runs the task at once: the name, args and options are right."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)
    monkeypatch.setattr(pipeline.DeploymentShell, "run", lambda self, args, timeout=None: (0, "", ""))

    class FakePipeline:
        def __init__(self, d, recipe):
            pass

        def run(self, job=None):
            return pipeline.Outcome(True, "running")

    monkeypatch.setattr(pipeline, "DeploymentPipeline", FakePipeline)
    with django_capture_on_commit_callbacks(execute=True):
        deployment = services.deployment_create(slug="vaultwarden", device_id=homelab["big"].pk)
        assert deployment.status == "validating"
    assert Deployment.objects.get(pk=deployment.pk).status == "running"


def test_a_new_deployment_takes_over_the_secrets_of_one_removed_with_its_data_kept():
    """ "Keep my data" promises that deploying the app there again picks the data up: what
    its first start wrote from the secrets (a database password, a key) must still fit."""
    from marketplace.recipes import load_catalog

    recipe = load_catalog([]).get("monica")
    home = make_device("home", ram_free_gb=8)
    other = make_device("other", ram_free_gb=8)

    def removed(device, *, kept: bool, instance="default", secrets=None) -> Deployment:
        return Deployment.objects.create(
            slug="monica", app_name="Monica", device=device, instance=instance,
            project=services.project_name("monica", instance), status=DeploymentStatus.REMOVED,
            data_kept=kept, secrets=json.dumps(secrets or {}),
            database_passwords=json.dumps({"mariadb": "P" * 40} if kept else {}),
        )  # fmt: skip

    def new(device, instance="default") -> Deployment:
        return Deployment(device=device, project=services.project_name("monica", instance))

    names = {s.name for s in recipe.manifest.secrets}
    fresh, passwords = services._kept_secrets(recipe, new(home))
    assert set(fresh) == names and passwords == {}
    removed(home, kept=False, secrets={name: "deleted" for name in names})
    old = {name: f"kept-{name}" for name in names} | {"gone_from_recipe": "x"}
    removed(home, kept=True, secrets=old)
    secrets, passwords = services._kept_secrets(recipe, new(home))
    assert secrets == {name: f"kept-{name}" for name in names}  # not the unknown one
    assert passwords == {"mariadb": "P" * 40}
    # another device or another name starts afresh
    for device, instance in ((other, "default"), (home, "family")):
        secrets, passwords = services._kept_secrets(recipe, new(device, instance))
        assert not set(secrets.values()) & set(old.values()) and passwords == {}


def test_the_admin_shows_whether_data_was_kept_but_never_the_kept_passwords(client):
    admin = get_user_model().objects.create_superuser("root", "r@example.com", "a-long-pass-1")
    client.force_login(admin)
    deployment = Deployment.objects.create(
        slug="monica", app_name="Monica", device=make_device("home", ram_free_gb=8),
        project="hl-monica-default", status=DeploymentStatus.REMOVED, data_kept=True,
        secrets=json.dumps({"db_password": "S" * 40}),
        database_passwords=json.dumps({"mariadb": "D" * 40}),
    )  # fmt: skip
    page = client.get(f"/admin/marketplace/deployment/{deployment.pk}/change/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Data kept" in text
    assert "S" * 40 not in text and "D" * 40 not in text
    listed = client.get("/admin/marketplace/deployment/?data_kept__exact=1").content.decode()
    assert "Monica" in listed
