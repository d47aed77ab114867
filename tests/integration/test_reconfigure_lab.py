"""Changing a deployed app's settings on the lab, with the whole product running.

1. `manage.py serve` on 127.0.0.1 with a fresh data directory (web and a real worker);
   an admin and an API token; the lab device added through the API.
2. Deploy Vaultwarden on a random host port through the API; it answers there.
3. PATCH /api/v1/deployments/{id} with a new host port and a memory limit: 202 with an
   `app.reconfigure` job, which the worker runs: the app answers on the new port and no
   longer on the old one, its container has the limit; the deployment's settings and URL
   say so.
4. A bad change (another port, and an extra setting that makes the stand-in app listen on
   another container port, so nothing answers on the new one and the health check fails;
   the stand-in answers 200 on every path, so moving its health page would not): the job
   fails, puts the previous settings back, and the app answers on the previous port again.
5. Removed with its data; nothing is left on the device.
"""

from __future__ import annotations

import json
import secrets as pysecrets
import time
import urllib.error
import urllib.request

import pytest

from tests.integration.test_jobs_lab import DEVICE, ROOT, _leftovers, clean_up_lab_app
from tests.integration.test_live_progress import (
    ADMIN,
    ADMIN_PASSWORD,
    Client,
    manage,
    wait_for_job,
)
from tests.served import Served

pytestmark = pytest.mark.lab


@pytest.fixture
def served(tmp_path):
    server = Served(tmp_path / "data")
    yield server
    server.stop()


def _answers(address: str, port: int) -> int | None:
    """The HTTP status of the app's health page at address:port, None when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://{address}:{port}/alive", timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, urllib.error.URLError):
        return None


def _free_ports(count: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(20000 + pysecrets.randbelow(20000))
    return sorted(ports)


def test_new_settings_take_effect_and_a_bad_change_rolls_back(served, tmp_path, lab):
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
        manage(data_dir, "issue_api_token", ADMIN, "--name", "reconfigure-lab")
        .strip()
        .splitlines()[-1]
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
    first, second, third = _free_ports(3)
    try:
        # --- 2. deployed on the first port
        status, body = api.request(
            "POST",
            "/api/v1/applications/vaultwarden/deploy",
            data={
                "device_id": device_id,
                "instance": f"settings-{pysecrets.token_hex(3)}",
                "config": {"ports": {"web": first}},
            },
        )
        assert status == 202, body
        started = json.loads(body)
        deployment_id = started["deployment_id"]
        deployed = wait_for_job(api, started["job_id"])
        assert deployed["status"] == "succeeded", deployed
        _, detail = api.request("GET", f"/api/v1/deployments/{deployment_id}")
        project = json.loads(detail)["project"]
        assert _answers(device.address, first) == 200

        # --- 3. a new port: the app answers there, and no longer on the first
        status, body = api.request(
            "PATCH",
            f"/api/v1/deployments/{deployment_id}",
            data={"config": {"ports": {"web": second}, "memory_limit_mb": 256}},
        )
        assert status == 202, body
        assert json.loads(body)["job_kind"] == "app.reconfigure"
        changed = wait_for_job(api, json.loads(body)["job_id"])
        assert changed["status"] == "succeeded", changed
        assert [s["name"] for s in changed["steps"]][-2:] == ["configure", "health check"]
        assert _answers(device.address, second) == 200
        assert _answers(device.address, first) is None
        _, detail = api.request("GET", f"/api/v1/deployments/{deployment_id}")
        detail = json.loads(detail)
        assert detail["config"] == {"ports": {"web": second}, "memory_limit_mb": 256}, detail
        assert detail["url"].endswith(f":{second}") and detail["status"] == "running", detail
        limits = lab.exec(
            DEVICE,
            [
                "sh",
                "-c",
                "docker inspect -f '{{.HostConfig.Memory}}' "
                f"$(docker ps -q --filter label=com.docker.compose.project={project})",
            ],
        ).stdout.split()
        assert limits == [str(256 * 1024 * 1024)], limits
        kept = lab.exec(
            DEVICE, ["sh", "-c", f"ls {ROOT}/{project}/compose.yaml.previous 2>/dev/null || true"]
        ).stdout.strip()
        assert kept == "", "the kept copy of the previous compose file was not removed"

        # --- 4. a change whose health check fails: the previous settings come back
        status, body = api.request(
            "PATCH",
            f"/api/v1/deployments/{deployment_id}",
            data={"config": {"ports": {"web": third}, "env": {"STANDIN_PORTS": "81/tcp"}}},
        )
        assert status == 202, body
        began = time.monotonic()
        failed = wait_for_job(api, json.loads(body)["job_id"], timeout=600)
        assert failed["status"] == "failed", failed
        assert "the previous settings are back" in failed["error"], failed
        steps = [(s["name"], s["status"]) for s in failed["steps"]]
        assert ("health check", "failed") in steps, steps
        assert steps[-1] == ("undo: put the previous settings back", "undone"), steps
        assert time.monotonic() - began < 600
        assert _answers(device.address, second) == 200
        assert _answers(device.address, third) is None
        _, detail = api.request("GET", f"/api/v1/deployments/{deployment_id}")
        detail = json.loads(detail)
        assert detail["config"] == {"ports": {"web": second}, "memory_limit_mb": 256}, detail
        assert detail["url"].endswith(f":{second}") and detail["status"] == "running", detail

        # while nothing works on it, the same settings again are refused in plain words
        status, body = api.request(
            "PATCH",
            f"/api/v1/deployments/{deployment_id}",
            data={"config": {"ports": {"web": second}, "memory_limit_mb": 256}},
        )
        assert status == 422 and "settings the app has already" in body, body

        # --- 5. removed with its data: nothing left
        status, body = api.request(
            "DELETE", f"/api/v1/deployments/{deployment_id}?delete_data=true"
        )
        assert status == 202, body
        removed = wait_for_job(api, json.loads(body)["job_id"])
        assert removed["status"] == "succeeded", removed
        assert _leftovers(lab, project) == {}
        deployment_id = None
    finally:
        clean_up_lab_app(api, lab, data_dir, device_id, deployment_id, project)
