"""Scheduled backups: which apps are due, by their policy's daily slot."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from backups import tasks
from backups.models import Destination, Policy
from devices.models import Device
from homelab.core.models import Job
from marketplace.models import Deployment

pytestmark = pytest.mark.django_db


def test_last_slot():
    at = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    assert tasks.last_slot("daily 03:00", at) == datetime(2026, 12, 5, 3, 0, tzinfo=UTC)
    assert tasks.last_slot("daily 13:30", at) == datetime(2026, 12, 4, 13, 30, tzinfo=UTC)


def _app(instance: str) -> Deployment:
    device = Device.objects.get_or_create(
        name="pi", address="10.0.0.2", port=22, username="root",
        defaults={"private_key": "KEY", "public_key": "ssh-ed25519 AAAA t", "status": "online"},
    )[0]  # fmt: skip
    return Deployment.objects.create(
        slug="vaultwarden", app_name="Vaultwarden", device=device, instance=instance,
        project=f"vaultwarden-{instance}", status="running",
    )  # fmt: skip


def test_due_once_per_slot_by_policy_and_only_with_a_destination():
    a, b, c = _app("a"), _app("b"), _app("c")
    now = datetime(2026, 12, 5, 3, 10, tzinfo=UTC)
    assert tasks.due_deployments(now=now) == []  # no destination yet
    Destination.objects.create(name="S3", kind="s3", endpoint="http://h:9000", bucket="bk")
    Policy.objects.create(deployment=b, enabled=False)
    Policy.objects.create(deployment=c, schedule="daily 04:00")
    assert tasks.due_deployments(now=now) == [a, c]  # c: yesterday's 04:00 slot
    Job.objects.create(kind="backup.run", target_type="deployment", target_id=str(a.pk))
    Job.objects.create(kind="backup.run", target_type="deployment", target_id=str(c.pk))
    assert tasks.due_deployments(now=now) == []
