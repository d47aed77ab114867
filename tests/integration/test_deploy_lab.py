"""Deployments on the lab's real devices: the pipeline end to end, over SSH and Docker.

Each check of "nothing left" asks the device itself: `docker ps -a`, `docker volume ls`,
`docker network ls` filtered by the compose project label, and the app folder.
Host ports are random high ports, so tests of other sessions on the shared lab do not
collide with ours.
"""

from __future__ import annotations

import os
import secrets as pysecrets
import shutil
import threading
import time
import urllib.request

import pytest
import yaml

from homelab.core.masking import MASK
from marketplace import pipeline, preflight, recovery, services
from marketplace.models import Deployment, DeploymentStatus
from marketplace.recipes import BUILTIN_DIR, clear_catalog_cache, load_catalog
from scheduling.services import placement_rank

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]

ROOT = "/opt/homelab/apps"


@pytest.fixture(scope="module")
def standin_images(lab):
    from tests.lab.images import build_and_push_recipe_images

    return build_and_push_recipe_images(lab, load_catalog([]), verbose=False)


@pytest.fixture
def lab_devices(lab_devices, standin_images):
    """The shared lab_devices (tests/integration/conftest.py), with the recipe images ready."""
    return lab_devices


def free_port() -> int:
    return 20000 + pysecrets.randbelow(20000)


def leftovers(lab, device_name: str, project: str) -> dict[str, str]:
    """What the device still holds of a compose project (empty strings when nothing)."""
    label = f"label=com.docker.compose.project={project}"
    found = {
        "containers": lab.exec(device_name, ["docker", "ps", "-aq", "--filter", label]).stdout,
        "volumes": lab.exec(
            device_name, ["docker", "volume", "ls", "-q", "--filter", label]
        ).stdout,
        "networks": lab.exec(
            device_name, ["docker", "network", "ls", "-q", "--filter", label]
        ).stdout,
        "folder": lab.exec(
            device_name, ["sh", "-c", f"test -e {ROOT}/{project} && echo present || true"]
        ).stdout,
    }
    return {key: value.strip() for key, value in found.items() if value.strip()}


def get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status


@pytest.fixture
def custom_recipes(tmp_path, settings):
    """A custom recipe folder with broken copies of vaultwarden."""
    settings.HOMELAB_RECIPE_DIRS = [str(tmp_path)]

    def make(
        slug: str, *, image: str | None = None, silent_port: int | None = None, stall: bool = False
    ) -> str:
        """silent_port: publish container port 81 there (nothing in the stand-in listens
        on it) and make it the health check's port: the app never answers.
        stall: a container health check that stays "starting" for minutes, so
        `compose up --wait` keeps waiting."""
        folder = tmp_path / slug
        shutil.copytree(BUILTIN_DIR / "vaultwarden", folder)
        manifest = yaml.safe_load((folder / "manifest.yaml").read_text())
        compose = (folder / "compose.yaml").read_text()
        manifest["slug"] = slug
        manifest["name"] = f"Test {slug}"
        manifest["health_check"]["timeout_seconds"] = 8
        if silent_port:
            manifest["ports"].append(
                {
                    "name": "admin",
                    "container_port": 81,
                    "default_host_port": silent_port,
                    "meaning": "Nothing answers here.",
                }
            )
            manifest["health_check"]["port"] = 81
            compose = compose.replace('- "8080:80"', f'- "8080:80"\n      - "{silent_port}:81"')
        if image:
            compose = compose.replace("vaultwarden/server:1.32.7", image)
        if stall:
            data = yaml.safe_load(compose)
            data["services"]["vaultwarden"]["healthcheck"] = {
                "test": ["CMD", "false"],
                "interval": "300s",
                "start_period": "300s",
            }
            compose = yaml.safe_dump(data, sort_keys=False)
        (folder / "manifest.yaml").write_text(yaml.safe_dump(manifest))
        (folder / "compose.yaml").write_text(compose)
        clear_catalog_cache()
        assert slug in load_catalog().recipes, load_catalog().invalid
        return slug

    yield make
    clear_catalog_cache()


def test_an_app_lands_on_the_top_device_answers_and_is_removed_without_a_trace(lab, lab_devices):
    port = free_port()
    recipe = load_catalog().get("vaultwarden")
    ranking = placement_rank(requirements=preflight.requirements_of(recipe, ports=[port]))
    assert ranking.recommended_device_id is not None, ranking.message

    instance = f"t{pysecrets.token_hex(3)}"  # other sessions may test on the same lab
    deployment = services.deployment_create(
        slug="vaultwarden", instance=instance, config={"ports": {"web": port}}, sync=True
    )
    print(*(f"{s.name}: {s.status} {s.message}" for s in deployment.steps.all()), sep="\n")
    assert deployment.status == DeploymentStatus.RUNNING, deployment.error
    assert deployment.device_id == ranking.recommended_device_id
    device = deployment.device
    assert deployment.url == f"http://{device.address}:{port}"
    assert get(deployment.url + "/alive") == 200
    assert [s.name for s in deployment.steps.all()] == [
        "pre-flight checks",
        "render compose file",
        "upload compose file",
        "start containers",
        "configure",
        "health check",
    ]

    # no duplicate: the same app and instance again gives the same deployment
    again = services.deployment_create(
        slug="vaultwarden", instance=instance, config={"ports": {"web": port}}
    )
    assert again.pk == deployment.pk
    assert Deployment.objects.count() == 1

    # "What I did": the compose file and every command, the secret masked everywhere
    secret = deployment.secret_values()["admin_token"]
    assert secret not in deployment.compose_masked and MASK in deployment.compose_masked
    commands = list(deployment.commands.all())
    assert any("up -d" in c.command for c in commands)
    assert all(secret not in c.command + c.output for c in commands)
    real = lab.exec(device.name, ["cat", f"{ROOT}/{deployment.project}/compose.yaml"]).stdout
    assert secret in real  # the real one only on the device

    # day 2: stop, start, logs
    services.deployment_stop(deployment=deployment, sync=True)
    state = lab.exec(
        device.name,
        [
            "docker",
            "ps",
            "-a",
            "--filter",
            f"label=com.docker.compose.project={deployment.project}",
            "--format",
            "{{.State}}",
        ],
    ).stdout.split()
    assert state == ["exited"]
    services.deployment_start(deployment=deployment, sync=True)
    services.deployment_restart(deployment=deployment, sync=True)
    assert Deployment.objects.get(pk=deployment.pk).status == DeploymentStatus.RUNNING
    assert isinstance(services.deployment_logs(deployment=deployment, tail=20), str)

    # what it uses, read from the device's Docker
    from marketplace.selectors import deployment_usage

    usage = deployment_usage(deployment=deployment)
    assert [row["state"] for row in usage["containers"]] == ["running"]
    assert 1_000_000 < usage["memory_bytes"] < device.ram_total_bytes
    assert usage["cpu_percent"] >= 0

    services.deployment_remove(deployment=deployment, delete_data=True, sync=True)
    assert Deployment.objects.get(pk=deployment.pk).status == DeploymentStatus.REMOVED
    assert leftovers(lab, device.name, deployment.project) == {}


@pytest.mark.parametrize("slug", ["uptime-kuma", "navidrome", "paperless-ngx"])
def test_each_app_lands_on_the_device_placement_ranks_first_and_answers(lab, lab_devices, slug):
    recipe = load_catalog().get(slug)
    ports = {p.name: free_port() for p in recipe.manifest.ports}
    ranking = placement_rank(requirements=preflight.requirements_of(recipe, ports=ports.values()))
    assert ranking.recommended_device_id is not None, ranking.message

    deployment = services.deployment_create(
        slug=slug, instance=f"t{pysecrets.token_hex(3)}", config={"ports": ports}, sync=True
    )
    try:
        assert deployment.status == DeploymentStatus.RUNNING, deployment.error
        assert deployment.device_id == ranking.recommended_device_id, ranking.message
        check = recipe.manifest.health_check
        assert get(deployment.url + (check.path or "/")) == 200
    finally:
        services.deployment_remove(deployment=deployment, delete_data=True, sync=True)
    assert leftovers(lab, deployment.device.name, deployment.project) == {}


def test_remove_without_data_keeps_the_volume(lab, lab_devices):
    port = free_port()
    deployment = services.deployment_create(
        slug="vaultwarden",
        device_id=lab_devices["lab-server-1"].pk,
        instance=f"keep{pysecrets.token_hex(2)}",
        config={"ports": {"web": port}},
        sync=True,
    )
    assert deployment.status == DeploymentStatus.RUNNING, deployment.error
    services.deployment_remove(deployment=deployment, delete_data=False, sync=True)
    left = leftovers(lab, "lab-server-1", deployment.project)
    assert set(left) == {"volumes"}, left
    lab.exec("lab-server-1", ["docker", "volume", "rm", *left["volumes"].split()], check=True)


def test_a_failing_health_check_rolls_back_and_leaves_nothing(lab, lab_devices, custom_recipes):
    slug = custom_recipes("sick-vault", silent_port=free_port())
    deployment = services.deployment_create(
        slug=slug,
        device_id=lab_devices["lab-server-2"].pk,
        instance=f"t{pysecrets.token_hex(3)}",
        config={"ports": {"web": free_port()}},
        sync=True,
    )
    assert deployment.status == DeploymentStatus.ROLLED_BACK, deployment.error
    assert deployment.error.startswith("health check: The app did not become healthy")
    undone = [s.name for s in deployment.steps.filter(name__startswith="undo: ")]
    assert undone == [
        "undo: remove containers, networks and volumes",
        "undo: remove the app folder",
    ]
    assert all(s.status == "undone" for s in deployment.steps.filter(name__startswith="undo: "))
    assert leftovers(lab, "lab-server-2", deployment.project) == {}


def test_a_missing_image_rolls_back_and_leaves_nothing(lab, lab_devices, custom_recipes):
    slug = custom_recipes("ghost-vault", image="localhost:1/homelab-test/ghost:1.0")
    deployment = services.deployment_create(
        slug=slug,
        device_id=lab_devices["lab-server-1"].pk,
        instance=f"t{pysecrets.token_hex(3)}",
        config={"ports": {"web": free_port()}},
        sync=True,
    )
    assert deployment.status == DeploymentStatus.ROLLED_BACK, deployment.error
    assert "start containers" in deployment.error
    assert leftovers(lab, "lab-server-1", deployment.project) == {}


def test_a_port_in_use_on_the_device_is_named_with_what_holds_it(lab, lab_devices):
    port = free_port()
    holder = f"port-holder-{os.getpid()}"
    lab.exec("lab-pi", ["docker", "rm", "-f", holder])
    lab.exec(
        "lab-pi",
        [
            "docker",
            "run",
            "-d",
            "--name",
            holder,
            "-p",
            f"{port}:80",
            "busybox:1.36",
            "httpd",
            "-f",
            "-p",
            "80",
        ],
        check=True,
    )
    try:
        with pytest.raises(services.DeploymentError) as caught:
            services.deployment_create(
                slug="vaultwarden",
                device_id=lab_devices["lab-pi"].pk,
                config={"ports": {"web": port}},
            )
        assert f"port {port}/tcp" in caught.value.message
        assert f"container {holder}" in caught.value.message
        assert caught.value.code == 409
        assert Deployment.objects.count() == 0
    finally:
        lab.exec("lab-pi", ["docker", "rm", "-f", holder])


def test_an_interrupted_deployment_is_cleaned_up_at_start_up(lab, lab_devices):
    """The control plane stopped after `up`: recovery removes it all and marks it failed."""
    device = lab_devices["lab-server-1"]
    deployment = services.deployment_create(
        slug="vaultwarden",
        device_id=device.pk,
        instance=f"cut{pysecrets.token_hex(2)}",
        config={"ports": {"web": free_port()}},
        sync=False,  # queued only: no worker runs in this test
    )
    run = pipeline.DeploymentPipeline(deployment, load_catalog().get("vaultwarden"))
    context = pipeline.UndoList()
    for step in run.steps()[:4]:  # pre-flight .. start containers, then "the power went"
        step.run(context)
    Deployment.objects.filter(pk=deployment.pk).update(
        status=DeploymentStatus.DEPLOYING, started_at=deployment.created
    )
    assert leftovers(lab, device.name, deployment.project)

    assert recovery.deployments_recover_interrupted() == 1
    deployment.refresh_from_db()
    assert deployment.status == DeploymentStatus.FAILED
    assert "control plane stopped" in deployment.error
    assert leftovers(lab, device.name, deployment.project) == {}
    # the queued task finds nothing to do any more
    assert services.deployment_run(deployment_id=deployment.pk) is None


def _wait_for(condition, *, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"{what} did not happen within {seconds:g} s")


def test_a_device_stopped_mid_deployment_fails_and_is_cleaned_up_once_back(
    lab, lab_devices, custom_recipes, monkeypatch
):
    """lab-pi is stopped while `compose up --wait` waits: the deployment ends failed or
    rolled back within a bounded time, and the device's next poll after it is back runs the
    undo. lab-pi: the other deploy tests rely on the servers (the devices test stops the
    Pi too); it is started again even when the test fails."""
    from django.db import connection

    from devices.tasks import poll_device

    slug = custom_recipes("stall-vault", stall=True)
    device = lab_devices["lab-pi"]
    monkeypatch.setattr(services, "enqueue_run", lambda deployment_id: None)  # we run it
    deployment = services.deployment_create(
        slug=slug,
        device_id=device.pk,
        instance=f"t{pysecrets.token_hex(3)}",
        config={"ports": {"web": free_port()}},
    )
    project = deployment.project
    done: dict = {}

    def work():
        try:
            done["deployment"] = services.deployment_run(deployment_id=deployment.pk)
        except BaseException as exc:  # reported by the test below
            done["error"] = exc
        finally:
            connection.close()

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    try:
        _wait_for(
            lambda: leftovers(lab, "lab-pi", project).get("containers"),
            seconds=120,
            what="the app's container on lab-pi",
        )
        assert deployment.steps.filter(name="start containers", status="running").exists()
        stopped = time.monotonic()
        lab.stop_device("lab-pi")
        worker.join(timeout=150)
        ended_seconds = time.monotonic() - stopped
        assert not worker.is_alive(), "the deployment is still running 150 s after the stop"
        assert "error" not in done, done.get("error")
        deployment.refresh_from_db()
        print(f"ended {deployment.status} {ended_seconds:.1f} s after the stop: {deployment.error}")
        print(*(f"{s.name}: {s.status} {s.message}" for s in deployment.steps.all()), sep="\n")
        assert deployment.status in (DeploymentStatus.FAILED, DeploymentStatus.ROLLED_BACK)
        assert deployment.error.startswith("start containers: ")
        assert ended_seconds < 90
        assert deployment.cleanup_pending
        assert "removed automatically once the device answers again" in deployment.error
    finally:
        if not lab.is_device_running("lab-pi"):
            lab.start_device("lab-pi")
        worker.join(timeout=150)

    # back: the next poll runs the undo of that attempt
    assert poll_device(device.pk) == "online"
    deployment.refresh_from_db()
    print(*(f"{s.name}: {s.status} {s.message}" for s in deployment.steps.all()), sep="\n")
    assert not deployment.cleanup_pending
    assert deployment.status == DeploymentStatus.ROLLED_BACK
    assert "what this attempt created was removed" in deployment.error
    assert deployment.steps.filter(name="undo after the device came back").last().status == (
        "undone"
    )
    assert leftovers(lab, "lab-pi", project) == {}
    # and the Pi is usable again
    assert services.deployment_run(deployment_id=deployment.pk) is None
    assert lab.exec("lab-pi", ["docker", "info", "--format", "{{.ServerVersion}}"]).returncode == 0


def test_instance_names_with_shell_metacharacters_are_refused():
    for bad in ("x;rm -rf /", "$(id)", "a b", "`id`", "UPPER", "-x", "a/../b"):
        with pytest.raises(services.DeploymentError) as caught:
            services.deployment_create(slug="vaultwarden", instance=bad)
        assert caught.value.field == "instance"
    with pytest.raises(services.DeploymentError) as caught:
        services.deployment_create(slug="vault;id")
    assert caught.value.field == "slug" and caught.value.code == 404
    assert Deployment.objects.count() == 0
