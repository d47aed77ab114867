"""The per-process connection manager: one live transport per device, reused."""

from __future__ import annotations

import http.client
import logging
import os
import threading
import time

import paramiko
from django.conf import settings

from devices.kept import DockerHTTP, KeptShell, build_docker_client
from devices.ssh.errors import CommandTimeout, Unreachable
from devices.ssh.transport import Target, exec_on, open_transport, quote_command

logger = logging.getLogger(__name__)

# A connection older than this is replaced at its next use, so a host key that changed
# without the device dropping our session is still noticed.
MAX_CONNECTION_AGE_SECONDS = 3600


class _Entry:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.transport: paramiko.Transport | None = None
        self.cache_key: tuple | None = None
        self.opened_at = 0.0
        self.connects = 0  # how many times this entry opened a transport (tests, benchmarks)
        self.docker = None  # docker-py client bound to `docker_transport`
        self.docker_transport: paramiko.Transport | None = None
        self.shells: dict[str, KeptShell] = {}  # by prelude, see devices.kept
        self.docker_http: DockerHTTP | None = None


class ConnectionManager:
    """One live transport per device in this process.

    django-q2 workers are separate processes, each with its own manager; within a process a
    lock per device makes concurrent callers share one transport.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[object, _Entry] = {}
        self._pid = os.getpid()

    def _entry(self, target: Target) -> _Entry:
        with self._lock:
            if self._pid != os.getpid():
                # A forked child must not touch the parent's sockets.
                self._entries = {}
                self._pid = os.getpid()
            key = (
                target.device_id
                if target.device_id is not None
                else (target.address, target.port, target.username)
            )
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry()
            return entry

    def _live_transport(
        self, target: Target, entry: _Entry, *, fresh: bool = False
    ) -> paramiko.Transport:
        """Caller holds entry.lock."""
        wanted = target.cache_key()
        current = entry.transport
        too_old = time.monotonic() - entry.opened_at > MAX_CONNECTION_AGE_SECONDS
        if current is not None and (
            fresh or too_old or entry.cache_key != wanted or not current.is_active()
        ):
            self._drop(entry)
        if entry.transport is None:
            transport, _seen = open_transport(target)
            entry.transport, entry.cache_key = transport, wanted
            entry.opened_at = time.monotonic()
            entry.connects += 1
        return entry.transport

    def transport(self, target: Target) -> paramiko.Transport:
        """The device's live transport (connecting if needed), e.g. for SFTP or docker-py."""
        entry = self._entry(target)
        with entry.lock:
            return self._live_transport(target, entry)

    def docker(self, target: Target):
        """A docker-py client over the device's transport, cached while that transport lives."""
        entry = self._entry(target)
        with entry.lock:
            transport = self._live_transport(target, entry)
            if entry.docker is not None and entry.docker_transport is transport:
                return entry.docker

        def current_transport() -> paramiko.Transport:
            # Always the entry's present transport: if it died, the manager reconnects
            # (with the host key check) before the next request.
            with entry.lock:
                return self._live_transport(target, entry)

        client = build_docker_client(current_transport)
        with entry.lock:
            if entry.transport is transport:
                entry.docker, entry.docker_transport = client, transport
        return client

    def run(
        self,
        target: Target,
        args: list[str],
        *,
        timeout: float | None = None,
        stdin: bytes | None = None,
    ) -> tuple[int, str, str]:
        command = quote_command(args)
        entry = self._entry(target)

        def attempt(number: int):
            with entry.lock:
                transport = self._live_transport(target, entry, fresh=number == 2)
            return exec_on(transport, command, timeout=timeout, stdin=stdin)

        # A session that could not start means the transport died under us: the command
        # had not started, so running it on a new transport is safe.
        return self._twice(target, entry, attempt, retry="reconnecting")

    def shell_call(
        self, target: Target, *, prelude: str, command: str, timeout: float | None = None
    ) -> str:
        """Run `command` in the device's kept shell (devices.kept) set up with `prelude`.

        The shell is started on first use and kept with the connection. When it fails (the
        device restarted sshd, someone killed it, the transport dropped), a new one is
        started and the command sent again, once: commands sent here must be safe to repeat
        (the metrics script only reads). A command that timed out is not repeated.
        """
        timeout = timeout or settings.SSH_COMMAND_TIMEOUT_SECONDS
        entry = self._entry(target)

        def attempt(_number: int) -> str:
            with entry.lock:
                transport = self._live_transport(target, entry)
                shell = entry.shells.get(prelude)
                if shell is None or shell.transport is not transport or not shell.alive:
                    if shell is not None:
                        shell.close()
                    shell = entry.shells[prelude] = KeptShell(
                        transport, prelude, timeout=settings.SSH_CONNECT_TIMEOUT_SECONDS
                    )
            try:
                return shell.call(command, timeout=timeout)
            except BaseException:
                with entry.lock:
                    if entry.shells.get(prelude) is shell:
                        del entry.shells[prelude]
                raise

        return self._twice(target, entry, attempt, retry="starting a new shell")

    def _twice(self, target: Target, entry: _Entry, attempt, *, retry: str):
        """attempt(1), and once more after an SSH-level failure; then Unreachable."""
        for number in (1, 2):
            try:
                return attempt(number)
            except CommandTimeout:
                raise
            except (paramiko.SSHException, EOFError, OSError) as exc:
                logger.info(
                    "SSH work on %s failed (%s); %s", target.address, type(exc).__name__, retry
                )
                if number == 2:
                    with entry.lock:
                        self._drop(entry)
                    raise Unreachable(
                        f"The connection to {target.address} keeps dropping.", reason="closed"
                    ) from None
        raise AssertionError("unreachable")

    def docker_get(self, target: Target, path: str) -> tuple[dict, object]:
        """GET a Docker API path over the device's kept dial-stdio channel (devices.kept).

        Returns (headers, JSON). A channel that died is replaced once.
        """
        entry = self._entry(target)
        for attempt in (1, 2):
            with entry.lock:
                transport = self._live_transport(target, entry)
                conn = entry.docker_http
                if conn is None or conn.transport is not transport:
                    if conn is not None:
                        conn.close()
                    conn = entry.docker_http = DockerHTTP(
                        transport, timeout=settings.SSH_COMMAND_TIMEOUT_SECONDS
                    )
            try:
                return conn.get(path)
            except (http.client.HTTPException, paramiko.SSHException, EOFError, OSError):
                # http.client raises RemoteDisconnected when the kept channel had ended.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def adopt(self, target: Target, transport: paramiko.Transport) -> None:
        """Keep an already-open, already-verified transport as the device's connection."""
        entry = self._entry(target)
        with entry.lock:
            if entry.transport is not None and entry.transport is not transport:
                entry.transport.close()
            entry.transport, entry.cache_key = transport, target.cache_key()
            entry.opened_at = time.monotonic()

    def close(self, device_id: int) -> None:
        with self._lock:
            entry = self._entries.pop(device_id, None)
        if entry is not None:
            with entry.lock:
                self._drop(entry)

    def close_all(self) -> None:
        with self._lock:
            entries, self._entries = list(self._entries.values()), {}
        for entry in entries:
            with entry.lock:
                self._drop(entry)

    def connects(self, device_id: int) -> int:
        with self._lock:
            entry = self._entries.get(device_id)
        return entry.connects if entry else 0

    def is_connected(self, device_id: int) -> bool:
        with self._lock:
            entry = self._entries.get(device_id)
        return bool(entry and entry.transport and entry.transport.is_active())

    @staticmethod
    def _drop(entry: _Entry) -> None:
        for shell in entry.shells.values():
            shell.close()
        if entry.docker_http is not None:
            entry.docker_http.close()
        entry.shells, entry.docker_http = {}, None
        if entry.docker is not None:
            try:
                entry.docker.close()
            except Exception:
                logger.debug("Closing a docker client failed")
        if entry.transport is not None:
            entry.transport.close()
        entry.transport, entry.cache_key = None, None
        entry.docker, entry.docker_transport = None, None


connections = ConnectionManager()
