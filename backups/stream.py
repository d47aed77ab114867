"""A long restic command on a device, read line by line while it runs.

DeviceShell.run returns the output at the end; a backup of gigabytes needs its progress
while it runs (restic's `--json` status lines: percent, bytes, files, ETA) and must stop
when a person cancels. This opens one SSH channel on the device's pooled connection
(the same one DeviceShell uses), sends the env lines on stdin, hands every stdout line to
`on_line`, and every POLL_SECONDS asks `should_stop()`; when it says yes, `stop_args`
(a `docker stop` of the named restic container) runs on the device and StreamStopped is
raised. The command is recorded (masked) like DeviceShell's.
"""

from __future__ import annotations

import select
import time
from collections.abc import Callable

from django.conf import settings

from devices import ssh
from devices.ssh.device import _refuse_changed_host_key

POLL_SECONDS = 2.0


class StreamStopped(Exception):
    """should_stop() said yes; the container was stopped."""


def run_streaming(
    shell,
    args: list[str],
    *,
    stdin: bytes,
    timeout: float,
    on_line: Callable[[str], None],
    should_stop: Callable[[], bool],
    stop_args: list[str],
) -> tuple[int, str, str]:
    device = shell.device
    _refuse_changed_host_key(device)
    command = ssh.quote_command(args)
    started = time.monotonic()
    transport = ssh.connections.transport(ssh.Target.from_device(device))
    channel = transport.open_session(timeout=settings.SSH_CONNECT_TIMEOUT_SECONDS)
    out, err, pending = bytearray(), bytearray(), bytearray()
    code = -1
    try:
        channel.exec_command(command)
        channel.sendall(stdin)
        channel.shutdown_write()
        deadline = started + timeout
        next_poll = started + POLL_SECONDS
        while True:
            while channel.recv_ready():
                chunk = channel.recv(65536)
                out += chunk
                pending += chunk
                while b"\n" in pending:
                    line, _, rest = bytes(pending).partition(b"\n")
                    pending = bytearray(rest)
                    on_line(line.decode("utf-8", "replace"))
            while channel.recv_stderr_ready():
                err += channel.recv_stderr(65536)
            if (
                channel.exit_status_ready()
                and channel.eof_received
                and not channel.recv_ready()
                and not channel.recv_stderr_ready()
            ):
                break
            now = time.monotonic()
            if now >= next_poll:
                next_poll = now + POLL_SECONDS
                if should_stop():
                    shell.run(stop_args, timeout=60)
                    raise StreamStopped
            if now > deadline:
                shell.run(stop_args, timeout=60)
                raise ssh.CommandTimeout(
                    f"The command did not finish within {timeout:g} s.", reason="timeout"
                )
            select.select([channel], [], [], 0.5)
        code = channel.recv_exit_status()
    finally:
        channel.close()
        text = (out + b"\n" + err).decode("utf-8", "replace").strip()
        shell._record(command, code, text, time.monotonic() - started)
    return code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
