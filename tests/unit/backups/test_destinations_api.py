"""The backups API without a device: destinations (no secret ever answered), snapshots
listed, refusals in plain words. The device work is in tests/integration/test_backups_lab.py."""

from __future__ import annotations

import json

import pytest

from backups.models import Destination, Policy, Repository, Snapshot
from devices.models import Device
from marketplace.models import Deployment

pytestmark = pytest.mark.django_db

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCY-secret"
S3 = {
    "name": "Lab S3",
    "kind": "s3",
    "endpoint": "http://172.30.57.1:5901",
    "bucket": "backups",
    "access_key": "AKIAEXAMPLE1234",
    "secret_key": SECRET,
    "region": "us-east-1",
}


def post(person, url, data):
    return person.client().post(url, json.dumps(data), content_type="application/json")


def test_a_destination_is_stored_with_encrypted_secrets_and_never_answers_them(cast_admin):
    answer = post(cast_admin, "/api/v1/backups/destinations", S3)
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["has_credentials"] is True
    assert (
        SECRET not in answer.content.decode() and "AKIAEXAMPLE1234" not in answer.content.decode()
    )
    listed = cast_admin.client().get("/api/v1/backups/destinations").content.decode()
    assert SECRET not in listed
    d = Destination.objects.get(pk=body["id"])
    assert d.secret_key == SECRET
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("select secret_key from backups_destination where id = %s", [d.pk])
        assert SECRET not in cursor.fetchone()[0]  # encrypted at rest


def test_patch_keeps_a_secret_left_out(cast_admin):
    d = post(cast_admin, "/api/v1/backups/destinations", S3).json()
    answer = cast_admin.client().patch(
        f"/api/v1/backups/destinations/{d['id']}",
        json.dumps({"bucket": "other-bucket"}),
        content_type="application/json",
    )
    assert answer.status_code == 200, answer.content
    stored = Destination.objects.get(pk=d["id"])
    assert (stored.bucket, stored.secret_key) == ("other-bucket", SECRET)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"bucket": "Bad;Bucket"}, "bucket"),
        ({"endpoint": "ftp://x"}, "endpoint"),
        ({"endpoint": "http://h/$(id)"}, "endpoint"),
        ({"secret_key": ""}, "secret_key"),
        ({"kind": "ftp"}, "kind"),
        ({"prefix": "../up"}, "prefix"),
    ],
)
def test_bad_input_says_which_field_and_saves_nothing(cast_admin, change, field):
    answer = post(cast_admin, "/api/v1/backups/destinations", {**S3, **change})
    assert answer.status_code == 422, answer.content
    assert answer.json()["field"] == field
    assert not Destination.objects.exists()


def test_a_second_destination_with_the_same_name_is_refused(cast_admin):
    post(cast_admin, "/api/v1/backups/destinations", S3)
    answer = post(cast_admin, "/api/v1/backups/destinations", S3)
    assert answer.status_code == 409 and answer.json()["field"] == "name"


def _deployment() -> Deployment:
    device = Device.objects.create(
        name="pi", address="10.0.0.2", port=22, username="root",
        private_key="KEY", public_key="ssh-ed25519 AAAA test", status="online",
    )  # fmt: skip
    return Deployment.objects.create(
        slug="vaultwarden", app_name="Vaultwarden", device=device, instance="a",
        project="vaultwarden-a", status="running",
    )  # fmt: skip


def test_deleting_a_destination_that_holds_snapshots_needs_its_name(cast_admin):
    from django.utils import timezone

    d = Destination.objects.create(**{**S3, "kind": "s3"})
    deployment = _deployment()
    repo = Repository.objects.create(deployment=deployment, destination=d, path="p", password="x")
    Snapshot.objects.create(
        repository=repo, deployment=deployment, destination=d, device=deployment.device,
        restic_id="a" * 64, time=timezone.now(), total_bytes=10, added_bytes=5,
    )  # fmt: skip
    client = cast_admin.client()
    refused = client.delete(f"/api/v1/backups/destinations/{d.pk}")
    assert refused.status_code == 409 and "holds 1 snapshot" in refused.json()["detail"]
    snaps = client.get(f"/api/v1/deployments/{deployment.pk}/snapshots").json()
    assert [(s["size_bytes"], s["added_bytes"], s["destination_id"]) for s in snaps] == [
        (10, 5, d.pk)
    ]
    done = client.delete(f"/api/v1/backups/destinations/{d.pk}?confirm=Lab%20S3")
    assert done.status_code == 204
    assert not Snapshot.objects.exists()


def test_backup_now_without_a_destination_says_what_to_do(cast_operator):
    deployment = _deployment()
    answer = cast_operator.client().post(f"/api/v1/deployments/{deployment.pk}/backup")
    assert answer.status_code == 409
    assert "Add one" in answer.json()["detail"]


def test_the_default_policy_exists():
    policy = Policy.objects.get(deployment__isnull=True)
    assert (policy.schedule, policy.keep_daily, policy.keep_weekly, policy.keep_monthly) == (
        "daily 03:00", 7, 4, 6,
    )  # fmt: skip


def test_the_backups_page_lists_destinations_and_apps_without_secrets(cast_viewer, cast_operator):
    Destination.objects.create(**S3)
    _deployment()
    page = cast_viewer.client().get("/backups/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Lab S3" in text and "Vaultwarden" in text and "no backup yet" in text
    assert SECRET not in text and "AKIAEXAMPLE1234" not in text
    assert "Back up now" not in text  # a Viewer only reads
    assert "Back up now" in cast_operator.client().get("/backups/").content.decode()


def test_the_commands_say_what_is_wrong():
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="No installed app is called 'nothing'"):
        call_command("backup_now", "nothing")
    _deployment()
    with pytest.raises(CommandError, match="no backup destination yet"):
        call_command("backup_now", "vaultwarden-a")
    with pytest.raises(CommandError, match="No snapshot matches"):
        call_command("restore", "deadbeef")


def test_policies_default_and_per_app(cast_admin, cast_operator):
    client = cast_admin.client()
    assert client.get("/api/v1/backups/policies").json()["schedule"] == "daily 03:00"
    changed = client.put(
        "/api/v1/backups/policies", json.dumps({"keep_daily": 10}), content_type="application/json"
    )
    assert changed.status_code == 200 and changed.json()["keep_daily"] == 10
    deployment = _deployment()
    url = f"/api/v1/deployments/{deployment.pk}/backup-policy"
    own = cast_operator.client().put(
        url, json.dumps({"schedule": "daily 04:30"}), content_type="application/json"
    )
    assert own.status_code == 200, own.content
    assert own.json() == {
        "schedule": "daily 04:30", "keep_daily": 10, "keep_weekly": 4, "keep_monthly": 6,
        "enabled": True, "own": True,
    }  # fmt: skip
    bad = client.put(
        url, json.dumps({"schedule": "weekly; rm -rf /"}), content_type="application/json"
    )
    assert bad.status_code == 422 and bad.json()["field"] == "schedule"
    nothing = client.put(
        url,
        json.dumps({"keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0}),
        content_type="application/json",
    )
    assert nothing.status_code == 422 and "keeps nothing" in nothing.json()["detail"]
    back = cast_operator.client().delete(url)
    assert back.json()["own"] is False and back.json()["schedule"] == "daily 03:00"
