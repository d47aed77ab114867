"""Changing a deployed app's settings (issue 14, item 4): PATCH /api/v1/deployments/{id}
and the app page's "Settings" form start an `app.reconfigure` job; the job recreates the
app through the pipeline and puts the previous settings back when the new ones fail.

The device is a script (`devices.ssh.run` answers, every command kept; files written over
SFTP are kept too) and the health check answers on the ports a test says; the lab test
(tests/integration/test_reconfigure_lab.py) does the same on a real device.
"""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model

from devices import ssh
from devices.compose import DeviceShell, StepFailed
from devices.models import DeviceLease
from homelab.core.masking import MASK
from homelab.core.models import Job, JobStep
from homelab.core.services import job_run
from marketplace import pipeline
from marketplace.models import Deployment, DeploymentStatus
from tests.unit.scheduling.factories import make_device

pytestmark = pytest.mark.django_db

SECRET = "S3cret-admin-token-value-0123456789"
FOLDER = f"{pipeline.deploy_root()}/hl-vaultwarden-default"


@pytest.fixture
def client(client):
    user = get_user_model().objects.create_superuser("owner", password="a-long-password-1")
    client.force_login(user)
    return client


class Device:
    """The device's answers: exit 0 unless a word of the command is in `fail`; the commands
    sent and the files written are kept; the app answers on the ports in `healthy`."""

    def __init__(self):
        self.sent: list[str] = []
        self.files: dict[str, str] = {}
        self.fail: dict[str, tuple[int, str]] = {}
        self.healthy: set[int] = {8080}

    def run(self, device, args, *, timeout=None, stdin=None):
        command = " ".join(args)
        self.sent.append(command)
        for word, (code, err) in self.fail.items():
            if word in command:
                return code, "", err
        return 0, "", ""

    def write_file(self, path, data, *, mode=0o600, make_dirs=False):
        self.sent.append(f"write {path}")
        self.files[path] = data.decode()

    def wait_healthy(self, *, address, port, **_kw):
        if port in self.healthy:
            return f"http://{address}:{port}/alive answered 200"
        raise StepFailed(f"The app did not become healthy within 1 s ({address}:{port}: refused).")

    def compose_ups(self) -> list[str]:
        return [c for c in self.sent if " up -d" in c]


@pytest.fixture
def device(monkeypatch):
    fake = Device()
    monkeypatch.setattr(ssh, "run", fake.run)
    monkeypatch.setattr(
        DeviceShell, "write_file", lambda shell, path, data, **kw: fake.write_file(path, data, **kw)
    )
    monkeypatch.setattr(pipeline, "wait_healthy", fake.wait_healthy)
    return fake


def deployment(status: str = DeploymentStatus.RUNNING, **fields) -> Deployment:
    values = {
        "slug": "vaultwarden",
        "app_name": "Vaultwarden",
        "category": "security",
        "device": make_device("pi", ram_free_gb=4),
        "instance": "default",
        "project": "hl-vaultwarden-default",
        "status": status,
        "secrets": json.dumps({"admin_token": SECRET}),
        "url": "http://192.0.2.10:8080",
        "compose_masked": "the compose file in use",
    }
    values.update(fields)
    return Deployment.objects.create(**values)


def patch(client, d: Deployment, config):
    return client.patch(
        f"/api/v1/deployments/{d.pk}", {"config": config}, content_type="application/json"
    )


def steps_of(job: Job) -> list[tuple[str, str]]:
    return [(s.name, s.status) for s in JobStep.objects.filter(job=job)]


# ------------------------------------------------------------------------ it works
def test_new_settings_answer_202_and_the_job_recreates_the_app_with_them(client, device):
    d = deployment()
    device.healthy = {8081}
    response = patch(client, d, {"ports": {"web": 8081}, "env": {"TZ": "Europe/Berlin"}})
    assert response.status_code == 202, response.content
    body = response.json()
    job = Job.objects.get(pk=body["job_id"])
    assert (job.kind, job.status, body["job_kind"]) == (
        "app.reconfigure",
        "queued",
        "app.reconfigure",
    )
    assert job.params["config"] == {"ports": {"web": 8081}, "env": {"TZ": "Europe/Berlin"}}
    assert device.compose_ups() == []  # the request only asked which ports are in use
    assert Deployment.objects.get(pk=d.pk).config == {}  # not before they work

    job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert steps_of(job) == [
        ("pre-flight checks", "ok"),
        ("keep the previous settings", "ok"),
        ("render compose file", "ok"),
        ("upload compose file", "ok"),
        ("recreate containers", "ok"),
        ("configure", "ok"),
        ("health check", "ok"),
    ]
    assert f"cp -p -- {FOLDER}/compose.yaml {FOLDER}/compose.yaml.previous" in device.sent
    written = device.files[f"{FOLDER}/compose.yaml"]
    assert "8081:80" in written and "Europe/Berlin" in written
    assert len(device.compose_ups()) == 1 and not any(" down" in c for c in device.sent)
    assert device.sent[-1] == f"rm -f -- {FOLDER}/compose.yaml.previous"
    d.refresh_from_db()
    assert d.config == {"ports": {"web": 8081}, "env": {"TZ": "Europe/Berlin"}}
    assert d.url == "http://192.0.2.10:8081" and d.status == "running"
    assert SECRET not in d.compose_masked and "8081:80" in d.compose_masked
    assert not DeviceLease.objects.exists()


def test_a_stopped_app_may_get_new_settings_and_runs_with_them(client, device):
    d = deployment("stopped")
    device.healthy = {9000}
    job = job_run(job_id=patch(client, d, {"ports": {"web": 9000}}).json()["job_id"])
    assert job.status == "succeeded", job.error
    assert Deployment.objects.get(pk=d.pk).status == "running"


# ------------------------------------------------------------------------ rollback
def test_settings_that_fail_the_health_check_are_rolled_back_to_the_previous(client, device):
    d = deployment(config={"ports": {"web": 8080}, "env": {"TZ": "UTC"}})
    device.healthy = {8080}  # the app never answers on the new port
    job = job_run(job_id=patch(client, d, {"ports": {"web": 8082}}).json()["job_id"])
    assert job.status == "failed"
    assert steps_of(job)[-2:] == [
        ("health check", "failed"),
        ("undo: put the previous settings back", "undone"),
    ]
    assert "The new settings did not work (health check:" in job.error
    assert "the previous settings are back and Vaultwarden runs with them" in job.error
    # the previous compose file is back and up again, and the app answers on its old port
    assert f"mv -f -- {FOLDER}/compose.yaml.previous {FOLDER}/compose.yaml" in device.sent
    assert len(device.compose_ups()) == 2
    assert not any(" down" in c for c in device.sent)  # volumes never touched
    undo = JobStep.objects.get(job=job, name="undo: put the previous settings back")
    assert ":8080/alive answered 200" in undo.message
    d.refresh_from_db()
    assert d.config == {"ports": {"web": 8080}, "env": {"TZ": "UTC"}}
    assert d.url == "http://192.0.2.10:8080" and d.compose_masked == "the compose file in use"
    assert d.status == "running"
    assert not DeviceLease.objects.exists()


def test_a_failed_preflight_changes_nothing(client, device):
    d = deployment()
    job = Job.objects.get(pk=patch(client, d, {"ports": {"web": 8081}}).json()["job_id"])
    d.device.status = "offline"
    d.device.save()
    job = job_run(job_id=job.pk)
    assert job.status == "failed"
    assert steps_of(job) == [("pre-flight checks", "failed")]
    assert "nothing was changed: Vaultwarden runs as before" in job.error
    assert device.compose_ups() == [] and not any(c.startswith("cp ") for c in device.sent)
    assert Deployment.objects.get(pk=d.pk).config == {}


def test_when_the_previous_settings_cannot_come_back_it_says_what_to_do(client, device):
    d = deployment()
    device.healthy = set()  # the device's app answers on no port at all
    job = job_run(job_id=patch(client, d, {"ports": {"web": 8083}}).json()["job_id"])
    assert job.status == "failed"
    assert ("undo: put the previous settings back", "undo_failed") in steps_of(job)
    assert "putting the previous settings back failed too" in job.error
    assert "press Apply again or restart the app" in job.error


# ---------------------------------------------------------------------- refused
@pytest.mark.parametrize(
    ("config", "field", "words"),
    [
        ({"ports": {"web": 70000}}, "config.ports.web", "65535"),
        ({"ports": {"nope": 8081}}, "config.ports", "nope"),
        ({"env": {"1BAD": "x"}}, "config.env", "1BAD"),
        ({"memory": 5}, "config.memory", "not a known setting"),
        ({}, "config", "settings the app has already"),
        ({"bundled_databases": True}, "config.bundled_databases", "cannot change"),
    ],
)
def test_bad_settings_are_422_naming_the_field_and_start_no_job(
    client, device, config, field, words
):
    d = deployment()
    response = patch(client, d, config)
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["field"].startswith(field) and words in body["detail"], body
    assert not Job.objects.exists()


def test_a_port_another_app_claims_is_409(client, device):
    d = deployment()
    Deployment.objects.create(
        slug="uptime-kuma", app_name="Uptime Kuma", category="monitoring", device=d.device,
        instance="default", project="hl-uptime-kuma-default", status="running",
        config={"ports": {"web": 8090}},
    )  # fmt: skip
    response = patch(client, d, {"ports": {"web": 8090}})
    assert response.status_code == 409 and "claimed by" in response.json()["detail"]
    assert response.json()["field"] == "config.ports"


def test_new_settings_while_another_job_works_on_the_app_are_409(client, device):
    d = deployment()
    assert client.post(f"/api/v1/deployments/{d.pk}/restart").status_code == 202
    response = patch(client, d, {"ports": {"web": 8081}})
    assert response.status_code == 409 and "busy" in response.json()["detail"]
    assert not Job.objects.filter(kind="app.reconfigure").exists()
    # and the other way round
    Job.objects.all().delete()
    assert patch(client, d, {"ports": {"web": 8081}}).status_code == 202
    assert client.post(f"/api/v1/deployments/{d.pk}/stop").status_code == 409


def test_new_settings_for_an_app_on_an_offline_device_are_409_at_once(client, device):
    d = deployment()
    d.device.status = "offline"
    d.device.save()
    response = patch(client, d, {"ports": {"web": 8081}})
    assert response.status_code == 409 and "pi is offline" in response.json()["detail"]
    assert device.sent == [] and not Job.objects.exists()


def test_an_app_that_is_not_installed_cannot_get_new_settings(client, device):
    d = deployment("removed")
    response = patch(client, d, {"ports": {"web": 8081}})
    assert response.status_code == 409 and "cannot change the settings" in response.json()["detail"]


# ------------------------------------------------------------------------ the page
def test_the_app_page_has_a_settings_form_with_the_wizards_labels(client, device):
    d = deployment(config={"ports": {"web": 8085}, "env": {"TZ": "UTC"}})
    html = client.get(f"/deployments/{d.pk}/").content.decode()
    assert 'id="app-settings-title">Settings<' in html
    assert f'action="/deployments/{d.pk}/settings/"' in html
    assert ">Web port</label>" in html and 'value="8085"' in html
    assert ">Extra settings (environment variables)</label>" in html and "TZ=UTC" in html
    assert ">Apply</button>" in html
    assert "Name of this copy" not in html.split('id="settings"')[1]


def test_apply_starts_the_job_and_a_bad_value_comes_back_beside_its_box(client, device):
    d = deployment()
    bad = client.post(f"/deployments/{d.pk}/settings/", {"port_web": "70000", "env": ""})
    assert bad.status_code == 422
    html = bad.content.decode()
    errors = html.split('id="port_web-errors">')[1].split("</div>")[0]
    assert "Web port:" in errors and "65535" in errors and "config.ports" not in errors
    assert not Job.objects.exists()

    good = client.post(f"/deployments/{d.pk}/settings/", {"port_web": "8081", "env": "TZ=UTC"})
    job = Job.objects.get(kind="app.reconfigure")
    assert good.status_code == 302 and good["Location"] == f"/activity/{job.pk}/"
    assert job.params["config"] == {"ports": {"web": 8081}, "env": {"TZ": "UTC"}}
    # while it works, the page says so in place of the form
    html = client.get(f"/deployments/{d.pk}/").content.decode()
    assert "Changing settings… (see Activity)" in html and 'id="settings"' not in html


def test_cancelled_between_steps_puts_the_previous_settings_back(client, device, monkeypatch):
    d = deployment()
    device.healthy = {8080, 8081}
    real_render = pipeline.DeploymentPipeline.render

    def render_then_cancel(self, ctx):
        Job.objects.filter(kind="app.reconfigure").update(cancel_requested=True)
        return real_render(self, ctx)

    monkeypatch.setattr(pipeline.DeploymentPipeline, "render", render_then_cancel)
    job = job_run(job_id=patch(client, d, {"ports": {"web": 8081}}).json()["job_id"])
    assert job.status == "cancelled", job.error
    assert steps_of(job)[-1] == ("undo: put the previous settings back", "undone")
    assert Deployment.objects.get(pk=d.pk).config == {}


def test_a_change_whose_worker_died_is_interrupted_and_frees_the_device():
    import os

    from django.utils import timezone

    from homelab.core.services import jobs_recover_interrupted
    from marketplace import services

    d = deployment()
    job = Job.objects.create(
        kind="app.reconfigure", target_type="deployment", target_id=str(d.pk),
        status="running", started_at=timezone.now(), heartbeat_at=timezone.now(),
        worker_host=os.uname().nodename, worker_pid=2**22 + 12345,  # no such process
        params={"deployment_id": d.pk, "config": {"ports": {"web": 8081}}},
    )  # fmt: skip
    DeviceLease.objects.create(
        device=d.device, holder=services.job_lease_holder(job.pk),
        expires_at=timezone.now() + timezone.timedelta(minutes=30),
    )  # fmt: skip
    assert [j.pk for j in jobs_recover_interrupted()] == [job.pk]
    cleanup = JobStep.objects.get(job=job, name="clean up after the interruption").message
    assert "lease was freed" in cleanup and "press Apply again" in cleanup
    assert not DeviceLease.objects.exists()
    assert Deployment.objects.get(pk=d.pk).status == "running"


# ------------------------------------------------------------------- memory limit
def test_a_memory_limit_is_a_setting_like_the_others(client, device):
    d = deployment()
    job = job_run(job_id=patch(client, d, {"memory_limit_mb": 512}).json()["job_id"])
    assert job.status == "succeeded", job.error
    assert "mem_limit: 512m" in device.files[f"{FOLDER}/compose.yaml"]
    assert Deployment.objects.get(pk=d.pk).config == {"memory_limit_mb": 512}
    # the settings form shows it; below the app's minimum it is refused beside its box
    html = client.get(f"/deployments/{d.pk}/").content.decode()
    assert ">Memory limit (MB)</label>" in html and 'value="512"' in html
    bad = client.post(
        f"/deployments/{d.pk}/settings/", {"port_web": "8080", "memory_limit_mb": "8"}
    )
    errors = bad.content.decode().split('id="memory_limit_mb-errors">')[1].split("</div>")[0]
    assert bad.status_code == 422 and "Memory limit (MB): must be at least" in errors


def test_a_deploy_takes_a_memory_limit_and_checks_it(client, device):
    make_device("big", ram_free_gb=8)
    too_small = client.post(
        "/api/v1/applications/vaultwarden/deploy",
        {"config": {"memory_limit_mb": 1}},
        content_type="application/json",
    )
    assert too_small.status_code == 422
    assert too_small.json()["field"] == "config.memory_limit_mb"
    assert "must be at least" in too_small.json()["detail"]
    fine = client.post(
        "/api/v1/applications/vaultwarden/deploy",
        {"config": {"memory_limit_mb": 256}},
        content_type="application/json",
    )
    assert fine.status_code == 202, fine.content
    assert Deployment.objects.get(pk=fine.json()["deployment_id"]).config == {
        "memory_limit_mb": 256
    }


# ------------------------------------------------------------------ secret settings
# the new one must be quoted in YAML, its ' doubled: masking the written text would miss it
TYPED_OLD, TYPED_NEW, HOOK = "old-p4ss-word", "new-p4ss: it's", "my-webhook-value-42"


def secretive(**fields) -> Deployment:
    return deployment(
        config={
            "env": {"SMTP_PASSWORD": MASK, "HOOK": MASK, "TZ": "UTC"},
            "secret_env": ["HOOK"],
        },
        env_secrets=json.dumps({"SMTP_PASSWORD": TYPED_OLD, "HOOK": HOOK}),
        **fields,
    )


def test_settings_sent_back_masked_keep_their_secret_values_and_marks(client, device):
    """What the Settings form sends: the masked values and no marks; nothing leaks."""
    d = secretive()
    device.healthy = {8081}
    body = patch(
        client, d, {"ports": {"web": 8081}, "env": {"SMTP_PASSWORD": MASK, "HOOK": MASK, "TZ": "UTC"}}
    ).json()
    job = Job.objects.get(pk=body["job_id"])
    for text in (json.dumps(job.params), json.dumps(body)):
        assert HOOK not in text and TYPED_OLD not in text

    job = job_run(job_id=job.pk)
    assert job.status == "succeeded", job.error
    written = device.files[f"{FOLDER}/compose.yaml"]
    assert HOOK in written and TYPED_OLD in written, written  # the app gets the real values
    d.refresh_from_db()
    assert d.config["env"] == {"SMTP_PASSWORD": MASK, "HOOK": MASK, "TZ": "UTC"}
    assert "HOOK" in d.config["secret_env"]  # still marked
    assert d.env_secret_values() == {"SMTP_PASSWORD": TYPED_OLD, "HOOK": HOOK}
    listing = client.get("/api/v1/deployments").content.decode()
    for text in (listing, json.dumps(job.result), d.compose_masked):
        assert HOOK not in text and TYPED_OLD not in text


def test_a_new_secret_value_is_kept_only_when_the_change_works(client, device):
    d = secretive(compose_masked="old")
    device.healthy = {8080}  # the new port never answers: rolled back
    env = {"SMTP_PASSWORD": TYPED_NEW, "HOOK": MASK, "TZ": "UTC"}
    job = job_run(job_id=patch(client, d, {"ports": {"web": 8082}, "env": env}).json()["job_id"])
    assert job.status == "failed"
    d.refresh_from_db()
    assert d.env_secret_values()["SMTP_PASSWORD"] == TYPED_OLD  # what the device runs
    assert not d.env_secrets_pending
    assert TYPED_NEW not in job.output + job.error + json.dumps(job.params)

    device.healthy = {8082}
    job = job_run(job_id=patch(client, d, {"ports": {"web": 8082}, "env": env}).json()["job_id"])
    assert job.status == "succeeded", job.error
    d.refresh_from_db()
    assert d.env_secret_values()["SMTP_PASSWORD"] == TYPED_NEW and not d.env_secrets_pending
    assert "new-p4ss: it''s" in device.files[f"{FOLDER}/compose.yaml"]  # quoted, ' doubled
    assert "p4ss" not in d.compose_masked  # masked all the same
