"""The calls made with a Device: commands, docker-py, the kept shell, over its connection.

Each refuses a device whose host key changed: nothing reaches it until the user accepts
the new key.
"""

from __future__ import annotations

import re

from devices.containers import app_containers_from_list, inspect_troubled, stored
from devices.keys import HostKey
from devices.ssh.errors import HostKeyChanged
from devices.ssh.manager import connections
from devices.ssh.transport import Target


def run(
    device, command_args: list[str], *, timeout: float | None = None, stdin: bytes | None = None
) -> tuple[int, str, str]:
    """Run a command (a list of arguments, each quoted) on a device over its connection.

    Refuses a device whose host key changed: nothing runs until the user accepts the key.
    """
    _refuse_changed_host_key(device)
    return connections.run(Target.from_device(device), command_args, timeout=timeout, stdin=stdin)


def docker_client(device):
    """The device's docker-py `DockerClient`, over the device's one long-lived connection.

    Kept per device and process like the connection itself, and rebuilt when the
    connection is. Refuses a device whose host key changed.
    """
    _refuse_changed_host_key(device)
    return connections.docker(Target.from_device(device))


def docker_summary(device) -> dict:
    """`ServerVersion`, `ContainersRunning` and our apps' `Containers` from one cheap
    Docker API request.

    GET /containers/json?all=1 lists every container with its state and labels, and every
    answer of the daemon carries `Server: Docker/<version> (<os>)`. The same figures from
    GET /info cost the daemon 4-5 times as much (it also counts images, drivers and
    plugins), on every poll. Our apps' containers that look wrong are inspected too
    (devices.containers). The requests go over the device's kept dial-stdio channel
    (devices.kept).
    """
    _refuse_changed_host_key(device)
    target = Target.from_device(device)
    headers, containers = connections.docker_get(target, "/containers/json?all=1")
    match = re.match(r"Docker/(\S+)", headers.get("Server", ""))
    version = match.group(1) if match else ""
    if not version:
        _headers, answer = connections.docker_get(target, "/version")
        version = str(answer.get("Version", ""))
    ours = app_containers_from_list(containers)
    if ours:
        ours = inspect_troubled(ours, lambda path: connections.docker_get(target, path))
    return {
        "ServerVersion": version,
        "ContainersRunning": sum(1 for c in containers if c.get("State") == "running"),
        "Containers": stored(ours),
    }


def shell_call(device, *, prelude: str, command: str, timeout: float | None = None) -> str:
    """Run a command line in the device's kept shell (see `ConnectionManager.shell_call`)."""
    _refuse_changed_host_key(device)
    return connections.shell_call(
        Target.from_device(device), prelude=prelude, command=command, timeout=timeout
    )


def _refuse_changed_host_key(device) -> None:
    if getattr(device, "status", None) == "host_key_changed":
        raise HostKeyChanged(
            old=HostKey(device.host_key_type, device.host_key),
            new=HostKey(device.offered_host_key_type, device.offered_host_key),
        )
