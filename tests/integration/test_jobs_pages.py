"""Jobs through their doors: the API, the Activity pages and the live consumer (Django's
test client and Channels' communicator; no device, no worker)."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from homelab.core.jobs import JobRunner, Target, register_job_kind
from homelab.core.models import Job, JobStatus, JobStep
from homelab.core.services import job_enqueue

pytestmark = pytest.mark.django_db

SECRET = "Api-Secret-Never-Shown-99"


class Greets(JobRunner):
    label = "Say hello"

    def run(self):
        self.secrets = [SECRET]
        with self.step("say hello") as step:
            step.message = f"hello with {SECRET}"
        self.item("pi-1", status="ok", message="answered")
        return {"greeted": 1}


class Refuses(JobRunner):
    label = "Refuse politely"

    def run(self):
        with self.step("ask"):
            from homelab.core.jobs import JobFailed

            raise JobFailed("The device refused. Accept its new host key and try again.")


register_job_kind("test.greets", Greets)
register_job_kind("test.refuses", Refuses)


@pytest.fixture
def owner(django_user_model):
    return django_user_model.objects.create_superuser("owner", password="pw-Owner-123")


@pytest.fixture
def signed_in(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def finished(owner):
    return job_enqueue(
        kind="test.greets", target=Target("device", 3, "pi-1"), user=owner, sync=True
    )


@pytest.fixture
def failed():
    return job_enqueue(kind="test.refuses", sync=True)


# ------------------------------------------------------------------------------ API
def test_the_api_lists_jobs_newest_first_with_filters(signed_in, finished, failed):
    everything = signed_in.get("/api/v1/jobs").json()
    only_failed = signed_in.get("/api/v1/jobs?status=failed").json()
    on_device = signed_in.get("/api/v1/jobs?target=device:3").json()
    by_kind = signed_in.get("/api/v1/jobs?kind=test.greets&limit=1").json()

    assert [j["id"] for j in everything] == [failed.pk, finished.pk]
    assert [j["id"] for j in only_failed] == [failed.pk]
    assert [j["id"] for j in on_device] == [finished.pk]
    assert [j["kind"] for j in by_kind] == ["test.greets"]
    assert signed_in.get("/api/v1/jobs?target=device;rm").status_code == 422


def test_the_api_answers_one_job_whole_without_secrets(signed_in, finished):
    response = signed_in.get(f"/api/v1/jobs/{finished.pk}")

    assert response.status_code == 200
    body = response.json()
    assert SECRET not in response.content.decode()
    assert {k: body[k] for k in ("id", "kind", "status", "result", "error")} == {
        "id": finished.pk,
        "kind": "test.greets",
        "status": "succeeded",
        "result": {"greeted": 1},
        "error": "",
    }
    assert body["target"] == {"type": "device", "id": "3", "label": "pi-1", "url": None}
    assert [(s["name"], s["status"], s["message"]) for s in body["steps"]] == [
        ("say hello", "ok", "hello with ••••••")
    ]
    assert [(i["label"], i["status"]) for i in body["items"]] == [("pi-1", "ok")]
    assert body["progress"]["percent"] == 100.0
    assert body["started_at"] and body["finished_at"]
    assert "params" not in body


def test_the_api_says_404_for_an_unknown_job_and_409_for_cancelling_a_finished_one(
    signed_in, finished
):
    missing = signed_in.get("/api/v1/jobs/999999")
    too_late = signed_in.post(f"/api/v1/jobs/{finished.pk}/cancel")

    assert missing.status_code == 404
    assert too_late.status_code == 409
    assert "already finished" in too_late.json()["detail"]


def test_the_api_cancels_a_waiting_job(signed_in):
    job = job_enqueue(kind="test.greets")

    response = signed_in.post(f"/api/v1/jobs/{job.pk}/cancel")

    assert response.status_code == 202
    assert response.json()["status"] == "cancelled"
    assert "Cancelled by owner" in response.json()["error"]


def test_the_api_wants_a_signed_in_person(client, finished):
    assert client.get("/api/v1/jobs").status_code == 401
    assert client.get(f"/api/v1/jobs/{finished.pk}").status_code == 401
    assert client.post(f"/api/v1/jobs/{finished.pk}/cancel").status_code == 401


# ---------------------------------------------------------------------------- pages
def test_the_activity_page_lists_jobs_with_filters(signed_in, finished, failed):
    page = signed_in.get(reverse("activity")).content.decode()
    rows = page[page.index('id="job-rows"') :]
    only_failed = signed_in.get(reverse("activity") + "?status=failed").content.decode()
    only_failed = only_failed[only_failed.index('id="job-rows"') :]

    assert "Say hello" in rows and "Refuse politely" in rows
    assert rows.index("Refuse politely") < rows.index("Say hello")  # newest first
    assert 'href="/activity/"' in page and ">Activity<" in page  # in the navigation
    assert "Refuse politely" in only_failed and "Say hello" not in only_failed
    assert "Accept its new host key" in only_failed


def test_the_activity_rows_answer_htmx_alone(signed_in, finished):
    partial = signed_in.get(reverse("activity"), headers={"HX-Request": "true"})

    assert partial.content.decode().lstrip().startswith('<div id="job-rows"')


def test_the_job_page_shows_steps_items_and_no_secret(signed_in, finished):
    page = signed_in.get(reverse("job_detail", args=[finished.pk])).content.decode()

    assert "Say hello: pi-1" in page
    assert 'id="step-' in page and "Say hello" in page and "hello with ••••••" in page
    assert "pi-1" in page and "answered" in page
    assert SECRET not in page
    assert "data-job-ws" not in page  # finished: nothing to follow


def test_a_running_job_page_follows_its_websocket(signed_in):
    job = Job.objects.create(kind="test.greets", status=JobStatus.RUNNING)
    JobStep.objects.create(job=job, order=1, name="say hello")

    page = signed_in.get(reverse("job_detail", args=[job.pk])).content.decode()

    assert f'data-job-ws="/ws/jobs/{job.pk}/"' in page and "js/jobs.js" in page
    assert "Cancel" in page


def test_the_cancel_button_cancels_a_waiting_job(signed_in):
    job = job_enqueue(kind="test.greets")

    response = signed_in.post(reverse("job_cancel", args=[job.pk]), follow=True)

    assert Job.objects.get(pk=job.pk).status == JobStatus.CANCELLED
    assert "Cancelled before it started" in response.content.decode()


def test_the_pages_want_a_signed_in_person(client, finished):
    for url in (
        reverse("activity"),
        reverse("job_detail", args=[finished.pk]),
    ):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert client.post(reverse("job_cancel", args=[finished.pk])).status_code == 302


def test_an_unknown_job_page_is_404(signed_in):
    assert signed_in.get(reverse("job_detail", args=[999999])).status_code == 404


# -------------------------------------------------------------------- the consumer
def _communicator(user, job_id: int):
    from channels.routing import URLRouter
    from channels.testing import WebsocketCommunicator

    from homelab.routing import websocket_urlpatterns

    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/jobs/{job_id}/")
    communicator.scope["user"] = user
    return communicator


@pytest.mark.django_db(transaction=True)
def test_the_consumer_sends_new_and_changed_steps_then_done(django_user_model):
    from asgiref.sync import async_to_sync
    from channels.db import database_sync_to_async

    user = django_user_model.objects.create_user("watcher", password="pw-Watch-123")
    job = Job.objects.create(kind="test.greets", status=JobStatus.RUNNING)
    JobStep.objects.create(job=job, order=1, name="first", status="ok")
    running = JobStep.objects.create(job=job, order=2, name="second")

    @database_sync_to_async
    def finish():
        JobStep.objects.filter(pk=running.pk).update(status="ok", message="second done")
        JobStep.objects.create(job=job, order=3, name="third", status="ok")
        Job.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED)

    async def scenario():
        communicator = _communicator(user, job.pk)
        connected, _ = await communicator.connect()
        assert connected
        first = [json.loads(await communicator.receive_from(timeout=5)) for _ in range(3)]
        assert [(m["type"], m.get("name"), m["status"]) for m in first] == [
            ("step", "first", "ok"),
            ("step", "second", "running"),
            ("status", None, "running"),
        ]
        await finish()
        rest = []
        while not rest or rest[-1]["type"] != "done":
            rest.append(json.loads(await communicator.receive_from(timeout=5)))
        assert [(m["type"], m.get("name"), m["status"]) for m in rest] == [
            ("step", "second", "ok"),
            ("step", "third", "ok"),
            ("status", None, "succeeded"),
            ("done", None, "succeeded"),
        ]
        assert "second done" in rest[0]["html"] and 'id="job"' in rest[-1]["html"]
        closed = await communicator.receive_output(timeout=5)
        assert closed["type"] == "websocket.close"

    async_to_sync(scenario)()


@pytest.mark.django_db(transaction=True)
def test_the_consumer_refuses_strangers_and_unknown_jobs(django_user_model):
    from asgiref.sync import async_to_sync
    from django.contrib.auth.models import AnonymousUser

    user = django_user_model.objects.create_user("watcher", password="pw-Watch-123")
    job = Job.objects.create(kind="test.greets")

    async def scenario():
        for who, job_id in ((AnonymousUser(), job.pk), (user, 999999)):
            communicator = _communicator(who, job_id)
            connected, _ = await communicator.connect()
            assert not connected

    async_to_sync(scenario)()


# ---------------------------------------------------------------------------- admin
def test_the_admin_shows_jobs_read_only_with_their_steps(client, django_user_model, finished):
    admin = django_user_model.objects.create_superuser("root", password="pw-Root-123")
    client.force_login(admin)

    listing = client.get("/admin/core/job/?status__exact=succeeded")
    one = client.get(f"/admin/core/job/{finished.pk}/change/")

    assert listing.status_code == 200 and "pi-1" in listing.content.decode()
    assert one.status_code == 200
    page = one.content.decode()
    assert "say hello" in page and SECRET not in page
    assert 'name="_save"' not in page  # nothing to change
    assert client.get("/admin/core/job/add/").status_code == 403
