"""The hourly purge of old reservations: scheduled at start-up, deletes expired rows only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.module_loading import import_string
from django_q.models import Schedule

from homelab.startup import prepare_control_plane
from scheduling import tasks
from scheduling.models import Reservation
from tests.unit.scheduling.factories import make_device

pytestmark = pytest.mark.django_db


def test_start_up_preparation_schedules_the_hourly_purge_once():
    prepare_control_plane()
    prepare_control_plane()
    schedule = Schedule.objects.get(name=tasks.PURGE_SCHEDULE_NAME)
    assert schedule.schedule_type == Schedule.HOURLY
    assert schedule.repeats == -1
    assert import_string(schedule.func) is tasks.purge_reservations
    assert Schedule.objects.filter(name=tasks.PURGE_SCHEDULE_NAME).count() == 1


def test_the_schedule_is_put_back_when_someone_changed_it():
    tasks.ensure_purge_schedule()
    Schedule.objects.filter(name=tasks.PURGE_SCHEDULE_NAME).update(
        schedule_type=Schedule.ONCE, repeats=0
    )
    tasks.ensure_purge_schedule()
    schedule = Schedule.objects.get(name=tasks.PURGE_SCHEDULE_NAME)
    assert (schedule.schedule_type, schedule.repeats) == (Schedule.HOURLY, -1)


def test_the_purge_deletes_reservations_that_expired_over_a_day_ago_only():
    device = make_device("server-01", ram_free_gb=8)
    now = timezone.now()

    def reservation(label: str, *, expires_in: timedelta, released: bool = False) -> Reservation:
        return Reservation.objects.create(
            device=device,
            label=label,
            ram_bytes=1,
            expires_at=now + expires_in,
            released_at=now if released else None,
        )

    reservation("expired two days ago", expires_in=-timedelta(days=2))
    kept = {
        reservation("expired an hour ago", expires_in=-timedelta(hours=1)).pk,
        reservation("active", expires_in=timedelta(minutes=10)).pk,
        reservation("released, not expired", expires_in=timedelta(minutes=10), released=True).pk,
    }
    assert tasks.purge_reservations() == 1
    assert set(Reservation.objects.values_list("pk", flat=True)) == kept
    assert tasks.purge_reservations() == 0
