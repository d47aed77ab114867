"""Live deployment progress: the consumer alone (no lab), and end to end on the lab, where
a real worker process writes the steps and the real web process pushes them to a real
WebSocket client.

1. `manage.py serve` on 127.0.0.1 with a fresh data directory (web and worker are separate
   processes, with the embedded SQLite and django-q2's ORM broker).
2. An admin (createsuperuser) and an API token (issue_api_token); the lab's lab-server-2
   added through the API.
3. A session signed in through the login page, as a browser would.
4. Deploy Vaultwarden through the API (the worker runs it), connect to
   ws/deployments/<id>/ with the session cookie and collect what arrives: steps while the
   deployment is still in progress, then "done" with status running.
5. Remove it with its data through the API, and take our key off the lab device.
"""

from __future__ import annotations

import http.cookiejar
import json
import re
import secrets as pysecrets
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

from tests.served import ROOT, Served, served_env

ADMIN = "admin"
ADMIN_PASSWORD = "Live-Progress-Pw-42"
APP = "vaultwarden"


@pytest.fixture
def served(tmp_path):
    server = Served(tmp_path / "data")
    yield server
    server.stop()


def manage(data_dir, *args: str, extra_env: dict | None = None) -> str:
    env = served_env(data_dir, extra_env)
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


class Client:
    """Just enough of a browser and an API client over urllib."""

    def __init__(self, base: str, token: str = ""):
        self.base = base
        self.token = token
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def request(self, method: str, path: str, *, data=None, form=None, timeout: float = 120):
        headers = {}
        body = None
        if data is not None:
            body = json.dumps(data).encode()
            headers["Content-Type"] = "application/json"
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Referer"] = self.base + path
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.base + path, data=body, method=method, headers=headers)
        try:
            with self.opener.open(req, timeout=timeout) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def cookie(self, name: str) -> str:
        return next((c.value for c in self.jar if c.name == name), "")

    def login(self, username: str, password: str) -> None:
        status, page = self.request("GET", "/accounts/login/")
        assert status == 200, page
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        status, page = self.request(
            "POST",
            "/accounts/login/",
            form={"username": username, "password": password, "csrfmiddlewaretoken": token},
        )
        assert status == 200 and self.cookie("sessionid"), page[:500]


@pytest.mark.lab
def test_steps_from_the_worker_reach_a_websocket_client_live(served, tmp_path, lab):
    from websockets.exceptions import ConnectionClosed, InvalidStatus
    from websockets.sync.client import connect

    from marketplace.recipes import load_catalog
    from tests.lab.images import build_and_push_recipe_images

    device = lab.device("lab-server-2")
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
        manage(data_dir, "issue_api_token", ADMIN, "--name", "live-progress")
        .strip()
        .splitlines()[-1]
    )
    base = f"http://127.0.0.1:{served.port}"
    api = Client(base, token)

    status, body = api.request(
        "POST",
        "/api/v1/devices",
        data={
            "name": "lab-server-2",
            "address": device.address,
            "port": device.port,
            "username": device.username,
            "password": device.password,
        },
    )
    assert status == 201, body
    device_id = json.loads(body)["id"]
    deployment_id = None
    try:
        browser = Client(base)
        browser.login(ADMIN, ADMIN_PASSWORD)

        port = 20000 + pysecrets.randbelow(20000)
        status, body = api.request(
            "POST",
            f"/api/v1/applications/{APP}/deploy",
            # a copy name of our own: other sessions share the lab device
            data={
                "device_id": device_id,
                "instance": f"live-{pysecrets.token_hex(3)}",
                "config": {"ports": {"web": port}},
            },
        )
        assert status == 202, body
        deployment_id = json.loads(body)["deployment_id"]

        received: list[tuple[float, dict]] = []
        started = time.monotonic()
        with connect(
            f"ws://127.0.0.1:{served.port}/ws/deployments/{deployment_id}/",
            additional_headers={
                "Cookie": f"sessionid={browser.cookie('sessionid')}",
                "Origin": base,
            },
            open_timeout=10,
        ) as socket:
            while time.monotonic() - started < 300:
                try:
                    message = json.loads(socket.recv(timeout=300))
                except (ConnectionClosed, TimeoutError):  # closed by the server after "done"
                    break
                received.append((time.monotonic() - started, message))
                if message["type"] == "done":
                    break
        summary = [(round(t, 2), m["type"], m.get("name", ""), m["status"]) for t, m in received]
        print(*summary, sep="\n")

        kinds = [m["type"] for _, m in received]
        assert kinds and kinds[-1] == "done", summary
        done = received[-1][1]
        if done["status"] != "running":
            _, detail = api.request("GET", f"/api/v1/deployments/{deployment_id}")
            pytest.fail(f"the deployment ended {done['status']}: {detail}")
        assert f"Vaultwarden is ready at http://{device.address}:{port}" in done["html"]

        steps = [m for _, m in received if m["type"] == "step"]
        names = {m["name"] for m in steps}
        assert {"pre-flight checks", "start containers", "health check"} <= names, summary
        # Live, not replayed at the end: steps arrived while the deployment was still in
        # progress (a step still running, or a status short of "running"), and spread over
        # time before the final message.
        in_progress = [
            m
            for _, m in received
            if (m["type"] == "step" and m["status"] == "running")
            or (m["type"] == "status" and m["status"] not in ("running", "failed", "rolled_back"))
        ]
        assert in_progress, summary
        first_step_at = min(t for t, m in received if m["type"] == "step")
        assert received[-1][0] - first_step_at > 0.4, summary
        assert '<li id="step-' in steps[0]["html"]

        # a page reload shows the whole history
        status, page = browser.request("GET", f"/deployments/{deployment_id}/")
        assert (
            status == 200
            and "Checking requirements" in page
            and "Waiting until the app answers" in page
        )

        # a person who is not signed in gets nothing
        with (
            pytest.raises(InvalidStatus),
            connect(
                f"ws://127.0.0.1:{served.port}/ws/deployments/{deployment_id}/",
                additional_headers={"Origin": base},
                open_timeout=10,
            ) as anonymous,
        ):
            anonymous.recv(timeout=5)
    finally:
        if deployment_id is not None:
            status, body = api.request(
                "DELETE", f"/api/v1/deployments/{deployment_id}?delete_data=true"
            )
            # the removal is a job: 202 at once, then the worker does it
            assert status == 202, body
            job = wait_for_job(api, json.loads(body)["job_id"])
            assert job["status"] == "succeeded", job
            _, detail = api.request("GET", f"/api/v1/deployments/{deployment_id}")
            assert json.loads(detail)["status"] == "removed", detail
        _take_our_key_off(lab, data_dir, device_id)


def wait_for_job(api: Client, job_id: int, *, timeout: float = 300) -> dict:
    """GET /api/v1/jobs/{id} until the job is final; its answer."""
    deadline = time.monotonic() + timeout
    while True:
        status, body = api.request("GET", f"/api/v1/jobs/{job_id}")
        assert status == 200, body
        job = json.loads(body)
        if job["status"] not in ("queued", "running") or time.monotonic() > deadline:
            return job
        time.sleep(0.5)


def _take_our_key_off(lab, data_dir, device_id: int) -> None:
    """The deployment row keeps the device from being deleted through the API, so remove
    the key this server installed on the shared lab device by hand."""
    with sqlite3.connect(data_dir / "homelab.sqlite3") as db:
        row = db.execute(
            "SELECT public_key FROM devices_device WHERE id = ?", (device_id,)
        ).fetchone()
    if not row or not row[0]:
        return
    key_body = row[0].split()[1]
    lab.exec(
        "lab-server-2",
        [
            "sh",
            "-c",
            'f=/root/.ssh/authorized_keys; grep -vF "$1" "$f" > "$f.new"; cat "$f.new" > "$f"; rm -f "$f.new"',
            "sh",
            key_body,
        ],
    )


# ------------------------------------------------------------------ the consumer alone
def _communicator(user, deployment_id: int):
    from channels.routing import URLRouter
    from channels.testing import WebsocketCommunicator

    from homelab.routing import websocket_urlpatterns

    communicator = WebsocketCommunicator(
        URLRouter(websocket_urlpatterns), f"/ws/deployments/{deployment_id}/"
    )
    communicator.scope["user"] = user
    return communicator


@pytest.fixture
def deploying(django_user_model):
    from devices.models import Device
    from marketplace.models import Deployment, DeploymentStep

    device = Device.objects.create(
        name="server-02",
        address="10.0.0.2",
        username="root",
        status="online",
        private_key="not-a-real-key",
        public_key="ssh-ed25519 AAAA",
    )
    deployment = Deployment.objects.create(
        slug="vaultwarden",
        app_name="Vaultwarden",
        category="security",
        device=device,
        project="hl-vaultwarden-default",
        status="deploying",
    )
    DeploymentStep.objects.create(deployment=deployment, name="pre-flight checks", status="ok")
    running = DeploymentStep.objects.create(deployment=deployment, name="start containers")
    user = django_user_model.objects.create_user("owner", password="pw-Owner-123")
    return deployment, running, user


@pytest.mark.django_db(transaction=True)
def test_the_consumer_sends_new_and_changed_steps_then_done(deploying):
    from asgiref.sync import async_to_sync
    from channels.db import database_sync_to_async

    from marketplace.models import Deployment, DeploymentStep

    deployment, running, user = deploying

    @database_sync_to_async
    def finish():
        DeploymentStep.objects.filter(pk=running.pk).update(status="ok")
        DeploymentStep.objects.create(deployment=deployment, name="health check", status="ok")
        Deployment.objects.filter(pk=deployment.pk).update(
            status="running", url="http://10.0.0.2:8080"
        )

    async def scenario():
        communicator = _communicator(user, deployment.pk)
        connected, _ = await communicator.connect()
        assert connected
        first = [json.loads(await communicator.receive_from(timeout=5)) for _ in range(3)]
        assert [(m["type"], m.get("name"), m["status"]) for m in first] == [
            ("step", "pre-flight checks", "ok"),
            ("step", "start containers", "running"),
            ("status", None, "deploying"),
        ]
        assert 'id="step-' in first[1]["html"] and "Starting the app" in first[1]["html"]
        await finish()
        rest = []
        while not rest or rest[-1]["type"] != "done":
            rest.append(json.loads(await communicator.receive_from(timeout=5)))
        assert [(m["type"], m.get("name"), m["status"]) for m in rest] == [
            ("step", "start containers", "ok"),
            ("step", "health check", "ok"),
            ("status", None, "running"),
            ("done", None, "running"),
        ]
        assert "Vaultwarden is ready at http://10.0.0.2:8080" in rest[-1]["html"]
        assert "/remove/" in rest[-1]["actions_html"]
        closed = await communicator.receive_output(timeout=5)
        assert closed["type"] == "websocket.close"

    async_to_sync(scenario)()


@pytest.mark.django_db(transaction=True)
def test_the_consumer_refuses_strangers_and_unknown_deployments(deploying):
    from asgiref.sync import async_to_sync
    from django.contrib.auth.models import AnonymousUser

    deployment, _, user = deploying

    async def scenario():
        for who, deployment_id in ((AnonymousUser(), deployment.pk), (user, 999999)):
            communicator = _communicator(who, deployment_id)
            connected, _ = await communicator.connect()
            assert not connected

    async_to_sync(scenario)()
