"""Live job progress end to end, no device needed: a step written by a real worker process
reaches a real WebSocket client through the real web process.

1. `manage.py serve` on 127.0.0.1 with a fresh data directory and tests.jobs_settings
   (the product's settings plus tests.jobkinds, a harmless kind of three short steps);
   serve starts daphne and `manage.py qcluster` as separate processes.
2. An account (createsuperuser) and a session signed in through the login page.
3. The job is started from a third process (`manage.py shell`: job_enqueue), so only the
   worker can run it; a WebSocket client on ws/jobs/<id>/ collects what arrives.
4. Steps arrive while the job is still running, then "done" with succeeded; the job was
   claimed by a process of serve's group, not by the shell.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.integration.test_live_progress import Client, manage
from tests.served import Served

ADMIN = "admin"
ADMIN_PASSWORD = "Jobs-Live-Pw-42"
SETTINGS = {"DJANGO_SETTINGS_MODULE": "tests.jobs_settings"}


@pytest.fixture
def served(tmp_path):
    server = Served(tmp_path / "data", env=SETTINGS)
    yield server
    server.stop()


def test_steps_written_by_the_worker_reach_a_websocket_client_live(served, tmp_path):
    from websockets.exceptions import ConnectionClosed, InvalidStatus
    from websockets.sync.client import connect

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
        extra_env={"DJANGO_SUPERUSER_PASSWORD": ADMIN_PASSWORD, **SETTINGS},
    )
    base = f"http://127.0.0.1:{served.port}"
    browser = Client(base)
    browser.login(ADMIN, ADMIN_PASSWORD)

    started = served.shell(
        "import json, os\n"
        "from homelab.core.jobs import Target\n"
        "from homelab.core.services import job_enqueue\n"
        "job = job_enqueue(kind='test.three_steps', target=Target('test', 1, 'nothing'),"
        " params={'pause_seconds': 0.7})\n"
        "print('RESULT=' + json.dumps({'id': job.pk, 'pid': os.getpid()}))\n"
    )
    job_id = started["id"]

    received: list[tuple[float, dict]] = []
    began = time.monotonic()
    with connect(
        f"ws://127.0.0.1:{served.port}/ws/jobs/{job_id}/",
        additional_headers={"Cookie": f"sessionid={browser.cookie('sessionid')}", "Origin": base},
        open_timeout=10,
    ) as socket:
        while time.monotonic() - began < 120:
            try:
                message = json.loads(socket.recv(timeout=60))
            except (ConnectionClosed, TimeoutError):
                break
            received.append((time.monotonic() - began, message))
            if message["type"] == "done":
                break
    summary = [(round(t, 2), m["type"], m.get("name", ""), m["status"]) for t, m in received]
    print(*summary, sep="\n")

    assert received and received[-1][1]["type"] == "done", summary
    assert received[-1][1]["status"] == "succeeded", summary
    steps = [m for _, m in received if m["type"] == "step"]
    assert {m["name"] for m in steps} == {"step 1", "step 2", "step 3"}, summary
    # live, not replayed at the end: steps seen running, and spread over time
    assert any(m["status"] == "running" for m in steps), summary
    first_step_at = min(t for t, m in received if m["type"] == "step")
    assert received[-1][0] - first_step_at > 0.7, summary
    assert "step 3 of 3 done" in received[-1][1]["html"]

    # the worker claimed it: a process of serve's group, not the shell that enqueued it
    status, body = browser.request("GET", f"/api/v1/jobs/{job_id}")
    assert status == 200 and json.loads(body)["status"] == "succeeded", body
    claimed_by = served.shell(
        "import json\n"
        "from homelab.core.models import Job\n"
        f"job = Job.objects.get(pk={job_id})\n"
        "print('RESULT=' + json.dumps(job.worker_pid))\n"
    )
    assert claimed_by != started["pid"]
    assert claimed_by in served.group_pids()

    # a reload shows the whole history
    status, page = browser.request("GET", f"/activity/{job_id}/")
    assert status == 200 and "step 1 of 3 done" in page and "step 3 of 3 done" in page

    # a person who is not signed in gets nothing
    with (
        pytest.raises(InvalidStatus),
        connect(
            f"ws://127.0.0.1:{served.port}/ws/jobs/{job_id}/",
            additional_headers={"Origin": base},
            open_timeout=10,
        ) as anonymous,
    ):
        anonymous.recv(timeout=5)
