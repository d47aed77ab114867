"""The requirements check of the add-device wizard, built from one metrics report."""

from __future__ import annotations

from dataclasses import dataclass, field

import paramiko

from devices import metrics as metrics_module
from devices import ssh
from devices.models import DeviceStatus
from devices.polling import docker_status
from devices.status import help_for_status
from homelab.core.formatting import format_bytes

# Below this much free space on Docker's filesystem the pre-flight warns.
MIN_FREE_DISK_BYTES = 2 * 1024**3


@dataclass
class CheckStep:
    """One line of the wizard's requirements check: ok / failed / warning with words."""

    key: str  # "connect", "login", "docker", "compose", "arch", "os", "disk"
    label: str  # "Device answers", "Login works", "Docker is installed and running", ...
    ok: bool
    detail: str = ""  # e.g. "Docker 20.10.24", "x86_64", or what went wrong
    fixes: list[str] = field(default_factory=list)


@dataclass
class ConnectionCheck:
    ok: bool
    status: str  # DeviceStatus value the device would get
    steps: list[CheckStep]
    host_key_fingerprint: str = ""  # SHA256:... of the key the device presented
    facts: dict = field(default_factory=dict)  # arch, os_name, docker_version, compose_version...


def transport_runner(transport: paramiko.Transport):
    def runner(args: list[str]):
        return ssh.exec_on(transport, ssh.quote_command(args))

    return runner


def preflight_steps(m: metrics_module.Metrics, *, username: str) -> list[CheckStep]:
    _status, detail = docker_status(m, username)
    docker_fixes = help_for_status(
        DeviceStatus.DOCKER_MISSING, address="", port=22, username=username, detail=detail
    )["fixes"]
    steps = []
    if m.docker_ok:
        steps.append(
            CheckStep(
                "docker", "Docker is installed and running", True, f"Docker {m.docker_version}"
            )
        )
    else:
        steps.append(
            CheckStep("docker", "Docker is installed and running", False, detail, docker_fixes)
        )
    if m.compose_ok:
        steps.append(
            CheckStep(
                "compose",
                "Docker Compose is available",
                True,
                f"{m.compose_command} {m.compose_version}",
            )
        )
    else:
        steps.append(
            CheckStep(
                "compose",
                "Docker Compose is available",
                False,
                "Neither the 'docker compose' plugin nor 'docker-compose' was found.",
                [
                    (
                        "Install the Compose plugin: apt-get install docker-compose-plugin "
                        "(or docker-compose on older systems)."
                    )
                ],
            )
        )
    steps.append(CheckStep("arch", "Processor type", bool(m.arch), m.arch or "unknown"))
    steps.append(CheckStep("os", "Operating system", bool(m.os_name), m.os_name or "unknown"))
    free = None
    if m.storage_total_bytes is not None and m.storage_used_bytes is not None:
        free = max(m.storage_total_bytes - m.storage_used_bytes, 0)
    where = m.docker_root_dir or m.storage_path or "/"
    if free is None:
        steps.append(
            CheckStep(
                "disk",
                "Free disk space",
                False,
                "Could not read the free space.",
                ["Check that the df command works on the device."],
            )
        )
    elif free < MIN_FREE_DISK_BYTES:
        steps.append(
            CheckStep(
                "disk",
                "Free disk space",
                False,
                f"Only {_gb(free)} free on {where}.",
                ["Free up space on the device (docker system prune removes unused images)."],
            )
        )
    else:
        steps.append(CheckStep("disk", "Free disk space", True, f"{_gb(free)} free on {where}"))
    return steps


def _gb(value: int) -> str:
    return format_bytes(value)


# --- services -------------------------------------------------------------------------------
