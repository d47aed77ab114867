"""A device that goes away mid-deployment, the undo kept for later, the poll's hook, and
the one-round-trip pre-flight. The device is never reached: the shell is faked."""

from __future__ import annotations

import shlex
import threading
import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from devices import compose, ssh
from marketplace import pipeline, preflight, recovery, services, shell
from marketplace.models import Deployment, DeploymentStatus
from scheduling.models import Reservation
from scheduling.services import reservation_create, reservations_release
from tests.unit.scheduling.factories import make_device

SS = 'tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=1,fd=3))'
DOCKER = "web-1\thl-vaultwarden-default\t0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"


# ------------------------------------------------------------------ pre-flight, parsing
def test_the_device_state_comes_from_one_output_split_at_its_markers():
    state = preflight.parse_state(
        f"{SS}\n@@ss 0\n{DOCKER}\nother-1\t\t0.0.0.0:9000-9001->9000-9001/udp\n@@docker 0\n"
        "@@folder yes\n"
    )
    assert state.ss_exit == 0 and state.folder_exists
    assert [(item.port, item.process) for item in state.listeners] == [(22, "sshd")]
    assert state.published[(8080, "tcp")] == ("web-1", "hl-vaultwarden-default")


def test_a_missing_ss_is_reported_with_the_package_to_install(monkeypatch):
    monkeypatch.setattr(preflight, "claimed_ports", lambda deployment, device: {})
    state = preflight.parse_state("@@ss 127\n@@docker 0\n")
    assert state.ss_exit == 127 and not state.folder_exists
    deployment = SimpleNamespace(config={}, pk=None, project="hl-x-default")
    recipe = SimpleNamespace(manifest=SimpleNamespace(ports=[]))
    device = SimpleNamespace(name="pi", pk=None)
    with pytest.raises(compose.StepFailed) as caught:
        preflight.port_problems(deployment, recipe, device, None, state=state)
    assert "iproute2" in str(caught.value)


@pytest.mark.parametrize(
    "folder", ["/opt/apps/x; rm -rf /", "/opt/$(id)", "/opt/`id`", "/opt/a b'\"", "-rf"]
)
def test_the_folder_reaches_the_device_only_as_one_quoted_argument(monkeypatch, folder):
    sent = []
    monkeypatch.setattr(
        ssh, "run", lambda device, args, timeout=None, stdin=None: sent.append(args) or (0, "", "")
    )
    device_shell = compose.DeviceShell(SimpleNamespace(pk=None, name="pi"))
    preflight.device_state(device_shell, folder)
    [args] = sent
    assert args[:2] == ["sh", "-c"] and args[2] == preflight.STATE_SCRIPT and args[4] == folder
    assert folder not in preflight.STATE_SCRIPT
    # what goes over the wire: each argument quoted whole
    assert ssh.quote_command(args).endswith(" sh " + shlex.quote(folder))


# ----------------------------------------------------------------- a device going away
def test_a_long_command_on_a_device_that_stops_answering_ends_as_unreachable(monkeypatch):
    """The watchdog probes the SSH port; two misses close the connection, which ends the
    command; the shell reports the device unreachable, retried, then marks it lost."""
    monkeypatch.setattr(compose, "WATCH_INTERVAL_SECONDS", 0.01)
    monkeypatch.setattr(compose, "ssh_port_answers", lambda address, port: False)
    closed = threading.Event()
    monkeypatch.setattr(ssh.connections, "close", lambda device_id: closed.set())
    monkeypatch.setattr(ssh.connections, "is_connected", lambda device_id: False)

    def hanging(device, args, timeout=None, stdin=None):
        assert closed.wait(5), "the watchdog never closed the connection"
        closed.clear()
        return -1, "", ""  # what exec_on returns when the channel closes under it

    monkeypatch.setattr(ssh, "run", hanging)
    device = SimpleNamespace(pk=7, name="pi", address="192.0.2.7", port=22)
    slept: list[float] = []
    device_shell = compose.DeviceShell(device, sleep=slept.append)
    started = time.monotonic()
    with pytest.raises(ssh.Unreachable) as caught:
        device_shell.run(["docker", "compose", "up", "--wait"], timeout=600)
    assert "stopped answering" in str(caught.value)
    assert slept == [1.0, 2.0, 4.0] and device_shell.lost
    assert time.monotonic() - started < 5
    # lost: the next command (an undo) is tried once, not four times
    slept.clear()
    with pytest.raises(ssh.Unreachable):
        device_shell.run(["docker", "compose", "down"], timeout=300)
    assert slept == []


def test_a_short_command_is_not_watched(monkeypatch):
    monkeypatch.setattr(compose, "ssh_port_answers", lambda address, port: pytest.fail("probed"))
    monkeypatch.setattr(ssh, "run", lambda device, args, timeout=None, stdin=None: (0, "ok", ""))
    device = SimpleNamespace(pk=7, name="pi", address="192.0.2.7", port=22)
    device_shell = compose.DeviceShell(device)
    assert device_shell.run(["true"], timeout=30) == (0, "ok", "")


def test_the_health_check_gives_up_early_when_the_device_itself_is_gone(monkeypatch):
    monkeypatch.setattr(pipeline, "DEVICE_CHECK_EVERY_SECONDS", 0.0)
    checks = []
    with pytest.raises(pipeline.DeviceGone) as caught:
        pipeline.wait_healthy(
            address="192.0.2.1",  # TEST-NET: nothing answers
            port=9,
            kind="tcp",
            timeout_seconds=600,
            sleep=lambda s: None,
            device_answers=lambda: checks.append(1) or False,
            device_name="pi",
        )
    assert len(checks) == 2
    assert str(caught.value).startswith("pi stopped answering: neither the app")


@pytest.mark.django_db
def test_failed_undos_keep_the_cleanup_for_later(monkeypatch):
    from homelab.core.jobs import JobRunner
    from homelab.core.models import Job

    def create(ctx):
        ctx.on_undo("remove it", lambda: (_ for _ in ()).throw(ssh.Unreachable("gone")))
        raise compose.StepFailed("the device went away")

    run = pipeline.DeploymentPipeline.__new__(pipeline.DeploymentPipeline)
    run.deployment = SimpleNamespace()
    run.steps = lambda: [pipeline.Step("start", "deploying", create)]
    run.set_status = lambda status: None
    outcome = run.run(JobRunner(Job.objects.create(kind="app.deploy", status="running")))
    assert outcome.status == "failed" and outcome.cleanup_pending


# ------------------------------------------------------------- services: pending undo
@pytest.fixture
def device(db):
    return make_device("pi", ram_free_gb=1, ram_total_gb=2)


@pytest.fixture
def queued(monkeypatch):
    monkeypatch.setattr(shell.DeploymentShell, "run", lambda self, args, **k: (0, "", ""))
    monkeypatch.setattr(services, "enqueue_run", lambda deployment_id: None)


def _failed_with_pending(monkeypatch, device) -> Deployment:
    deployment = services.deployment_create(slug="vaultwarden", device_id=device.pk)

    class LostPipeline:
        folder = "/opt/homelab/apps/hl-vaultwarden-default"

        def __init__(self, d, recipe):
            pass

        def run(self, job=None):
            return pipeline.Outcome(
                False, "failed", "The device did not answer over SSH", "start containers",
                ["remove containers: gone"], cleanup_pending=True,
            )  # fmt: skip

    monkeypatch.setattr(pipeline, "DeploymentPipeline", LostPipeline)
    services.deployment_run(deployment_id=deployment.pk)
    deployment.refresh_from_db()
    return deployment


def test_a_deployment_whose_device_went_away_ends_failed_with_the_undo_pending(
    device, queued, monkeypatch
):
    deployment = _failed_with_pending(monkeypatch, device)
    assert deployment.status == DeploymentStatus.FAILED
    assert deployment.cleanup_pending
    assert deployment.cleanup_folder == "/opt/homelab/apps/hl-vaultwarden-default"
    assert deployment.error.startswith("start containers: The device did not answer")
    assert "removed automatically once the device answers again" in deployment.error
    # its reservation is released at once
    assert Reservation.objects.get(pk=deployment.reservation_id).released_at is not None


def test_the_poll_after_the_device_is_back_runs_the_undo(device, queued, monkeypatch):
    deployment = _failed_with_pending(monkeypatch, device)
    undone = []

    def undo(p, d, *, keep_data):
        undone.append((d.pk, p.folder, keep_data))
        return "containers, networks and volumes removed"

    monkeypatch.setattr(recovery, "_undo_on_device", undo)
    monkeypatch.setattr(recovery.pipeline, "DeploymentPipeline", _FolderOnly)
    type(device).objects.filter(pk=device.pk).update(last_seen=timezone.now())
    recovery.deployments_after_poll(device_id=device.pk)
    deployment.refresh_from_db()
    assert undone == [(deployment.pk, "/opt/homelab/apps/hl-vaultwarden-default", False)]
    assert not deployment.cleanup_pending
    assert deployment.status == DeploymentStatus.ROLLED_BACK
    assert "what this attempt created was removed" in deployment.error
    assert deployment.steps.last().status == "undone"
    # nothing pending any more: the next poll does nothing
    recovery.deployments_after_poll(device_id=device.pk)
    assert len(undone) == 1


def test_an_undo_that_keeps_failing_asks_for_remove_after_some_tries(device, queued, monkeypatch):
    deployment = _failed_with_pending(monkeypatch, device)

    def undo(p, d, *, keep_data):
        raise compose.StepFailed("docker compose down failed (exit 1): no daemon")

    monkeypatch.setattr(recovery, "_undo_on_device", undo)
    monkeypatch.setattr(recovery.pipeline, "DeploymentPipeline", _FolderOnly)
    for _ in range(recovery.CLEANUP_MAX_TRIES):
        assert recovery.deployments_cleanup_pending(device=device) == 0
    deployment.refresh_from_db()
    assert not deployment.cleanup_pending
    assert deployment.status == DeploymentStatus.FAILED
    assert "press Remove to try again" in deployment.error


def test_a_newer_deployment_under_the_same_project_is_never_touched(device, queued, monkeypatch):
    deployment = _failed_with_pending(monkeypatch, device)
    monkeypatch.setattr(
        recovery, "_undo_on_device", lambda *a, **k: pytest.fail("the newer one was touched")
    )
    Deployment.objects.create(
        slug="vaultwarden", app_name="Vaultwarden", device=device, instance="default",
        project=deployment.project, status=DeploymentStatus.RUNNING,
    )  # fmt: skip
    assert recovery.deployments_cleanup_pending(device=device) == 1
    deployment.refresh_from_db()
    assert not deployment.cleanup_pending


class _FolderOnly:
    def __init__(self, deployment, recipe):
        self.folder = "/somewhere/else"
        self.compose_file = ""


# ------------------------------------------------------------------------ reservations
def test_a_running_apps_reservation_is_released_by_the_first_poll_after_it_ran(
    device, queued, monkeypatch
):
    deployment = services.deployment_create(slug="vaultwarden", device_id=device.pk)

    class Works:
        def __init__(self, d, recipe):
            pass

        def run(self, job=None):
            return pipeline.Outcome(True, "running")

    monkeypatch.setattr(pipeline, "DeploymentPipeline", Works)
    services.deployment_run(deployment_id=deployment.pk)
    reservation = Reservation.objects.get(pk=deployment.reservation_id)
    assert reservation.released_at is None  # running, not yet measured

    # a poll that started before the app ran has not measured it
    earlier = Deployment.objects.get(pk=deployment.pk).finished_at - timedelta(seconds=1)
    type(device).objects.filter(pk=device.pk).update(last_seen=earlier)
    recovery.deployments_after_poll(device_id=device.pk)
    reservation.refresh_from_db()
    assert reservation.released_at is None

    type(device).objects.filter(pk=device.pk).update(last_seen=timezone.now())
    recovery.deployments_after_poll(device_id=device.pk)
    reservation.refresh_from_db()
    assert reservation.released_at is not None


def test_the_poll_task_calls_the_deployments_hook_after_a_successful_poll(device, monkeypatch):
    from devices import tasks

    monkeypatch.setattr(tasks.services, "device_poll", lambda device_id: device)
    from pooling import tasks as pooling_tasks

    monkeypatch.setattr(pooling_tasks, "check_shared_instances", lambda device_id, device: [])
    seen = []
    monkeypatch.setattr(
        recovery,
        "deployments_after_poll",
        lambda device_id, device: seen.append((device_id, device.pk)),
    )
    assert tasks.poll_device(device.pk) == "online"
    assert seen == [(device.pk, device.pk)]


def test_releasing_several_reservations_counts_only_the_active_ones(device):
    first = reservation_create(device_id=device.pk, label="a", ram_bytes=1)
    second = reservation_create(device_id=device.pk, label="b", ram_bytes=1)
    assert reservations_release(reservation_ids=[first.pk]) == 1
    assert reservations_release(reservation_ids=[first.pk, second.pk]) == 1
    assert reservations_release(reservation_ids=[]) == 0
