"""What the watch shows (issue 20), through Django's test client: the API's status, health,
uptime and events; My apps, the app's page and the dashboard; the notifications page.
No device is reached: the poll's container states are written by hand and judged by the
real after-poll hook; health samples are rows."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import call_command
from django.utils import timezone

from marketplace import health_checks, watch
from marketplace.models import Deployment, DeploymentStatus, HealthSample, NotificationSettings
from tests.unit.scheduling.factories import make_device

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(django_user_model):
    return django_user_model.objects.create_superuser("owner", "o@example.com", "pw-Owner-123")


@pytest.fixture
def signed_in(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def api(client, owner, capsys):
    call_command("issue_api_token", "owner")
    token = capsys.readouterr().out.strip().splitlines()[-1]

    def get(path: str):
        return client.get(f"/api/v1{path}", HTTP_AUTHORIZATION=f"Bearer {token}")

    return get


@pytest.fixture
def paperless(db):
    device = make_device("pi", ram_free_gb=2)
    return Deployment.objects.create(
        slug="paperless-ngx",
        app_name="Paperless-ngx",
        device=device,
        project="hl-paperless-ngx-default",
        status=DeploymentStatus.RUNNING,
        auto_restart=False,
    )


def killed(deployment: Deployment) -> Deployment:
    device = deployment.device
    device.app_containers = {
        deployment.project: [
            {
                "name": "hl-paperless-ngx-default-web-1",
                "service": "web",
                "state": "exited",
                "exit_code": 137,
                "restart_count": 0,
                "health": "",
                "oom_killed": False,
                "started_at": None,
                "finished_at": None,
            }
        ]
    }
    watch.after_device_poll(device)
    deployment.refresh_from_db()
    return deployment


def test_the_api_says_stopped_unexpectedly_with_health_uptime_and_events(api, paperless):
    now = timezone.now()
    HealthSample.objects.create(
        deployment=paperless,
        time=now - timedelta(hours=2),
        ok=True,
        answer_ms=12.5,
        message="/ answered 200",
    )
    HealthSample.objects.create(
        deployment=paperless,
        time=now - timedelta(minutes=1),
        ok=False,
        message="nothing listens on port 8000 (connection refused)",
    )
    killed(paperless)
    body = api(f"/deployments/{paperless.pk}").json()
    assert body["status"] == "stopped_unexpectedly"
    assert "exited with code 137 (killed, often out of memory)" in body["status_reason"]
    assert body["health"]["state"] == "not_answering"
    assert body["health"]["message"].startswith("nothing listens")
    assert body["uptime"] == {"24h": 0.5, "7d": 0.5, "30d": 0.5}
    listed = api("/deployments").json()
    assert listed[0]["status"] == "stopped_unexpectedly" and "uptime" in listed[0]
    events = api(f"/deployments/{paperless.pk}/events").json()
    assert [(e["from_status"], e["to_status"]) for e in events] == [
        ("running", "stopped_unexpectedly")
    ]
    assert api("/deployments/999999/events").status_code == 404


def test_the_pages_show_the_real_state_in_words_and_the_dashboard_counts_truthfully(
    signed_in, paperless
):
    dashboard = signed_in.get("/").content.decode()
    assert "<strong>1</strong> app running" in dashboard
    killed(paperless)
    apps = signed_in.get("/deployments/").content.decode()
    assert "Stopped unexpectedly" in apps
    assert "its container exited with code 137 (killed, often out of memory)" in apps
    page = signed_in.get(f"/deployments/{paperless.pk}/").content.decode()
    assert "Stopped unexpectedly" in page and "ago: its container exited with code 137" in page
    assert "What happened" in page and "Paperless-ngx stopped unexpectedly" in page
    dashboard = signed_in.get("/").content.decode()
    assert "<strong>0</strong> apps running" in dashboard
    assert "Paperless-ngx: stopped unexpectedly" in dashboard


def test_the_app_page_shows_uptime_for_the_chosen_window_and_an_answer_chart(signed_in, paperless):
    now = timezone.now()
    for hours, ok in ((1, True), (30, False), (100, True), (200, True)):
        HealthSample.objects.create(
            deployment=paperless,
            time=now - timedelta(hours=hours),
            ok=ok,
            answer_ms=20.0 if ok else None,
        )
    page = signed_in.get(f"/deployments/{paperless.pk}/").content.decode()
    assert 'data-uptime="24h">100.0 %' in page and "<polyline" in page
    page = signed_in.get(f"/deployments/{paperless.pk}/?window=7d").content.decode()
    assert 'data-uptime="7d">66.67 %' in page


def test_the_watch_settings_are_saved_from_the_app_page(signed_in, paperless):
    response = signed_in.post(
        f"/deployments/{paperless.pk}/watch/", {"auto_restart": "on", "health_check_minutes": "2"}
    )
    assert response.status_code == 302
    paperless.refresh_from_db()
    assert paperless.auto_restart is True and paperless.health_check_minutes == 2


class Answers(BaseHTTPRequestHandler):
    code = 200

    def do_GET(self):
        self.send_response(Answers.code)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def local_app():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


def test_two_failed_health_checks_make_it_not_answering_and_an_answer_brings_it_back(
    paperless, local_app, monkeypatch
):
    monkeypatch.setattr(
        health_checks,
        "deployment_probe",
        lambda d: health_checks.probe(address="127.0.0.1", port=local_app, kind="http"),
    )
    Answers.code = 500
    assert health_checks.health_checks_run_due() == 1
    paperless.refresh_from_db()
    assert paperless.status == DeploymentStatus.RUNNING
    HealthSample.objects.update(time=timezone.now() - timedelta(minutes=10))
    health_checks.health_checks_run_due()
    paperless.refresh_from_db()
    assert paperless.status == DeploymentStatus.NOT_ANSWERING
    assert "answered 500 instead of 200" in paperless.status_reason
    HealthSample.objects.update(time=timezone.now() - timedelta(minutes=10))
    assert health_checks.health_checks_run_due() == 1  # still 500: stays not answering
    Answers.code = 200
    HealthSample.objects.update(time=timezone.now() - timedelta(minutes=10))
    health_checks.health_checks_run_due()
    paperless.refresh_from_db()
    assert paperless.status == DeploymentStatus.RUNNING
    assert [e.to_status for e in paperless.events.order_by("time", "id")] == [
        "not_answering",
        "running",
    ]


def test_the_notifications_page_keeps_addresses_encrypted_and_never_shows_them(signed_in):
    secret_url = "json://127.0.0.1:9/hook?token=s3cr3t-value"
    response = signed_in.post("/settings/notifications/", {"apprise_urls": secret_url})
    assert response.status_code == 302
    assert NotificationSettings.objects.get().urls() == [secret_url]
    page = signed_in.get("/settings/notifications/")
    assert (
        "s3cr3t-value" not in page.content.decode() and "1 address set up" in page.content.decode()
    )
    assert page["Cache-Control"] == "no-store"
    bad = signed_in.post("/settings/notifications/", {"apprise_urls": "nonsense-here"})
    assert "is not an address apprise knows" in bad.content.decode()


def test_an_event_is_notified_once_to_a_webhook(paperless, local_app):
    received = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        from marketplace import notify

        notify.notification_settings_save(
            apprise_urls=f"json://127.0.0.1:{server.server_address[1]}/"
        )
        event = watch.status_change(paperless, to=DeploymentStatus.CRASH_LOOP, reason="test")
        notify.event_notify(event.pk)
        notify.event_notify(event.pk)
    finally:
        server.shutdown()
    assert len(received) == 1 and "keeps crashing" in received[0]["message"]
