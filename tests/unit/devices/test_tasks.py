"""The polling schedule and the sweep that queues one task per device (no device reached)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import OrmQ, Schedule

from devices import tasks
from devices.models import Device, DeviceStatus

pytestmark = pytest.mark.django_db


def _device(name: str, status=DeviceStatus.ONLINE) -> Device:
    return Device.objects.create(
        name=name,
        address="192.0.2.10",
        username="root",
        private_key="x",
        public_key="y",
        status=status,
    )


def test_the_schedule_is_created_once_and_kept_up_to_date(settings):
    settings.POLL_INTERVAL_SECONDS = 30
    tasks.ensure_poll_schedule()
    tasks.ensure_poll_schedule()
    schedule = Schedule.objects.get(name=tasks.POLL_SCHEDULE_NAME)
    assert schedule.func == "devices.tasks.poll_all"
    assert schedule.schedule_type == Schedule.MINUTES and schedule.minutes == 1
    assert schedule.intended_date_kwarg == "scheduled_for"
    settings.POLL_INTERVAL_SECONDS = 300
    tasks.ensure_poll_schedule()
    assert Schedule.objects.get(name=tasks.POLL_SCHEDULE_NAME).minutes == 5
    assert Schedule.objects.filter(name=tasks.POLL_SCHEDULE_NAME).count() == 1


def test_a_sweep_rearms_the_schedule_one_interval_after_its_intended_time(settings):
    settings.POLL_INTERVAL_SECONDS = 30
    tasks.ensure_poll_schedule()
    intended = timezone.now() - timedelta(seconds=2)
    tasks.poll_all(scheduled_for=intended.isoformat())
    next_run = Schedule.objects.get(name=tasks.POLL_SCHEDULE_NAME).next_run
    assert abs((next_run - intended).total_seconds() - 30) < 0.01


def test_a_sweep_queues_one_poll_per_device_but_none_for_a_changed_identity(settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": False}
    _device("a")
    _device("b", status=DeviceStatus.OFFLINE)
    _device("c", status=DeviceStatus.HOST_KEY_CHANGED)
    before = OrmQ.objects.count()
    assert tasks.poll_all() == 2
    assert OrmQ.objects.count() - before == 2


def test_polling_a_removed_device_is_not_an_error():
    assert tasks.poll_device(987654) == "removed"


def test_metric_history_older_than_the_retention_is_pruned(settings):
    from devices.models import DeviceMetric
    from devices.services import metrics_prune

    settings.METRIC_RETENTION_DAYS = 8
    device = _device("a")
    now = timezone.now()
    DeviceMetric.objects.create(device=device, time=now - timedelta(days=9), online=True)
    kept = DeviceMetric.objects.create(device=device, time=now - timedelta(days=7), online=True)
    assert metrics_prune() == 1
    assert list(DeviceMetric.objects.values_list("pk", flat=True)) == [kept.pk]
