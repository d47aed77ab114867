"""A removal whose worker is killed mid-way, on the lab, with the whole product running.

1. `manage.py serve` on 127.0.0.1 with a fresh data directory (web and a real
   `manage.py qcluster` worker as separate processes; embedded SQLite, django-q2's ORM
   broker); an admin and an API token; the lab device added through the API.
2. Deploy Vaultwarden through the API: 202 with the `app.deploy` job, which the worker runs.
3. Remove it with its data kept through the API: 202 at once with the `app.remove` job.
   While its first step (`docker compose down`: the lab's stand-in app ignores SIGTERM, so
   Docker waits its grace period) runs, SIGKILL the worker process running the job.
4. The start-up preparation (as after a restart) finds the job: interrupted, its running
   step failed, its clean-up step ran (the device lease freed, the deployment failed with
   "press Remove again"). The worker itself is back (django-q2 starts a new one).
5. `/api/v1/jobs` lists the deploy and the removal with their steps; Remove again (with
   its data) through the API finishes the job and leaves nothing on the device.
"""

from __future__ import annotations

import json
import os
import secrets as pysecrets
import signal
import sqlite3
import time

import pytest

from tests.integration.test_live_progress import (
    ADMIN,
    ADMIN_PASSWORD,
    Client,
    manage,
    wait_for_job,
)
from tests.served import Served

pytestmark = pytest.mark.lab

DEVICE = "lab-server-1"
ROOT = "/opt/homelab/apps"


@pytest.fixture
def served(tmp_path):
    server = Served(tmp_path / "data")
    yield server
    server.stop()


def _row(data_dir, sql: str, *args):
    with sqlite3.connect(data_dir / "homelab.sqlite3", timeout=10) as db:
        return db.execute(sql, args).fetchone()


def _leftovers(lab, project: str) -> dict[str, str]:
    label = f"label=com.docker.compose.project={project}"
    found = {
        "containers": lab.exec(DEVICE, ["docker", "ps", "-aq", "--filter", label]).stdout,
        "volumes": lab.exec(DEVICE, ["docker", "volume", "ls", "-q", "--filter", label]).stdout,
        "folder": lab.exec(
            DEVICE, ["sh", "-c", f"test -e {ROOT}/{project} && echo present || true"]
        ).stdout,
    }
    return {key: value.strip() for key, value in found.items() if value.strip()}


def test_killing_the_worker_mid_removal_leaves_the_job_interrupted_and_cleaned_up(
    served, tmp_path, lab
):
    from marketplace.recipes import load_catalog
    from tests.lab.images import build_and_push_recipe_images

    device = lab.device(DEVICE)
    build_and_push_recipe_images(lab, load_catalog([]), verbose=False)
    data_dir = tmp_path / "data"
    served.wait_http()
    served.wait_for("Q Cluster")
    manage(
        data_dir,
        "createsuperuser",
        "--noinput",
        "--username",
        ADMIN,
        "--email",
        "admin@example.invalid",
        extra_env={"DJANGO_SUPERUSER_PASSWORD": ADMIN_PASSWORD},
    )
    token = (
        manage(data_dir, "issue_api_token", ADMIN, "--name", "jobs-lab").strip().splitlines()[-1]
    )
    api = Client(f"http://127.0.0.1:{served.port}", token)
    status, body = api.request(
        "POST",
        "/api/v1/devices",
        data={
            "name": DEVICE,
            "address": device.address,
            "port": device.port,
            "username": device.username,
            "password": device.password,
        },
    )
    assert status == 201, body
    device_id = json.loads(body)["id"]
    deployment_id = project = None
    try:
        # --- 2. deploy: a job the worker runs
        port = 20000 + pysecrets.randbelow(20000)
        status, body = api.request(
            "POST",
            "/api/v1/applications/vaultwarden/deploy",
            data={
                "device_id": device_id,
                "instance": f"kill-{pysecrets.token_hex(3)}",
                "config": {"ports": {"web": port}},
            },
        )
        assert status == 202, body
        started = json.loads(body)
        deployment_id, deploy_job_id = started["deployment_id"], started["job_id"]
        assert deploy_job_id, body
        deploy_job = wait_for_job(api, deploy_job_id)
        assert deploy_job["status"] == "succeeded", deploy_job
        _, detail = api.request("GET", f"/api/v1/deployments/{deployment_id}")
        detail = json.loads(detail)
        project = detail["project"]
        assert detail["status"] == "running", detail

        # --- 3. remove with the data kept: 202 at once, then kill the worker mid-step
        began = time.monotonic()
        status, body = api.request("DELETE", f"/api/v1/deployments/{deployment_id}")
        answered_in = time.monotonic() - began
        assert status == 202, body
        assert answered_in < 5, answered_in  # no dump, no compose in the request
        removal_id = json.loads(body)["job_id"]
        assert json.loads(body)["job_kind"] == "app.remove"

        worker_pid = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            job_row = _row(
                data_dir, "SELECT status, worker_pid FROM core_job WHERE id = ?", removal_id
            )
            step = _row(
                data_dir,
                'SELECT name, status FROM core_jobstep WHERE job_id = ? ORDER BY "order" DESC',
                removal_id,
            )
            if job_row[0] not in ("queued", "running"):
                pytest.fail(f"the removal ended ({job_row[0]}) before the worker was killed")
            if job_row[0] == "running" and step and step[1] == "running":
                worker_pid = job_row[1]
                break
            time.sleep(0.02)
        assert worker_pid, "the removal never reached a running step"
        assert worker_pid in served.group_pids(), (worker_pid, served.group_pids())
        assert step[0] == "stop containers", step
        os.kill(worker_pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while worker_pid in served.group_pids() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert worker_pid not in served.group_pids()

        # --- 4. the start-up preparation finds it (a poll sweep may have been first)
        served.shell(
            "from homelab.startup import prepare_control_plane\n"
            "prepare_control_plane()\n"
            "print('RESULT=true')\n"
        )
        removal = wait_for_job(api, removal_id, timeout=10)
        assert removal["status"] == "interrupted", removal
        assert "stopped before it finished" in removal["error"], removal
        steps = [(s["name"], s["status"]) for s in removal["steps"]]
        assert steps == [
            ("stop containers", "failed"),
            ("clean up after the interruption", "undone"),
        ], removal["steps"]
        cleanup = removal["steps"][-1]["message"]
        assert "lease was freed" in cleanup and "press Remove again" in cleanup, cleanup
        assert _row(data_dir, "SELECT COUNT(*) FROM devices_devicelease")[0] == 0
        _, detail = api.request("GET", f"/api/v1/deployments/{deployment_id}")
        detail = json.loads(detail)
        assert detail["status"] == "failed", detail
        assert detail["error"] == (
            "The control plane stopped during the removal; press Remove again."
        ), detail

        # --- 5. the jobs API lists both with their steps, newest first
        status, body = api.request("GET", f"/api/v1/jobs?target=deployment:{deployment_id}")
        assert status == 200, body
        listed = json.loads(body)
        assert [(j["id"], j["kind"], j["status"]) for j in listed] == [
            (removal_id, "app.remove", "interrupted"),
            (deploy_job_id, "app.deploy", "succeeded"),
        ], listed
        _, body = api.request("GET", f"/api/v1/jobs/{deploy_job_id}")
        deploy_steps = [s["name"] for s in json.loads(body)["steps"]]
        assert deploy_steps[0] == "pre-flight checks" and "health check" in deploy_steps

        # the worker is back (django-q2 replaces the killed process): Remove again works
        status, body = api.request(
            "DELETE", f"/api/v1/deployments/{deployment_id}?delete_data=true"
        )
        assert status == 202, body
        again = wait_for_job(api, json.loads(body)["job_id"])
        assert again["status"] == "succeeded", again
        _, detail = api.request("GET", f"/api/v1/deployments/{deployment_id}")
        assert json.loads(detail)["status"] == "removed", detail
        assert _leftovers(lab, project) == {}
        deployment_id = None
    finally:
        clean_up_lab_app(api, lab, data_dir, device_id, deployment_id, project)


def clean_up_lab_app(api, lab, data_dir, device_id, deployment_id, project) -> None:
    """After a test that deployed through the served product: an app a failure left is
    removed (through the API, then by hand on the device), and our key comes off it."""
    if deployment_id is not None:
        api.request("DELETE", f"/api/v1/deployments/{deployment_id}?delete_data=true")
        time.sleep(15)
        if project:
            label = f"label=com.docker.compose.project={project}"
            lab.exec(
                DEVICE,
                [
                    "sh",
                    "-c",
                    f"docker rm -f $(docker ps -aq --filter {label}) 2>/dev/null; "
                    f"docker volume rm $(docker volume ls -q --filter {label}) 2>/dev/null; "
                    f"rm -rf {ROOT}/{project}; true",
                ],
            )
    _take_our_key_off_device(lab, data_dir, device_id)


def _take_our_key_off_device(lab, data_dir, device_id: int) -> None:
    """test_live_progress's clean-up, on this test's device."""
    with sqlite3.connect(data_dir / "homelab.sqlite3") as db:
        row = db.execute(
            "SELECT public_key FROM devices_device WHERE id = ?", (device_id,)
        ).fetchone()
    if not row or not row[0]:
        return
    key_body = row[0].split()[1]
    lab.exec(
        DEVICE,
        [
            "sh",
            "-c",
            'f=/root/.ssh/authorized_keys; grep -vF "$1" "$f" > "$f.new"; cat "$f.new" > "$f"; rm -f "$f.new"',
            "sh",
            key_body,
        ],
    )
