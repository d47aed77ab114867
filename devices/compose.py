"""Commands on a device, built, retried, watched and (optionally) recorded; compose helpers.

`DeviceShell` runs argument lists over the device's pooled SSH connection
(devices.ssh.run), retries a dropped connection up to 3 times with backoff, hands every
command to its `recorder` with each secret replaced by MASK (marketplace records them as
"What I did"), and watches long commands: a device that stops answering mid-command
(powered off, its network gone) is noticed within about WATCH_INTERVAL_SECONDS *
WATCH_MISSES seconds instead of after TCP's quarter-hour of retransmissions.

The helpers below build the commands: the deploy root, the compose command of the device
and the `--wait` flags its compose version supports; and the compose file as text.
"""

from __future__ import annotations

import logging
import posixpath
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Protocol

import paramiko
import yaml
from django.conf import settings

from devices import ssh
from devices.command_output import meaningful_output
from homelab.core.masking import mask

if TYPE_CHECKING:
    from devices.models import Device

logger = logging.getLogger(__name__)

DEFAULT_DEPLOY_ROOT = "/opt/homelab/apps"
ROOT_RE = re.compile(r"^/[A-Za-z0-9._/-]*[A-Za-z0-9._-]\Z")
SSH_RETRIES = 3
SSH_BACKOFF_SECONDS = (1.0, 2.0, 4.0)
OUTPUT_TAIL_CHARS = 4000
# A command allowed to run longer than this is watched (see DeviceShell.run).
WATCH_AFTER_SECONDS = 45.0
WATCH_INTERVAL_SECONDS = 5.0
WATCH_PROBE_TIMEOUT_SECONDS = 3.0
WATCH_MISSES = 2


class StepFailed(Exception):
    """A step could not do its work; the message is for a person and says what to do."""


def tail(text: str, limit: int = OUTPUT_TAIL_CHARS) -> str:
    return text if len(text) <= limit else "…" + text[-limit:]


# ------------------------------------------------------------------- device commands
def deploy_root() -> str:
    root = str(getattr(settings, "HOMELAB_DEPLOY_ROOT", "") or DEFAULT_DEPLOY_ROOT).rstrip("/")
    if not ROOT_RE.match(root) or ".." in root.split("/"):
        raise StepFailed(
            f"HOMELAB_DEPLOY_ROOT {root!r} is not an absolute path of letters, digits, '.', '-', '_'."
        )
    return root


def compose_base(device) -> list[str]:
    command = (device.compose_command or "docker compose").split()
    if command not in (["docker", "compose"], ["docker-compose"]):
        raise StepFailed(
            f"{device.name} has no usable Docker Compose ({device.compose_command!r}); "
            "install the docker compose plugin and poll the device again."
        )
    return command


def compose_version_tuple(version: str) -> tuple[int, ...]:
    numbers = re.findall(r"\d+", version or "")
    return tuple(int(n) for n in numbers[:3])


def wait_flags(device, timeout_seconds: int) -> list[str]:
    """`--wait` exists from compose v2.1, `--wait-timeout` from v2.17."""
    if compose_base(device) != ["docker", "compose"]:
        return []
    version = compose_version_tuple(device.compose_version)
    if version >= (2, 17):
        return ["--wait", "--wait-timeout", str(timeout_seconds)]
    if version >= (2, 1):
        return ["--wait"]
    return []


def ssh_port_answers(address: str, port: int, timeout: float = WATCH_PROBE_TIMEOUT_SECONDS) -> bool:
    """Whether anything accepts a TCP connection on the device's SSH port right now."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


# ------------------------------------------------------------------------ compose text
def escape_dollars(value: str) -> str:
    """Make a literal string safe from compose interpolation: every `$` becomes `$$`."""
    return value.replace("$", "$$")


class _Dumper(yaml.SafeDumper):
    pass


def _str_representer(dumper: yaml.SafeDumper, value: str):
    # block style for multi-line text (readable "What I did"), quoted otherwise if needed
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_representer)


def dump_compose(data: dict) -> str:
    """The compose data as YAML text: keys sorted, so equal data gives equal bytes."""
    return yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=True,
        default_flow_style=False,
        allow_unicode=True,
        width=1_000_000,
        indent=2,
    )


def service_mounts(service: dict) -> list[tuple[str, str, str]]:
    """(source, target, kind) of a service's volumes; kind is volume, bind or tmpfs."""
    out = []
    for entry in service.get("volumes") or []:
        if isinstance(entry, dict):
            out.append(
                (
                    str(entry.get("source", "")),
                    str(entry.get("target", "")),
                    str(entry.get("type", "volume")),
                )
            )
            continue
        parts = str(entry).split(":")
        if len(parts) == 1:
            out.append(("", parts[0], "volume"))
        else:
            source = parts[0]
            kind = "bind" if source.startswith(("/", ".", "~")) else "volume"
            out.append((source, parts[1], kind))
    return out


# ------------------------------------------------------------------------------ shell
class CommandRecorder(Protocol):
    """Told about every command a DeviceShell sent, already masked and cut to its tail."""

    def __call__(self, command: str, exit_code: int | None, output: str, seconds: float) -> None: ...


class Shell(Protocol):
    """Commands on one device, as pooling and marketplace use them: `DeviceShell` (and
    marketplace's DeploymentShell on it) and pooling's unrecorded shell.

    `run` returns (exit code, stdout, stderr); `check` returns stdout and raises when the
    command fails, with `what` in the message and every one of `secrets` masked.
    """

    device: Device
    secrets: list[str]

    def run(
        self, args: list[str], *, timeout: float | None = None, stdin: bytes | None = None
    ) -> tuple[int, str, str]: ...

    def check(
        self,
        args: list[str],
        *,
        timeout: float | None = None,
        what: str,
        stdin: bytes | None = None,
    ) -> str: ...


class DeviceShell:
    """Commands on one device: retried when the device drops, watched while they run
    long, and handed (masked) to `recorder` when one is given.

    `lost` turns true once the device stayed unreachable through every retry; later
    commands then try once only, so undoing after a lost device takes seconds, not
    minutes (what could not be undone is kept for later by the caller).
    """

    def __init__(
        self,
        device,
        *,
        secrets: Iterable[str] = (),
        sleep=time.sleep,
        recorder: CommandRecorder | None = None,
    ):
        self.device = device
        self.secrets = [s for s in secrets if s]
        self.sleep = sleep
        self.recorder = recorder
        self.lost = False

    def _record(self, command: str, exit_code: int | None, output: str, seconds: float) -> None:
        if self.recorder is None:
            return
        self.recorder(
            mask(command, self.secrets),
            exit_code,
            mask(tail(meaningful_output(output)), self.secrets),
            round(seconds, 3),
        )

    def _retrying(self, label: str, action: Callable[[], tuple[int, str]]) -> tuple[int, str]:
        retries = 0 if self.lost else SSH_RETRIES
        for attempt in range(retries + 1):
            started = time.monotonic()
            try:
                exit_code, output = action()
            except ssh.Unreachable as exc:
                self._record(label, None, f"connection lost: {exc}", time.monotonic() - started)
                if attempt == retries:
                    self.lost = True
                    raise
                delay = SSH_BACKOFF_SECONDS[min(attempt, len(SSH_BACKOFF_SECONDS) - 1)]
                logger.info("%s: device unreachable, retry %d in %.0f s", label, attempt + 1, delay)
                self.sleep(delay)
                continue
            self.lost = False
            self._record(label, exit_code, output, time.monotonic() - started)
            return exit_code, output
        raise AssertionError("unreachable")

    def _watch(self, done: threading.Event, gone: threading.Event) -> None:
        """Until `done`: probe the device's SSH port; after WATCH_MISSES misses in a row,
        set `gone` and close the device's connection, which ends the waiting command."""
        misses = 0
        while not done.wait(WATCH_INTERVAL_SECONDS):
            if ssh_port_answers(self.device.address, self.device.port):
                misses = 0
                continue
            misses += 1
            if misses >= WATCH_MISSES:
                logger.info("%s stopped answering; closing its connection", self.device.name)
                gone.set()
                ssh.connections.close(self.device.pk)
                return

    def run(
        self, args: list[str], *, timeout: float | None = None, stdin: bytes | None = None
    ) -> tuple[int, str, str]:
        result: dict = {}
        watched = timeout is not None and timeout > WATCH_AFTER_SECONDS and self.device.pk

        def action() -> tuple[int, str]:
            done, gone = threading.Event(), threading.Event()
            if watched:
                threading.Thread(target=self._watch, args=(done, gone), daemon=True).start()
            try:
                exit_code, out, err = ssh.run(self.device, args, timeout=timeout, stdin=stdin)
            finally:
                done.set()
            if exit_code == -1 and (
                gone.is_set() or not ssh.connections.is_connected(self.device.pk)
            ):
                # the channel closed without an exit status: the connection went away
                raise ssh.Unreachable(
                    f"{self.device.name} stopped answering while the command ran.",
                    reason="closed",
                )
            result["out"], result["err"] = out, err
            return exit_code, (out + ("\n" if out and err else "") + err).strip()

        exit_code, _ = self._retrying(ssh.quote_command(args), action)
        return exit_code, result["out"], result["err"]

    def check(
        self,
        args: list[str],
        *,
        timeout: float | None = None,
        what: str,
        stdin: bytes | None = None,
    ) -> str:
        exit_code, out, err = self.run(args, timeout=timeout, stdin=stdin)
        if exit_code != 0:
            detail = mask((err or out).strip(), self.secrets)
            raise StepFailed(f"{what} failed (exit {exit_code}): {tail(detail, 1500)}")
        return out

    def write_file(
        self, path: str, data: bytes, *, mode: int = 0o600, make_dirs: bool = False
    ) -> None:
        """Write a file over one SFTP session: its folders first when `make_dirs` (only
        those missing), then a temporary file renamed into place."""

        def action() -> tuple[int, str]:
            transport = ssh.connections.transport(ssh.Target.from_device(self.device))
            try:
                sftp = paramiko.SFTPClient.from_transport(transport)
            except (paramiko.SSHException, EOFError, OSError) as exc:
                raise ssh.Unreachable(f"SFTP could not start: {exc}") from None
            try:
                if make_dirs:
                    _sftp_make_dirs(sftp, posixpath.dirname(path))
                with sftp.open(path + ".tmp", "wb") as fh:
                    # the mode before the first byte: a secret is never readable by others,
                    # not even for the moment between writing and a chmod
                    fh.chmod(mode)
                    fh.write(data)
                sftp.posix_rename(path + ".tmp", path)
            except OSError as exc:
                raise StepFailed(f"Could not write {path} on {self.device.name}: {exc}") from None
            finally:
                sftp.close()
            return 0, f"{len(data)} bytes written"

        label = f"sftp put {path} (mode {mode:o}" + (", folders made)" if make_dirs else ")")
        self._retrying(label, action)


def _sftp_make_dirs(sftp, folder: str) -> None:
    """`mkdir -p` over SFTP: one stat when the folder exists."""
    try:
        sftp.stat(folder)
        return
    except FileNotFoundError:
        pass
    parent = posixpath.dirname(folder)
    if parent and parent != folder:
        _sftp_make_dirs(sftp, parent)
    try:
        sftp.mkdir(folder, 0o755)
    except OSError:
        sftp.stat(folder)  # made meanwhile by someone else: fine; else the error stands
