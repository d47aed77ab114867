"""The device shell of one deployment: every command it sends is recorded, masked, as a
DeploymentCommand ("What I did").

The shell itself (retries, the watchdog, SFTP) is the device's: devices.compose.DeviceShell.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from devices.compose import DeviceShell
from marketplace.models import DeploymentCommand


class DeploymentShell(DeviceShell):
    """Commands on the deployment's device, recorded for the deployment; `record=False`
    before the deployment is saved (create's quick check)."""

    def __init__(
        self, deployment, *, secrets: Iterable[str] = (), sleep=time.sleep, record: bool = True
    ):
        self.deployment = deployment
        super().__init__(
            deployment.device,
            secrets=secrets,
            sleep=sleep,
            recorder=self._record_command if record else None,
        )

    def _record_command(
        self, command: str, exit_code: int | None, output: str, seconds: float
    ) -> None:
        DeploymentCommand.objects.create(
            deployment_id=self.deployment.pk,
            command=command,
            exit_code=exit_code,
            output=output,
            seconds=seconds,
        )
