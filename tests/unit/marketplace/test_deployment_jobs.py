"""Deploy, start, stop, restart and remove as jobs, through the API with the Django client:
202 with the job's id at once, then the job (run here with job_run, as the worker would)
with its kind, target and steps. The device is never reached: `devices.ssh.run` answers
from a script, so every command the jobs send is seen."""

from __future__ import annotations

import json
import os

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from devices import ssh
from devices.models import DeviceLease
from homelab.core.models import Job, JobStep
from homelab.core.services import job_run, jobs_recover_interrupted
from marketplace import pipeline, services
from marketplace.models import Deployment, DeploymentStatus
from tests.unit.scheduling.factories import make_device

pytestmark = pytest.mark.django_db

SECRET = "S3cret-admin-token-value-0123456789"


@pytest.fixture
def client(client):
    user = get_user_model().objects.create_superuser("owner", password="a-long-password-1")
    client.force_login(user)
    return client


class Device:
    """What the device answers: exit codes by a word of the command; every command kept."""

    def __init__(self):
        self.sent: list[str] = []
        self.fail: dict[str, tuple[int, str]] = {}

    def run(self, device, args, *, timeout=None, stdin=None):
        command = " ".join(args)
        self.sent.append(command)
        for word, (code, err) in self.fail.items():
            if word in command:
                return code, "", err
        return 0, "", ""


@pytest.fixture
def device(monkeypatch):
    fake = Device()
    monkeypatch.setattr(ssh, "run", fake.run)
    return fake


def deployment(status: str = DeploymentStatus.RUNNING, **fields) -> Deployment:
    values = {
        "slug": "vaultwarden",
        "app_name": "Vaultwarden",
        "category": "security",
        "device": make_device("pi", ram_free_gb=4),
        "project": "hl-vaultwarden-default",
        "status": status,
        "secrets": json.dumps({"admin_token": SECRET}),
    }
    values.update(fields)
    return Deployment.objects.create(**values)


def steps_of(job: Job) -> list[tuple[str, str]]:
    return [(s.name, s.status) for s in JobStep.objects.filter(job=job)]


# ------------------------------------------------------------------------ start/stop
@pytest.mark.parametrize(
    ("action", "before", "after", "command"),
    [
        ("stop", "running", "stopped", "stop"),
        ("start", "stopped", "running", "start"),
        ("restart", "running", "running", "restart"),
    ],
)
def test_a_day2_action_answers_202_with_its_job_and_the_job_does_it(
    client, device, action, before, after, command
):
    d = deployment(before)
    response = client.post(f"/api/v1/deployments/{d.pk}/{action}")
    assert response.status_code == 202, response.content
    body = response.json()
    job = Job.objects.get(pk=body["job_id"])
    assert body["deployment_id"] == d.pk and body["id"] == d.pk  # the old fields too
    assert body["job_kind"] == f"app.{action}" and body["job_status"] == "queued"
    assert body["status"] == before  # nothing happened yet: the worker does it
    assert (job.kind, job.target_type, job.target_id) == (f"app.{action}", "deployment", str(d.pk))
    assert job.user.username == "owner" and job.target_label == "Vaultwarden on pi"
    assert device.sent == []  # the request sent nothing to the device

    # pressed again while it waits: refused, no second job
    again = client.post(f"/api/v1/deployments/{d.pk}/{action}")
    assert again.status_code == 409 and "busy" in again.json()["detail"]
    assert Job.objects.filter(kind=f"app.{action}").count() == 1

    job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert steps_of(job) == [(f"{command} containers", "ok")]
    assert any(c.endswith(f"-p hl-vaultwarden-default -f {pipeline.deploy_root()}/hl-vaultwarden-default/compose.yaml {command}") for c in device.sent), device.sent  # fmt: skip
    d.refresh_from_db()
    assert d.status == after
    assert [s.name for s in d.steps.all()] == [f"{command} containers"]  # the app's page
    assert not DeviceLease.objects.exists()
    # the jobs API lists it with its steps
    listed = client.get(f"/api/v1/jobs/{job.pk}").json()
    assert listed["kind"] == f"app.{action}" and listed["status"] == "succeeded"
    assert [s["name"] for s in listed["steps"]] == [f"{command} containers"]


def test_a_day2_job_that_fails_says_why_and_leaves_the_status(client, device):
    d = deployment("running")
    device.fail["stop"] = (1, "no such service")
    job_id = client.post(f"/api/v1/deployments/{d.pk}/stop").json()["job_id"]
    job = job_run(job_id=job_id)
    assert job.status == "failed" and "docker compose stop failed (exit 1)" in job.error
    assert Deployment.objects.get(pk=d.pk).status == "running"
    assert not DeviceLease.objects.exists()


def test_a_day2_action_on_a_deployment_in_the_wrong_state_is_409_without_a_job(client, device):
    d = deployment("failed")
    response = client.post(f"/api/v1/deployments/{d.pk}/start")
    assert response.status_code == 409 and "cannot start" in response.json()["detail"]
    assert not Job.objects.exists()


# --------------------------------------------------------------------------- removal
def test_remove_with_kept_data_answers_at_once_and_the_job_removes(client, device):
    d = deployment("running")
    response = client.delete(f"/api/v1/deployments/{d.pk}")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["deployment_id"] == d.pk and body["job_kind"] == "app.remove"
    job = Job.objects.get(pk=body["job_id"])
    assert job.params == {
        "deployment_id": d.pk, "delete_data": False, "keep_shared_servers": False,
        "previous_status": "running",
    }  # fmt: skip
    assert device.sent == [] and Deployment.objects.get(pk=d.pk).status == "running"
    assert client.delete(f"/api/v1/deployments/{d.pk}").status_code == 409  # pressed twice

    job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert steps_of(job) == [("stop containers", "ok"), ("remove app folder", "ok")]
    assert job.percent == 100.0
    assert any(c.endswith("down --remove-orphans") for c in device.sent), device.sent
    d.refresh_from_db()
    assert d.status == "removed" and d.data_kept
    # removed already: nothing to do, 200 without a job
    done = client.delete(f"/api/v1/deployments/{d.pk}")
    assert done.status_code == 200 and done.json()["job_id"] is None


def test_remove_with_its_data_deletes_the_volumes(client, device):
    d = deployment("stopped")
    job_id = client.delete(f"/api/v1/deployments/{d.pk}?delete_data=true").json()["job_id"]
    job = job_run(job_id=job_id)
    assert steps_of(job) == [("stop containers and delete their data", "ok"), ("remove app folder", "ok")]  # fmt: skip
    assert any(c.endswith("down --remove-orphans -v") for c in device.sent), device.sent
    assert Deployment.objects.get(pk=d.pk).status == "removed"


def test_a_removal_that_fails_leaves_the_deployment_failed_with_the_reason(client, device):
    d = deployment("running")
    device.fail["down"] = (1, f"daemon not running (token {SECRET})")
    job = job_run(job_id=client.delete(f"/api/v1/deployments/{d.pk}").json()["job_id"])
    assert job.status == "failed"
    assert job.error.startswith("Removal failed: docker compose down failed (exit 1)")
    assert "Press Remove again" in job.error and SECRET not in job.error
    d.refresh_from_db()
    assert d.status == "failed" and "Removal failed" in d.error and SECRET not in d.error
    assert steps_of(job) == [("stop containers", "failed")]
    assert not DeviceLease.objects.exists()


def test_a_removal_whose_worker_died_is_interrupted_and_cleaned_up():
    """What the lab test does with a real worker, from the rows a killed worker leaves."""
    d = deployment("removing")
    job = Job.objects.create(
        kind="app.remove", target_type="deployment", target_id=str(d.pk),
        status="running", started_at=timezone.now(), heartbeat_at=timezone.now(),
        worker_host=os.uname().nodename, worker_pid=2**22 + 12345,  # no such process
        params={"deployment_id": d.pk, "delete_data": False, "keep_shared_servers": False},
    )  # fmt: skip
    JobStep.objects.create(job=job, order=1, name="stop containers", status="running")
    DeviceLease.objects.create(
        device=d.device, holder=services.job_lease_holder(job.pk),
        expires_at=timezone.now() + timezone.timedelta(minutes=30),
    )  # fmt: skip

    assert [j.pk for j in jobs_recover_interrupted()] == [job.pk]
    job.refresh_from_db()
    assert job.status == "interrupted"
    assert steps_of(job) == [
        ("stop containers", "failed"),
        ("clean up after the interruption", "undone"),
    ]
    cleanup = JobStep.objects.get(job=job, name="clean up after the interruption").message
    assert "lease was freed" in cleanup and "press Remove again" in cleanup
    d.refresh_from_db()
    assert d.status == "failed"
    assert d.error == "The control plane stopped during the removal; press Remove again."
    assert not DeviceLease.objects.exists()  # Remove can be pressed again at once
    assert jobs_recover_interrupted() == []  # once only


# ---------------------------------------------------------------------------- deploy
def test_a_deploy_runs_as_a_job_whose_steps_are_the_deployments_steps(client, device, monkeypatch):
    make_device("big", ram_free_gb=8)
    undone = []

    def fine(ctx):
        ctx.on_undo("remove the thing", lambda: undone.append(1) or "thing removed")
        return "made the thing"

    def broken(ctx):
        raise pipeline.StepFailed("the app did not answer")

    monkeypatch.setattr(
        pipeline.DeploymentPipeline,
        "steps",
        lambda self: [
            pipeline.Step("pre-flight checks", "validating", fine),
            pipeline.Step("health check", "health_check", broken),
        ],
    )
    response = client.post(
        "/api/v1/applications/vaultwarden/deploy", {}, content_type="application/json"
    )
    assert response.status_code == 202, response.content
    body = response.json()
    job = Job.objects.get(pk=body["job_id"])
    assert (job.kind, job.target_type, job.target_id, job.status) == (
        "app.deploy", "deployment", str(body["deployment_id"]), "queued",
    )  # fmt: skip

    job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "failed" and job.error == "health check: the app did not answer"
    assert steps_of(job) == [
        ("pre-flight checks", "ok"),
        ("health check", "failed"),
        ("undo: remove the thing", "undone"),
    ]
    assert undone == [1]
    d = Deployment.objects.get(pk=body["deployment_id"])
    assert d.status == "rolled_back" and d.error == "health check: the app did not answer"
    assert [(s.name, s.status) for s in d.steps.all()] == steps_of(job)  # the page's rows
    assert not DeviceLease.objects.exists()
    # the jobs API lists it for its deployment
    listed = client.get(f"/api/v1/jobs?target=deployment:{d.pk}").json()
    assert [(j["id"], j["kind"], j["status"]) for j in listed] == [(job.pk, "app.deploy", "failed")]


def test_a_deploy_whose_worker_died_is_undone_by_project_name(device):
    d = deployment("deploying", started_at=timezone.now())
    job = Job.objects.create(
        kind="app.deploy", target_type="deployment", target_id=str(d.pk),
        status="running", started_at=timezone.now(), heartbeat_at=timezone.now(),
        worker_host=os.uname().nodename, worker_pid=2**22 + 12345,
        params={"deployment_id": d.pk},
    )  # fmt: skip
    jobs_recover_interrupted()
    job.refresh_from_db()
    assert job.status == "interrupted"
    d.refresh_from_db()
    assert d.status == "failed" and "control plane stopped during this deployment" in d.error
    assert any("down --remove-orphans -v" in c for c in device.sent), device.sent
    assert any(c.startswith("rm -rf") for c in device.sent), device.sent


def test_the_poll_sweep_finds_interrupted_jobs(monkeypatch):
    from devices import services as device_services
    from devices import tasks

    d = deployment("removing")
    job = Job.objects.create(
        kind="app.remove", target_type="deployment", target_id=str(d.pk), status="running",
        heartbeat_at=timezone.now() - timezone.timedelta(hours=1), worker_host="elsewhere",
        params={"deployment_id": d.pk},
    )  # fmt: skip
    monkeypatch.setattr(device_services, "devices_poll_all", lambda: 0)
    monkeypatch.setattr(tasks, "_rearm", lambda scheduled_for: None)
    tasks.poll_all()
    assert Job.objects.get(pk=job.pk).status == "interrupted"
    assert Deployment.objects.get(pk=d.pk).status == "failed"


# ---------------------------------------------------------------------------- cancel
def test_a_deploy_cancelled_while_it_waits_frees_the_app_name(client, device):
    make_device("big", ram_free_gb=8)
    body = client.post(
        "/api/v1/applications/vaultwarden/deploy", {}, content_type="application/json"
    ).json()
    answer = client.post(f"/api/v1/jobs/{body['job_id']}/cancel")
    assert answer.status_code == 202 and answer.json()["status"] == "cancelled"
    d = Deployment.objects.get(pk=body["deployment_id"])
    assert d.status == "failed" and "cancelled before it started" in d.error
    assert job_run(job_id=body["job_id"]) is None  # the worker finds nothing to do
    # the same app and name may be deployed again at once
    again = client.post(
        "/api/v1/applications/vaultwarden/deploy", {}, content_type="application/json"
    )
    assert again.status_code == 202 and again.json()["deployment_id"] != d.pk


def test_a_deploy_cancelled_between_steps_is_undone_and_cancelled(client, device, monkeypatch):
    make_device("big", ram_free_gb=8)
    undone = []

    def first(ctx):
        ctx.on_undo("remove the thing", lambda: undone.append(1))
        # a person presses Cancel while this step runs
        Job.objects.filter(kind="app.deploy").update(cancel_requested=True)
        return "made the thing"

    monkeypatch.setattr(
        pipeline.DeploymentPipeline,
        "steps",
        lambda self: [
            pipeline.Step("pre-flight checks", "validating", first),
            pipeline.Step("health check", "health_check", lambda ctx: pytest.fail("ran")),
        ],
    )
    body = client.post(
        "/api/v1/applications/vaultwarden/deploy", {}, content_type="application/json"
    ).json()
    job = job_run(job_id=body["job_id"])
    assert job.status == "cancelled", job.error
    # the next step never started; what the first made was undone
    assert steps_of(job) == [("pre-flight checks", "ok"), ("undo: remove the thing", "undone")]
    assert undone == [1]
    d = Deployment.objects.get(pk=body["deployment_id"])
    assert d.status == "rolled_back" and "Cancelled on request" in d.error
