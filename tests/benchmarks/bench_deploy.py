"""Deployment speed: the deploy API call until `running` vs. a hand-run `docker compose up -d`.

Both run on the same lab device with the image already present. Ours goes through the
real product (`manage.py serve`: web + worker, task queue, pre-flight, SFTP upload,
`compose up --wait`, health check); the hand-run is one `ssh` command running
`docker compose up -d` on the same rendered file. Also: time to load the catalog and the
deployments list with 100 deployments in the database. Printed, never asserted
(goals in issue 4: at most 1.5x the hand-run; lists under 200 ms).
"""

from __future__ import annotations

import json
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest

from tests.served import ROOT, Served, served_env

RECIPE = "vaultwarden"
DEVICE = "lab-server-2"
RUNS = 5


def _api(served: Served, token: str, method: str, path: str, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"http://127.0.0.1:{served.port}/api/v1{path}", data=data, method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def _manage(env: dict, *args: str) -> str:
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _wait_status(served, token, deployment_id, wanted: set[str], timeout=300) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, body = _api(served, token, "GET", f"/deployments/{deployment_id}")
        if body["status"] in wanted:
            return body["status"]
        time.sleep(0.05)
    raise AssertionError(f"deployment {deployment_id} did not reach {wanted}")


@pytest.fixture
def product(lab, tmp_path):
    from tests.lab.images import build_and_push_recipe_images

    build_and_push_recipe_images(lab, verbose=False)
    data = tmp_path / "data"
    served = Served(data)
    served.wait_http()
    env = served_env(data, {"DJANGO_SUPERUSER_PASSWORD": "bench-" + secrets.token_hex(8)})
    _manage(env, "createsuperuser", "--noinput", "--username", "bench", "--email", "bench@example.com")
    token = _manage(env, "issue_api_token", "bench").strip().splitlines()[-1]
    device = lab.device(DEVICE)
    status, body = _api(served, token, "POST", "/devices", {
        "name": "bench-device", "address": device.address, "port": device.port,
        "username": device.username, "password": device.password,
    })
    assert status == 201, body
    yield served, token, body["id"]
    _api(served, token, "DELETE", f"/devices/{body['id']}")
    served.stop()


def test_deploy_api_vs_hand_run_compose(lab, product, report):
    from marketplace.recipes import load_catalog

    served, token, device_id = product
    recipe = load_catalog().get(RECIPE)
    for image in sorted(recipe.images):
        lab.exec(DEVICE, ["docker", "pull", image], check=True)
    host_port = 20000 + secrets.randbelow(20000)
    config = {"ports": {recipe.manifest.ports[0].name: host_port}}

    ours, steps, step_times, commands = [], None, {}, []
    hand_file = "/tmp/bench-hand-compose.yaml"
    for run in range(RUNS):
        start = time.perf_counter()
        status, body = _api(served, token, "POST", f"/applications/{RECIPE}/deploy",
                            {"device_id": device_id, "instance": f"bench{run}", "config": config})
        assert status == 202, body
        final = _wait_status(served, token, body["deployment_id"], {"running", "failed", "rolled_back"})
        ours.append(time.perf_counter() - start)
        assert final == "running", _api(served, token, "GET", f"/deployments/{body['deployment_id']}")
        _, detail = _api(served, token, "GET", f"/deployments/{body['deployment_id']}")
        steps = [(s["name"], s["status"]) for s in detail.get("steps", [])]
        for name, seconds in _step_seconds(detail).items():
            step_times.setdefault(name, []).append(seconds)
        _, debug = _api(served, token, "GET", f"/deployments/{body['deployment_id']}/debug")
        commands = [(c["command"][:70], c["seconds"]) for c in (debug or {}).get("commands", [])]
        if run == 0:
            lab.exec(DEVICE, ["sh", "-c", f"cp /opt/homelab/apps/*-bench0/compose.yaml {hand_file}"], check=True)
        _api(served, token, "DELETE", f"/deployments/{body['deployment_id']}?delete_data=true")
        _wait_status(served, token, body["deployment_id"], {"removed", "failed"})

    key_dir = Path(tempfile.mkdtemp(prefix="bench-ssh-"))
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key_dir / "id")], check=True)
    lab.authorize_key(DEVICE, (key_dir / "id.pub").read_text())
    device = lab.device(DEVICE)
    ssh = ["ssh", "-i", str(key_dir / "id"), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
           "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", f"root@{device.address}"]
    hand = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run([*ssh, "docker", "compose", "-p", "bench-hand", "-f", hand_file, "up", "-d"],
                       check=True, capture_output=True, timeout=300)
        hand.append(time.perf_counter() - start)
        subprocess.run([*ssh, "docker", "compose", "-p", "bench-hand", "-f", hand_file, "down", "-v"],
                       check=True, capture_output=True, timeout=300)
    lab.exec(DEVICE, ["rm", "-f", hand_file])

    ours_median, hand_median = statistics.median(ours), statistics.median(hand)
    report(f"recipe {RECIPE} on {DEVICE}, image present, {RUNS} runs each")
    report(f"deploy API call -> running (queue, pre-flight, upload, compose up --wait, health check): "
           f"median {ours_median:.2f} s ({', '.join(f'{t:.2f}' for t in ours)})")
    report(f"hand-run `docker compose up -d` over one ssh command: median {hand_median:.2f} s "
           f"({', '.join(f'{t:.2f}' for t in hand)})")
    report(f"ratio: {ours_median / hand_median:.2f}x (goal <= 1.5x)")
    report(f"steps of the last run: {steps}")
    report("where the time goes (median of the runs, from the step rows' times):")
    for name, times in step_times.items():
        report(f"  {name}: {statistics.median(times) * 1000:.0f} ms")
    report("commands sent in the last run (seconds each):")
    for command, seconds in commands:
        report(f"  {seconds if seconds is not None else '?'} s  {command}")


def _step_seconds(detail: dict) -> dict[str, float]:
    """Seconds from the deployment's creation to its first step (queue and pick-up), each
    step to the next, and the last step to the deployment's last update (running)."""
    def parse(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    steps = detail.get("steps", [])
    if not steps:
        return {}
    marks = [("queue + worker pick-up", parse(detail["created"]))]
    marks += [(step["name"], parse(step["time"])) for step in steps]
    marks.append(("end", parse(detail["updated"])))
    return {
        name: (marks[i + 1][1] - moment).total_seconds()
        for i, (name, moment) in enumerate(marks[:-1])
    }


def _median_ms(client, path: str, runs: int = 9) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        response = client.get(path)
        times.append(time.perf_counter() - start)
        assert response.status_code == 200, (path, response.status_code)
    return statistics.median(times) * 1000


@pytest.mark.django_db
def test_catalog_and_deployments_list_with_100_deployments(client, report):
    from django.contrib.auth import get_user_model
    from django.urls import NoReverseMatch, reverse

    from devices.models import Device
    from marketplace.models import Deployment, DeploymentStatus
    from marketplace.recipes import clear_catalog_cache, load_catalog

    user = get_user_model().objects.create_superuser("owner", "o@example.com", "a-long-test-password")
    client.force_login(user)
    devices = [
        Device.objects.create(name=f"dev-{i}", address=f"10.0.0.{i + 1}", username="root",
                              private_key="k", public_key="p", status="online")
        for i in range(5)
    ]
    slugs = sorted(load_catalog().recipes)
    Deployment.objects.bulk_create(
        Deployment(slug=slugs[i % len(slugs)], app_name=slugs[i % len(slugs)], device=devices[i % 5],
                   instance=f"i{i}", project=f"hl-{slugs[i % len(slugs)]}-i{i}",
                   status=DeploymentStatus.RUNNING, config={})
        for i in range(100)
    )
    clear_catalog_cache()
    cold_start = time.perf_counter()
    client.get("/api/v1/applications")
    cold = (time.perf_counter() - cold_start) * 1000
    report(f"catalog API, first load (recipes parsed): {cold:.0f} ms")
    report(f"catalog API /api/v1/applications: median {_median_ms(client, '/api/v1/applications'):.0f} ms")
    report(f"deployments API /api/v1/deployments (100 deployments): "
           f"median {_median_ms(client, '/api/v1/deployments'):.0f} ms")
    for name in ("app_catalog", "deployment_list"):
        try:
            path = reverse(name)
        except NoReverseMatch:
            report(f"page {name}: not built yet")
            continue
        report(f"page {path} ({name}): median {_median_ms(client, path):.0f} ms (goal < 200 ms)")


