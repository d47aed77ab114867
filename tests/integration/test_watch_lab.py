"""The watch on a real lab device (issue 20): kill an app's container with `docker kill`
on the device; the next poll says "stopped unexpectedly" (API, page, dashboard count);
with automatic restart on, it runs again and the history says so."""

from __future__ import annotations

import secrets as pysecrets

import pytest

from devices.tasks import poll_device
from marketplace import services
from marketplace.models import Deployment, DeploymentStatus
from marketplace.recipes import load_catalog

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def standin_images(lab):
    from tests.lab.images import build_and_push_recipe_images

    return build_and_push_recipe_images(lab, load_catalog([]), verbose=False)


@pytest.fixture
def signed_in(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("owner", password="pw-Owner-1"))
    return client


def container_states(lab, deployment: Deployment) -> list[str]:
    label = f"label=com.docker.compose.project={deployment.project}"
    out = lab.exec(
        deployment.device.name, ["docker", "ps", "-a", "--filter", label, "--format", "{{.State}}"]
    ).stdout
    return out.split()


def test_a_killed_app_is_stopped_unexpectedly_and_restarted_automatically(
    lab, lab_devices, standin_images, signed_in, monkeypatch
):
    port = 20000 + pysecrets.randbelow(20000)
    deployment = services.deployment_create(
        slug="vaultwarden",
        instance=f"w{pysecrets.token_hex(3)}",
        config={"ports": {"web": port}},
        sync=True,
    )
    assert deployment.status == DeploymentStatus.RUNNING, deployment.error
    Deployment.objects.filter(pk=deployment.pk).update(auto_restart=False)
    device = deployment.device
    try:
        assert poll_device(device.pk) == "online"
        assert Deployment.objects.get(pk=deployment.pk).status == DeploymentStatus.RUNNING

        container = lab.exec(
            device.name,
            [
                "docker",
                "ps",
                "-q",
                "--filter",
                f"label=com.docker.compose.project={deployment.project}",
            ],
        ).stdout.split()
        assert len(container) == 1
        lab.exec(device.name, ["docker", "kill", container[0]], check=True)
        assert container_states(lab, deployment) == ["exited"]

        assert poll_device(device.pk) == "online"
        body = signed_in.get(f"/api/v1/deployments/{deployment.pk}").json()
        assert body["status"] == "stopped_unexpectedly", body
        assert "exited with code 137" in body["status_reason"]
        page = signed_in.get(f"/deployments/{deployment.pk}/").content.decode()
        assert "Stopped unexpectedly" in page and "code 137" in page
        dashboard = signed_in.get("/").content.decode()
        assert "<strong>0</strong> apps running" in dashboard

        # automatic restart on: the next poll starts it (the task runs in this process)
        from django_q.conf import Conf

        monkeypatch.setattr(Conf, "SYNC", True)
        Deployment.objects.filter(pk=deployment.pk).update(auto_restart=True)
        assert poll_device(device.pk) == "online"
        assert Deployment.objects.get(pk=deployment.pk).status == DeploymentStatus.RUNNING
        assert container_states(lab, deployment) == ["running"]
        assert poll_device(device.pk) == "online"
        assert Deployment.objects.get(pk=deployment.pk).status == DeploymentStatus.RUNNING

        events = signed_in.get(f"/api/v1/deployments/{deployment.pk}/events").json()
        assert [(e["from_status"], e["to_status"]) for e in reversed(events)] == [
            ("running", "stopped_unexpectedly"),
            ("stopped_unexpectedly", "running"),
        ]
        assert "restarted automatically" in events[0]["message"]
    finally:
        services.deployment_remove(
            deployment=Deployment.objects.get(pk=deployment.pk), delete_data=True
        )
