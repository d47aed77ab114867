"""Shared servers' job kinds (homelab.core.jobs): registered in PoolingConfig.ready().

pool.remove   RemoveSharedServerJob   "Remove this server": the shared server no app uses,
                                      under the device's lease (shared_instance_remove_unused)

`shared_instance_remove_start` is the door's service: it refuses at once (409) what the
job would refuse (apps still use the server, or a removal of it is already under way),
then starts the job; the page and the API answer at once and follow the job.
"""

from __future__ import annotations

from devices import ssh
from devices.models import DeviceLease
from homelab.core.jobs import JobFailed, JobRunner, Target
from homelab.core.models import LIVE_JOB_STATUSES, Job
from homelab.core.services import job_enqueue
from pooling import services
from pooling.models import PooledDatabase, SharedInstance

KIND = "pool.remove"


def _target(instance: SharedInstance) -> Target:
    return Target(
        "shared_instance",
        instance.pk,
        f"shared {instance.get_engine_display()} on {instance.device.name}",
    )


def shared_instance_remove_start(*, instance: SharedInstance, user=None) -> Job:
    """Start removing a shared server no app uses: a `pool.remove` job (202).

    PoolingError (409) at once when an app still uses it or its removal is running."""
    label, device = instance.get_engine_display(), instance.device
    apps = PooledDatabase.objects.filter(instance=instance).count()
    if apps:
        raise services.PoolingError(
            f"{apps} app{'s' if apps != 1 else ''} still use{'' if apps != 1 else 's'} "
            f"the shared {label} on {device.name}: remove "
            f"{'them' if apps != 1 else 'it'} first (My apps), then this server.",
            code=409,
        )
    if Job.objects.filter(
        kind=KIND,
        target_type="shared_instance",
        target_id=str(instance.pk),
        status__in=tuple(LIVE_JOB_STATUSES),
    ).exists():
        raise services.PoolingError(
            f"The shared {label} on {device.name} is being removed already (see Activity).",
            code=409,
        )
    return job_enqueue(
        kind=KIND, target=_target(instance), user=user, params={"instance_id": instance.pk}
    )


class RemoveSharedServerJob(JobRunner):
    label = "Remove a shared server"
    timeout_seconds = 900

    def describe_error(self, exc: BaseException) -> str:
        if isinstance(exc, services.PoolingError):
            return exc.message
        if isinstance(exc, ssh.SSHError):
            return f"The device did not answer ({exc}); press Remove this server again later."
        return super().describe_error(exc)

    def run(self) -> dict:
        instance = (
            SharedInstance.objects.select_related("device")
            .filter(pk=self.params.get("instance_id"))
            .first()
        )
        if instance is None:
            raise JobFailed("This shared server is gone already; nothing to do.")
        self.secrets.append(instance.admin_password)
        with self.step(f"remove the shared {instance.get_engine_display()}") as step:
            step.message = services.shared_instance_remove_unused(instance=instance)
        return {"instance_id": instance.pk}

    @classmethod
    def interrupted(cls, job: Job) -> str:
        """Free the device lease the dead job held (its holder names the server)."""
        instance_id = (job.params or {}).get("instance_id")
        freed = DeviceLease.objects.filter(
            holder__startswith=f"pool-remove-{instance_id}-"
        ).delete()
        said = "The device's lease was freed. " if freed[0] else ""
        return said + "Press Remove this server again on the Shared databases page."
