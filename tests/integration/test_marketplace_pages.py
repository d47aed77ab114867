"""The catalog, deploy wizard and deployment pages through Django's test client.

Nothing here talks to a device: devices are rows with metrics, and deployments that
would need SSH are created directly as rows.
"""

from __future__ import annotations

import json
import shutil

import pytest
import yaml
from django.urls import reverse

from devices.models import Device, DeviceStatus
from homelab.core.masking import MASK
from homelab.core.models import Job
from homelab.core.services import job_run
from marketplace.models import Deployment, DeploymentCommand, DeploymentStep
from marketplace.recipes import BUILTIN_DIR, clear_catalog_cache

pytestmark = pytest.mark.django_db

GiB = 1024**3
SECRET_VALUE = "Sup3rSecretAdminTokenValue0123456789abcdefXYZ"


@pytest.fixture(autouse=True)
def fresh_catalog(settings):
    settings.HOMELAB_RECIPE_DIRS = []
    clear_catalog_cache()
    yield
    clear_catalog_cache()


@pytest.fixture
def signed_in(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("owner", password="pw-Owner-123"))
    return client


def make_device(name: str, *, ram_total_gib: float, ram_used_gib: float, **fields) -> Device:
    values = {
        "name": name,
        "address": f"10.0.0.{Device.objects.count() + 10}",
        "port": 22,
        "username": "root",
        "device_type": "server",
        "status": DeviceStatus.ONLINE,
        "private_key": "not-a-real-key",
        "public_key": "ssh-ed25519 AAAA",
        "arch": "amd64",
        "docker_version": "27.0.0",
        "compose_version": "2.29.0",
        "compose_command": "docker compose",
        "ram_total_bytes": int(ram_total_gib * GiB),
        "ram_used_bytes": int(ram_used_gib * GiB),
        "storage_total_bytes": 200 * GiB,
        "storage_used_bytes": 20 * GiB,
        "cpu_cores": 4,
        "cpu_usage_percent": 10.0,
        "always_on": True,
    }
    values.update(fields)
    return Device.objects.create(**values)


def make_deployment(device: Device, **fields) -> Deployment:
    values = {
        "slug": "vaultwarden",
        "app_name": "Vaultwarden",
        "category": "security",
        "device": device,
        "instance": "default",
        "project": "hl-vaultwarden-default",
        "status": "running",
        "url": f"http://{device.address}:8080",
        "secrets": json.dumps({"admin_token": SECRET_VALUE}),
        "compose_masked": f"services:\n  vaultwarden:\n    environment:\n      ADMIN_TOKEN: {MASK}\n",
    }
    values.update(fields)
    return Deployment.objects.create(**values)


# ------------------------------------------------------------------------------ catalog
def test_every_page_needs_a_signed_in_person(client, django_user_model):
    django_user_model.objects.create_superuser("owner", password="pw-Owner-123")
    device = make_device("server-01", ram_total_gib=8, ram_used_gib=2)
    deployment = make_deployment(device)
    for url in [
        reverse("app_catalog"),
        reverse("app_detail", args=["vaultwarden"]),
        reverse("app_deploy", args=["vaultwarden"]),
        reverse("deployment_list"),
        reverse("deployment_detail", args=[deployment.pk]),
        reverse("deployment_debug", args=[deployment.pk]),
        reverse("deployment_remove", args=[deployment.pk]),
    ]:
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], url


def test_the_catalog_lists_apps_with_their_needs(signed_in):
    response = signed_in.get(reverse("app_catalog"))
    body = response.content.decode()
    assert response.status_code == 200
    assert "Vaultwarden" in body and "Jellyfin" in body
    assert "Needs at least 128 MB of memory" in body
    assert "Some recipes have problems" not in body


def test_the_catalog_search_and_filter_work_with_and_without_htmx(signed_in):
    body = signed_in.get(reverse("app_catalog"), {"q": "password"}).content.decode()
    assert "Vaultwarden" in body and "Jellyfin" not in body
    body = signed_in.get(reverse("app_catalog"), {"category": "media"}).content.decode()
    assert "Jellyfin" in body and "Vaultwarden" not in body
    partial = signed_in.get(reverse("app_catalog"), {"q": "jelly"}, HTTP_HX_REQUEST="true")
    text = partial.content.decode()
    assert text.lstrip().startswith('<div id="app-cards">') and "<html" not in text
    assert "Jellyfin" in text and "Vaultwarden" not in text
    none = signed_in.get(reverse("app_catalog"), {"q": "no-such-app-anywhere"}).content.decode()
    assert "No app matches" in none


def test_an_invalid_custom_recipe_is_listed_with_file_field_and_problem(
    signed_in, settings, tmp_path
):
    broken = tmp_path / "broken-warden"
    shutil.copytree(BUILTIN_DIR / "vaultwarden", broken)
    manifest = yaml.safe_load((broken / "manifest.yaml").read_text())
    manifest["slug"] = "broken-warden"
    manifest["requirements"]["ram_min_mb"] = "lots"
    (broken / "manifest.yaml").write_text(yaml.safe_dump(manifest))
    settings.HOMELAB_RECIPE_DIRS = [str(tmp_path)]
    clear_catalog_cache()

    body = signed_in.get(reverse("app_catalog")).content.decode()
    assert "Some recipes have problems" in body
    assert "broken-warden" in body and "manifest.yaml" in body
    assert "requirements.ram_min_mb" in body
    assert "Vaultwarden" in body  # the rest of the catalog works
    assert signed_in.get(reverse("app_detail", args=["broken-warden"])).status_code == 404


def test_the_app_page_says_what_it_needs_in_plain_words(signed_in):
    body = signed_in.get(reverse("app_detail", args=["vaultwarden"])).content.decode()
    assert "Needs at least 128 MB of memory, 1 GB of storage" in body
    assert "The web vault and the API the Bitwarden apps talk to." in body
    assert "The password database, attachments and the server&#x27;s keys." in body
    assert reverse("app_deploy", args=["vaultwarden"]) in body
    assert signed_in.get(reverse("app_detail", args=["no-such-app"])).status_code == 404


# ------------------------------------------------------------------------------ wizard
def test_the_wizard_first_says_it_is_analyzing_then_recommends_the_best_device(signed_in):
    make_device("small-pi", ram_total_gib=1, ram_used_gib=0.9, device_type="pi")
    make_device("server-02", ram_total_gib=8, ram_used_gib=1.9)
    offline = make_device("old-nas", ram_total_gib=8, ram_used_gib=1)
    Device.objects.filter(pk=offline.pk).update(status=DeviceStatus.OFFLINE)

    first = signed_in.get(reverse("app_deploy", args=["vaultwarden"])).content.decode()
    assert "Analyzing your homelab" in first

    partial = signed_in.get(reverse("app_deploy", args=["vaultwarden"]), HTTP_HX_REQUEST="true")
    body = partial.content.decode()
    assert "<html" not in body
    assert "Recommended: server-02" in body
    assert "server-02 has 6.1 GB of memory free; this app needs 128 MB." in body
    # a device without enough memory is shown with its reason and cannot be chosen
    pi = body.split(f'data-device-id="{Device.objects.get(name="small-pi").pk}"', 1)[1].split(
        "</li>\n          <li", 1
    )[0]
    assert "Can't run it" in pi and "app needs 128 MB" in pi and "disabled" in pi
    # the compose preview masks every secret
    assert "Advanced" in body and MASK in body and "VAULTWARDEN_ADMIN_TOKEN" not in body

    full = signed_in.get(
        reverse("app_deploy", args=["vaultwarden"]), {"analyze": "1"}
    ).content.decode()
    assert "Recommended: server-02" in full and "<html" in full


def test_a_deploy_with_a_bad_port_shows_the_error_next_to_the_port(signed_in):
    make_device("server-02", ram_total_gib=8, ram_used_gib=2)
    response = signed_in.post(
        reverse("app_deploy", args=["vaultwarden"]), {"port_web": "70000", "env": ""}
    )
    assert response.status_code == 422
    body = response.content.decode()
    errors = body.split('id="port_web-errors"', 1)[1].split("</div>", 1)[0]
    assert "between 1 and 65535" in errors
    assert Deployment.objects.count() == 0


def test_a_copy_name_with_shell_characters_is_refused_next_to_its_field(signed_in):
    make_device("server-02", ram_total_gib=8, ram_used_gib=2)
    response = signed_in.post(
        reverse("app_deploy", args=["vaultwarden"]), {"instance": "x; rm -rf /", "env": ""}
    )
    assert response.status_code == 422
    errors = response.content.decode().split('id="instance-errors"', 1)[1].split("</div>", 1)[0]
    assert "lowercase letters, digits" in errors
    assert Deployment.objects.count() == 0


def test_a_deploy_with_a_malformed_env_line_says_how_to_write_it(signed_in):
    make_device("server-02", ram_total_gib=8, ram_used_gib=2)
    response = signed_in.post(reverse("app_deploy", args=["vaultwarden"]), {"env": "JUST_A_NAME"})
    assert response.status_code == 422
    errors = response.content.decode().split('id="env-errors"', 1)[1].split("</div>", 1)[0]
    assert "NAME=value" in errors


def test_the_compose_preview_follows_the_chosen_port(signed_in):
    response = signed_in.get(
        reverse("app_compose_preview", args=["vaultwarden"]),
        {"port_web": "18080", "device_id": "7", "env": "TZ=Europe/Berlin"},
    )
    body = response.content.decode()
    assert "18080:80" in body and MASK in body and "Europe/Berlin" in body


# ------------------------------------------------------------------------- deployments
def test_the_deployment_page_shows_the_steps_and_the_ready_address(signed_in):
    device = make_device("server-02", ram_total_gib=8, ram_used_gib=2)
    deployment = make_deployment(device)
    for name in ["pre-flight checks", "render compose file", "start containers", "health check"]:
        DeploymentStep.objects.create(deployment=deployment, name=name, status="ok")
    body = signed_in.get(reverse("deployment_detail", args=[deployment.pk])).content.decode()
    assert "Checking requirements" in body and "Waiting until the app answers" in body
    assert f"Vaultwarden is ready at http://{device.address}:8080" in body
    assert "Open Vaultwarden" in body and "Open the web vault" in body
    # finished: nothing to follow
    assert (
        "data-progress-ws" not in body and "hx-trigger" not in body.split('id="progress"')[1][:400]
    )


def test_a_deployment_in_progress_is_followed_live_and_polled_as_fallback(signed_in):
    device = make_device("server-02", ram_total_gib=8, ram_used_gib=2)
    deployment = make_deployment(device, status="deploying", url="")
    DeploymentStep.objects.create(deployment=deployment, name="pre-flight checks", status="ok")
    DeploymentStep.objects.create(deployment=deployment, name="start containers")
    body = signed_in.get(reverse("deployment_detail", args=[deployment.pk])).content.decode()
    assert f'data-progress-ws="/ws/deployments/{deployment.pk}/"' in body
    assert 'hx-trigger="every 2s [!window.homelabLive]"' in body
    assert "Starting the app" in body
    partial = signed_in.get(
        reverse("deployment_detail", args=[deployment.pk]), HTTP_HX_REQUEST="true"
    ).content.decode()
    assert partial.lstrip().startswith("<section") and "<html" not in partial
    # the page's buttons come along out of band: Remove appears once it has finished
    assert 'id="deployment-actions" hx-swap-oob="true"' in partial
    assert "/remove/" not in partial


def test_a_rolled_back_deployment_says_what_happened_and_offers_to_try_again(signed_in):
    device = make_device("server-02", ram_total_gib=8, ram_used_gib=2)
    deployment = make_deployment(
        device, status="rolled_back", url="", error="health check: the app did not answer in 60 s"
    )
    DeploymentStep.objects.create(deployment=deployment, name="health check", status="failed")
    DeploymentStep.objects.create(
        deployment=deployment, name="undo: remove containers, networks and volumes", status="undone"
    )
    body = signed_in.get(reverse("deployment_detail", args=[deployment.pk])).content.decode()
    assert "could not be installed" in body and "did not answer in 60 s" in body
    assert "removed again" in body and "Try again" in body
    assert "Cleaning up" in body


def test_the_list_filters_by_device_status_and_category(signed_in):
    one = make_device("server-01", ram_total_gib=8, ram_used_gib=2)
    two = make_device("server-02", ram_total_gib=8, ram_used_gib=2)
    make_deployment(one)
    make_deployment(
        two,
        slug="jellyfin",
        app_name="Jellyfin",
        category="media",
        project="hl-jellyfin-default",
        status="stopped",
    )
    body = signed_in.get(reverse("deployment_list")).content.decode()
    assert "Vaultwarden" in body and "Jellyfin" in body and "Open app" in body
    assert (
        "Vaultwarden"
        not in signed_in.get(reverse("deployment_list"), {"device": two.pk})
        .content.decode()
        .split('id="deployment-rows"')[1]
    )
    only_stopped = signed_in.get(reverse("deployment_list"), {"status": "stopped"}).content.decode()
    rows = only_stopped.split('id="deployment-rows"')[1]
    assert "Jellyfin" in rows and "Vaultwarden" not in rows
    media = signed_in.get(
        reverse("deployment_list"), {"category": "media"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "Jellyfin" in media and "Vaultwarden" not in media and "<html" not in media


def test_removing_asks_whether_to_keep_the_data(signed_in):
    device = make_device("server-02", ram_total_gib=8, ram_used_gib=2)
    deployment = make_deployment(device, status="rolled_back")
    body = signed_in.get(reverse("deployment_remove", args=[deployment.pk])).content.decode()
    assert "Keep my data" in body and "Delete my data" in body
    # the removal is a job: the answer comes at once and the job's page follows it
    response = signed_in.post(reverse("deployment_remove", args=[deployment.pk]), {"data": "keep"})
    job = Job.objects.get(kind="app.remove")
    assert response.status_code == 302 and response["Location"] == f"/activity/{job.pk}/"
    assert (job.target_type, job.target_id, job.status) == ("deployment", str(deployment.pk), "queued")
    assert job.params == {
        "deployment_id": deployment.pk, "delete_data": False, "keep_shared_servers": False,
        "previous_status": "rolled_back",
    }  # fmt: skip
    # the app's page says it is being removed (see Activity) instead of offering Remove
    page = signed_in.get(reverse("deployment_detail", args=[deployment.pk])).content.decode()
    assert "Removing… (see Activity)" in page and f"/activity/{job.pk}/" in page
    assert reverse("deployment_remove", args=[deployment.pk]) not in page
    # pressed twice: no second job
    again = signed_in.post(reverse("deployment_remove", args=[deployment.pk]), {"data": "keep"})
    assert again["Location"] == reverse("deployment_detail", args=[deployment.pk])
    assert Job.objects.filter(kind="app.remove").count() == 1
    # the worker runs it: a rolled-back deployment left nothing on the device (no SSH)
    job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert [(s.name, s.status) for s in job.steps.all()] == [("remove from the device", "skipped")]
    deployment.refresh_from_db()
    assert deployment.status == "removed"
    assert [s.name for s in deployment.steps.all()] == ["remove from the device"]
    assert "Remove an app" in signed_in.get(f"/activity/{job.pk}/").content.decode()


def test_what_i_did_shows_compose_commands_and_undo_steps_without_secrets(signed_in):
    device = make_device("server-02", ram_total_gib=8, ram_used_gib=2)
    deployment = make_deployment(device)
    DeploymentStep.objects.create(
        deployment=deployment, name="undo: remove the app folder", status="undone"
    )
    DeploymentCommand.objects.create(
        deployment=deployment,
        command="docker compose -p hl-vaultwarden-default up -d",
        exit_code=0,
        output=f"token {MASK}",
        seconds=1.5,
    )
    body = signed_in.get(reverse("deployment_debug", args=[deployment.pk])).content.decode()
    assert "docker compose -p hl-vaultwarden-default up -d" in body
    assert "undo: remove the app folder" in body
    assert "ADMIN_TOKEN" in body and MASK in body


def test_no_secret_value_appears_on_any_page(signed_in):
    device = make_device("server-02", ram_total_gib=8, ram_used_gib=2)
    deployment = make_deployment(device)
    pages = [
        reverse("app_catalog"),
        reverse("app_detail", args=["vaultwarden"]),
        reverse("app_deploy", args=["vaultwarden"]) + "?analyze=1",
        reverse("deployment_list"),
        reverse("deployment_detail", args=[deployment.pk]),
        reverse("deployment_debug", args=[deployment.pk]),
        reverse("deployment_remove", args=[deployment.pk]),
    ]
    for url in pages:
        response = signed_in.get(url)
        assert response.status_code == 200, url
        assert SECRET_VALUE not in response.content.decode(), url


def test_unknown_deployments_and_actions_are_not_found(signed_in):
    assert signed_in.get(reverse("deployment_detail", args=[999])).status_code == 404
    device = make_device("server-02", ram_total_gib=8, ram_used_gib=2)
    deployment = make_deployment(device)
    assert (
        signed_in.post(reverse("deployment_action", args=[deployment.pk, "explode"])).status_code
        == 404
    )
    assert (
        signed_in.get(reverse("deployment_action", args=[deployment.pk, "stop"])).status_code == 405
    )


def test_the_usage_fragment_says_so_when_the_device_does_not_answer(signed_in):
    # 127.0.0.1 port 1: nothing listens there, so the connection is refused at once.
    device = make_device("away", ram_total_gib=4, ram_used_gib=1, address="127.0.0.1", port=1)
    deployment = make_deployment(device)
    html = signed_in.get(f"/deployments/{deployment.pk}/usage/").content.decode()
    assert "away did not answer" in html
    page = signed_in.get(f"/deployments/{deployment.pk}/").content.decode()
    assert f"/deployments/{deployment.pk}/usage/" in page


def test_the_wizard_says_which_shared_database_an_app_will_use(signed_in):
    make_device("server-02", ram_total_gib=8, ram_used_gib=1.9)
    body = signed_in.get(reverse("app_deploy", args=["paperless-ngx"]), HTTP_HX_REQUEST="true")
    assert "No PostgreSQL on server-02 yet: will start a shared one (about" in body.content.decode()


def test_the_wizard_says_when_a_device_holds_the_data_kept_from_an_earlier_removal(signed_in):
    home = make_device("server-02", ram_total_gib=8, ram_used_gib=1.9)
    url = reverse("app_deploy", args=["monica"])
    assert "Picks up the data kept" not in signed_in.get(url, HTTP_HX_REQUEST="true").text
    Deployment.objects.create(
        slug="monica", app_name="Monica", device=home, project="hl-monica-default",
        status="removed", data_kept=True,
    )  # fmt: skip
    body = signed_in.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "Picks up the data kept when Monica was removed from server-02 on" in body


def test_the_compose_preview_shows_the_app_on_the_shared_server_or_with_its_own(signed_in):
    url = reverse("app_compose_preview", args=["nextcloud"])
    shared = signed_in.get(url, {"instance": "family"}).content.decode()
    # what deploying will write: no bundled PostgreSQL, the shared one's host and database
    assert "postgres:16-alpine" not in shared
    assert "POSTGRES_HOST: hl-pool-postgres" in shared
    assert "POSTGRES_DB: nextcloud_family" in shared and "homelab-pool" in shared
    assert f"POSTGRES_PASSWORD: {MASK}" in shared
    own = signed_in.get(url, {"instance": "family", "bundled_databases": "on"}).content.decode()
    assert "postgres:16-alpine" in own and "hl-pool-postgres" not in own
    # a name neither a project nor a database may have: said, not a server error
    odd = signed_in.get(url, {"instance": "a_b"})
    assert odd.status_code == 200
    assert "This configuration cannot be used" in odd.content.decode()


def test_the_wizard_offers_an_own_database_server_and_deploys_with_it(signed_in, monkeypatch):
    make_device("server-02", ram_total_gib=8, ram_used_gib=1.9)
    wizard = signed_in.get(reverse("app_deploy", args=["paperless-ngx"]), HTTP_HX_REQUEST="true")
    html = wizard.content.decode()
    assert "Give this app its own database server" in html
    assert "Instead of the shared PostgreSQL and Redis on the device" in html
    # an app without databases to share does not offer it
    vaultwarden = signed_in.get(reverse("app_deploy", args=["vaultwarden"]), HTTP_HX_REQUEST="true")
    assert "its own database server" not in vaultwarden.content.decode()

    created = {}

    def deployment_create(**kwargs):
        created.update(kwargs)
        return make_deployment(Device.objects.get(), status="deploying", url="")

    monkeypatch.setattr("marketplace.services.deployment_create", deployment_create)
    signed_in.post(
        reverse("app_deploy", args=["paperless-ngx"]),
        {"instance": "own", "env": "", "bundled_databases": "on"},
    )
    assert created["config"].get("bundled_databases") is True


def test_the_remove_page_passes_keep_the_shared_server_on(signed_in, monkeypatch):
    device = make_device("server-02", ram_total_gib=8, ram_used_gib=2)
    deployment = make_deployment(device)
    calls = []
    monkeypatch.setattr(
        "marketplace.services.deployment_remove", lambda **kwargs: calls.append(kwargs)
    )
    url = reverse("deployment_remove", args=[deployment.pk])
    signed_in.post(url, {"data": "delete", "keep_shared_servers": "on"})
    signed_in.post(url, {"data": "keep"})
    assert [(c["delete_data"], c["keep_shared_servers"]) for c in calls] == [
        (True, True),
        (False, False),
    ]
