"""'Remove this server' runs as a `pool.remove` job: the page and the API answer at once
(refusing what the job would refuse), the job removes the shared server. The device is
never reached: `devices.ssh.run` answers from here and every command is kept."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from devices import ssh
from homelab.core.models import Job
from homelab.core.services import job_run
from pooling.models import SharedInstance
from tests.unit.pooling.test_api_and_savings import _database, _device, _instance

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client):
    user = get_user_model().objects.create_superuser("admin", "a@example.com", "a-long-pass-1")
    client.force_login(user)
    return client


@pytest.fixture
def sent(monkeypatch):
    commands: list[str] = []

    def run(device, args, *, timeout=None, stdin=None):
        commands.append(" ".join(args))
        return 0, "", ""

    monkeypatch.setattr(ssh, "run", run)
    return commands


def test_the_page_starts_a_job_and_the_job_removes_the_server(signed_in, sent):
    idle = _instance(_device("server-03"), engine="mariadb")
    response = signed_in.post(f"/pooling/instances/{idle.pk}/remove/")
    job = Job.objects.get(kind="pool.remove")
    assert response.status_code == 302 and response["Location"] == f"/activity/{job.pk}/"
    assert (job.target_type, job.target_id, job.status) == (
        "shared_instance",
        str(idle.pk),
        "queued",
    )
    assert job.target_label == "shared MariaDB on server-03"
    assert sent == []  # nothing reached the device in the request
    # pressed again while it waits: refused, no second job
    again = signed_in.post(f"/pooling/instances/{idle.pk}/remove/", follow=True)
    assert "being removed already" in again.content.decode()
    assert Job.objects.filter(kind="pool.remove").count() == 1

    job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert [(s.name, s.status, s.message) for s in job.steps.all()] == [
        ("remove the shared MariaDB", "ok", "shared MariaDB removed")
    ]
    assert any("-p hl-pool-mariadb" in c and "down -v" in c for c in sent), sent
    assert SharedInstance.objects.get(pk=idle.pk).status == "removed"
    assert "A" * 40 not in job.output + job.error


def test_the_api_answers_202_with_the_job_and_409_while_apps_use_the_server(client, sent):
    user = get_user_model().objects.create_superuser("admin", "a@example.com", "a-long-pass-1")
    client.force_login(user)
    busy = _instance(_device())
    _database(busy, "paperless_ngx_a")
    idle = _instance(_device("server-03"), engine="mariadb")
    refused = client.delete(f"/api/v1/pooling/instances/{busy.pk}")
    assert refused.status_code == 409 and "still uses" in refused.json()["message"]
    answer = client.delete(f"/api/v1/pooling/instances/{idle.pk}")
    assert answer.status_code == 202, answer.content
    body = answer.json()
    job = Job.objects.get(pk=body["job_id"])
    assert body["instance_id"] == idle.pk and job.kind == "pool.remove"
    assert job.user == user


def test_a_server_that_did_not_answer_fails_the_job_in_plain_words(signed_in, monkeypatch):
    idle = _instance(_device("server-03"), engine="mariadb")

    def gone(device, args, *, timeout=None, stdin=None):
        raise ssh.SSHError("connection refused")

    monkeypatch.setattr(ssh, "run", gone)
    signed_in.post(f"/pooling/instances/{idle.pk}/remove/")
    job = job_run(job_id=Job.objects.get(kind="pool.remove").pk)
    assert job.status == "failed"
    assert job.error.startswith("server-03 did not answer over SSH: connection refused"), job.error
    assert SharedInstance.objects.get(pk=idle.pk).status == "running"
