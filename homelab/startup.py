"""What the control plane does once at start-up, before serving."""

from __future__ import annotations

import logging

from backups.tasks import ensure_backup_schedule
from devices.history import ensure_history_schedule
from devices.models import Device
from devices.tasks import ensure_poll_schedule
from homelab.core.services import jobs_recover_interrupted
from marketplace.health_checks import ensure_health_check_schedule
from marketplace.recovery import deployments_recover_interrupted
from scheduling.tasks import ensure_purge_schedule

logger = logging.getLogger(__name__)


def verify_encryption_key() -> None:
    """Refuse to start when stored secrets cannot be read with the current key."""
    device = Device.objects.only("id").order_by("id").first()
    if device is None:
        return
    # django-encrypted-model-fields returns the ciphertext unchanged when the key is wrong,
    # so check that what comes back is a key, not a Fernet token.
    value = Device.objects.values_list("private_key", flat=True).get(pk=device.pk)
    if not value.lstrip().startswith("-----BEGIN"):
        raise RuntimeError(
            "Saved device logins cannot be read with the encryption key in the data directory. "
            "Restore the original field_encryption.key from your backup; a new key is never "
            "generated over existing data."
        )


def prepare_control_plane() -> None:
    """1. Verify the key. 2. Mark jobs whose worker died interrupted (their kinds clean up)
    and recover deployments a restart interrupted. 3. Make sure recurring schedules exist."""
    verify_encryption_key()
    jobs_recover_interrupted()
    deployments_recover_interrupted()
    ensure_poll_schedule()
    ensure_purge_schedule()
    ensure_health_check_schedule()
    ensure_history_schedule()
    ensure_backup_schedule()
