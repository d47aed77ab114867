"""SSH to devices: one long-lived connection per device, pinned host keys, keys from memory.

What this module promises:

1. One paramiko `Transport` per device and process, reused by every command and poll. A
   transport that died is replaced transparently, once, before a command starts; a command
   that already started is never re-run.
2. The device's host key is checked before authentication on every (re)connect. A pinned key
   that differs raises `HostKeyChanged` (old and new SHA256 fingerprints); the connection is
   closed at once, so neither a password nor a command ever reaches that machine.
3. No agent, no ~/.ssh files, no ~/.ssh/config: keys are parsed from text held in memory.
4. Every argument of a command is quoted with `shlex.quote`; callers pass a list.
5. Passwords are used only by `install_key_with_password` and never stored, logged or put in
   an exception message.

Errors are `SSHError` subclasses carrying the device status they imply: `Unreachable`
(offline), `AuthFailed` (auth_failed), `HostKeyChanged` (host_key_changed).
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import logging
import os
import re
import select
import shlex
import socket
import threading
import time
from dataclasses import dataclass, field

import paramiko
from django.conf import settings

from devices.kept import DockerHTTP, KeptShell, build_docker_client
from devices.keys import (  # noqa: F401  (part of this module's interface)
    KEY_COMMENT,
    HostKey,
    InvalidKey,
    KeyPair,
    fingerprint,
    generate_key_pair,
    key_fingerprint_of_private,
    load_private_key,
    normalize_private_key,
)

logger = logging.getLogger(__name__)

# A connection older than this is replaced at its next use, so a host key that changed
# without the device dropping our session is still noticed.
MAX_CONNECTION_AGE_SECONDS = 3600

# authorized_keys maintenance, run as `sh -c SCRIPT sh KEYLINE` so the key is an argument
# ($1), never part of the script text.
_INSTALL_KEY_SCRIPT = (
    'umask 077; set -e; d="$HOME/.ssh"; f="$d/authorized_keys"; '
    'mkdir -p "$d"; chmod 700 "$d"; touch "$f"; chmod 600 "$f"; '
    'if grep -qxF -- "$1" "$f"; then exit 0; fi; '
    # A file whose last line lacks a newline would glue our key onto someone else's.
    'if [ -s "$f" ] && [ -n "$(tail -c 1 "$f")" ]; then echo >> "$f"; fi; '
    'printf \'%s\\n\' "$1" >> "$f"'
)
_REMOVE_KEY_SCRIPT = (
    'f="$HOME/.ssh/authorized_keys"; [ -f "$f" ] || exit 0; '
    'grep -qxF -- "$1" "$f" || exit 0; '
    't="$f.homelab.$$"; grep -vxF -- "$1" "$f" > "$t" || true; '
    'cat "$t" > "$f"; rm -f "$t"'
)


# --- errors ---------------------------------------------------------------------------------


class SSHError(Exception):
    """Something went wrong talking to a device. `status` is the DeviceStatus it implies."""

    status = "offline"

    def __init__(self, message: str, *, reason: str = ""):
        super().__init__(message)
        self.message = message
        self.reason = reason  # refused, timeout, no_route, dns, not_ssh, closed, ...


class Unreachable(SSHError):
    status = "offline"


class AuthFailed(SSHError):
    status = "auth_failed"


class HostKeyChanged(SSHError):
    status = "host_key_changed"

    def __init__(self, *, old: HostKey, new: HostKey):
        super().__init__(
            "The device presented a different identity (SSH host key) than the one pinned "
            f"at first contact: pinned {old.fingerprint}, now {new.fingerprint}.",
            reason="host_key_changed",
        )
        self.old = old
        self.new = new
        self.old_fingerprint = old.fingerprint
        self.new_fingerprint = new.fingerprint


class CommandTimeout(SSHError):
    status = "offline"


# --- connection targets ---------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where and as whom to connect. Built from a Device or from wizard input."""

    address: str
    port: int
    username: str
    private_key: str = field(default="", repr=False)
    host_key_type: str = ""
    host_key: str = ""
    device_id: int | None = None

    @classmethod
    def from_device(cls, device) -> Target:
        return cls(
            address=device.address,
            port=int(device.port),
            username=device.username,
            private_key=device.private_key or "",
            host_key_type=device.host_key_type,
            host_key=device.host_key,
            device_id=device.pk,
        )

    @property
    def pinned(self) -> HostKey | None:
        return HostKey(self.host_key_type, self.host_key) if self.host_key else None

    def cache_key(self) -> tuple:
        # The private key enters only as a hash, so the cache never holds a second copy.
        key_hash = hashlib.sha256(self.private_key.encode()).hexdigest() if self.private_key else ""
        return (self.address, self.port, self.username, key_hash, self.host_key)


def _host_key_algorithms(key_type: str) -> list[str]:
    if key_type == "ssh-rsa":
        return ["rsa-sha2-512", "rsa-sha2-256"]
    return [key_type]


def _describe_os_error(exc: BaseException, target: Target) -> Unreachable:
    where = f"{target.address} port {target.port}"
    if isinstance(exc, socket.gaierror):
        return Unreachable(f"The name {target.address} could not be found.", reason="dns")
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return Unreachable(f"No answer from {where} (timed out).", reason="timeout")
    if isinstance(exc, ConnectionRefusedError):
        return Unreachable(
            f"{where} refused the connection: nothing is listening for SSH there.", reason="refused"
        )
    code = getattr(exc, "errno", None)
    if code in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN):
        return Unreachable(
            f"No route to {target.address}: the device is off or on another network.",
            reason="no_route",
        )
    if isinstance(exc, (ConnectionResetError, EOFError)):
        return Unreachable(f"{where} closed the connection.", reason="closed")
    return Unreachable(f"Could not reach {where}.", reason="error")


def open_transport(
    target: Target, *, password: str | None = None, timeout: float | None = None
) -> tuple[paramiko.Transport, HostKey]:
    """Connect, check the host key, authenticate. Returns the transport and the host key seen.

    1. TCP connect with a timeout; SSH handshake preferring the pinned key's algorithm.
    2. Compare the presented host key with the pinned one; on a mismatch close and raise
       HostKeyChanged before any authentication (so no password is ever sent to it).
    3. Authenticate with the in-memory key, or with the password when one is given.
    """
    timeout = timeout or settings.SSH_CONNECT_TIMEOUT_SECONDS
    try:
        sock = socket.create_connection((target.address, target.port), timeout=timeout)
    except OSError as exc:
        raise _describe_os_error(exc, target) from None
    # Commands are a few small SSH packets each way; without TCP_NODELAY, Nagle's algorithm
    # holds each next packet until the device's delayed ACK (~40 ms) arrives.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    transport = paramiko.Transport(sock)
    try:
        transport.banner_timeout = timeout
        transport.handshake_timeout = timeout
        transport.auth_timeout = timeout
        options = transport.get_security_options()
        # AES-GCM first: its authentication runs in the cryptography library, while the
        # CTR + HMAC ciphers compare every packet's MAC in pure Python (a third of a poll's
        # CPU here). Every OpenSSH since 6.2 offers it; the others stay as fallbacks.
        gcm = [c for c in options.ciphers if c.endswith("-gcm@openssh.com")]
        options.ciphers = gcm + [c for c in options.ciphers if c not in gcm]
        pinned = target.pinned
        if pinned is not None:
            preferred = _host_key_algorithms(pinned.key_type)
            options.key_types = preferred + [k for k in options.key_types if k not in preferred]
        try:
            transport.start_client(timeout=timeout)
        except paramiko.SSHException as exc:
            text = str(exc).lower()
            if "banner" in text:
                raise Unreachable(
                    f"{target.address} port {target.port} answered, but it is not an SSH server.",
                    reason="not_ssh",
                ) from None
            raise Unreachable(
                f"The SSH handshake with {target.address} failed.", reason="handshake"
            ) from None
        except (OSError, EOFError) as exc:
            raise _describe_os_error(exc, target) from None
        seen = HostKey.from_pkey(transport.get_remote_server_key())
        if pinned is not None and seen != pinned:
            raise HostKeyChanged(old=pinned, new=seen)
        try:
            if password is not None:
                transport.auth_password(target.username, password)
            else:
                if not target.private_key:
                    raise AuthFailed("No key is stored for this device.", reason="no_key")
                transport.auth_publickey(target.username, load_private_key(target.private_key))
        except paramiko.BadAuthenticationType as exc:
            allowed = ", ".join(exc.allowed_types or []) or "none"
            method = "password" if password is not None else "key"
            raise AuthFailed(
                f"The device does not accept {method} logins (it allows: {allowed}).",
                reason="method_not_allowed",
            ) from None
        except paramiko.AuthenticationException:
            what = "password" if password is not None else "key"
            raise AuthFailed(
                f"The device refused the login as {target.username} with the {what} given.",
                reason="refused",
            ) from None
        except paramiko.SSHException:
            raise Unreachable(
                f"The connection to {target.address} broke during login.", reason="closed"
            ) from None
        if not transport.is_authenticated():
            raise AuthFailed(
                f"The device refused the login as {target.username}.", reason="refused"
            )
        transport.set_keepalive(15)
        return transport, seen
    except BaseException:
        transport.close()
        raise


def exec_on(
    transport: paramiko.Transport,
    command: str,
    *,
    timeout: float | None = None,
    stdin: bytes | None = None,
) -> tuple[int, str, str]:
    """Run one command string on an open transport; returns (exit, stdout, stderr).

    Raises Unreachable when no session can be opened, CommandTimeout on timeout.
    """
    timeout = timeout or settings.SSH_COMMAND_TIMEOUT_SECONDS
    channel = transport.open_session(timeout=settings.SSH_CONNECT_TIMEOUT_SECONDS)
    try:
        channel.exec_command(command)
        if stdin:
            channel.sendall(stdin)
        channel.shutdown_write()
        out, err = bytearray(), bytearray()
        deadline = time.monotonic() + timeout
        while True:
            while channel.recv_ready():
                out += channel.recv(65536)
            while channel.recv_stderr_ready():
                err += channel.recv_stderr(65536)
            # Done when the exit status AND the end of output have arrived: sshd may send
            # the exit status while output is still on its way.
            if (
                channel.exit_status_ready()
                and channel.eof_received
                and not channel.recv_ready()
                and not channel.recv_stderr_ready()
            ):
                break
            if channel.closed and not channel.recv_ready() and not channel.recv_stderr_ready():
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CommandTimeout(
                    f"The command did not finish within {timeout:g} s.", reason="timeout"
                )
            if channel.eof_received and not channel.recv_ready():
                # All output is in; only the exit status is still on its way. The channel
                # stays readable after EOF, so select() would return at once: wait for
                # the status itself instead of spinning.
                channel.status_event.wait(min(remaining, 0.5))
            else:
                select.select([channel], [], [], min(remaining, 0.5))
        status = channel.recv_exit_status() if channel.exit_status_ready() else -1
        return status, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    finally:
        channel.close()


def quote_command(args: list[str]) -> str:
    if not args or not all(isinstance(a, str) for a in args):
        raise ValueError("A command is a non-empty list of strings.")
    return " ".join(shlex.quote(a) for a in args)


# --- the per-process connection manager ------------------------------------------------------


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


def run(
    device, command_args: list[str], *, timeout: float | None = None, stdin: bytes | None = None
) -> tuple[int, str, str]:
    """Run a command (a list of arguments, each quoted) on a device over its connection.

    Refuses a device whose host key changed: nothing runs until the user accepts the key.
    """
    _refuse_changed_host_key(device)
    return connections.run(Target.from_device(device), command_args, timeout=timeout, stdin=stdin)


def install_key_with_password(
    target: Target, *, password: str, public_key: str, timeout: float | None = None
) -> tuple[paramiko.Transport, HostKey]:
    """Like ssh-copy-id: log in with the password and add our public key to authorized_keys.

    Checks the pinned host key first when there is one. Returns the still-open password
    transport (so a failed verification can undo the change) and the host key seen.
    """
    transport, seen = open_transport(target, password=password, timeout=timeout)
    try:
        status, _out, err = exec_on(
            transport,
            quote_command(["sh", "-c", _INSTALL_KEY_SCRIPT, "sh", public_key]),
            timeout=timeout,
        )
    except BaseException:
        transport.close()
        raise
    if status != 0:
        transport.close()
        raise AuthFailed(
            "Logged in, but could not add the key to ~/.ssh/authorized_keys on the device"
            + (f": {err.strip()[:200]}" if err.strip() else "."),
            reason="install_failed",
        )
    return transport, seen


def remove_key_command(public_key: str) -> str:
    return quote_command(["sh", "-c", _REMOVE_KEY_SCRIPT, "sh", public_key])


# --- docker-py over the same connection -----------------------------------------------------


def docker_client(device):
    """The device's docker-py `DockerClient`, over the device's one long-lived connection.

    Kept per device and process like the connection itself, and rebuilt when the
    connection is. Refuses a device whose host key changed.
    """
    _refuse_changed_host_key(device)
    return connections.docker(Target.from_device(device))


def docker_summary(device) -> dict:
    """`ServerVersion` and `ContainersRunning` from one cheap Docker API request.

    GET /containers/json lists the running containers, and every answer of the daemon
    carries `Server: Docker/<version> (<os>)`. The same figures from GET /info cost the
    daemon 4-5 times as much (it also counts images, drivers and plugins), on every poll.
    The request goes over the device's kept dial-stdio channel (devices.kept).
    """
    _refuse_changed_host_key(device)
    headers, containers = connections.docker_get(Target.from_device(device), "/containers/json")
    match = re.match(r"Docker/(\S+)", headers.get("Server", ""))
    version = match.group(1) if match else ""
    if not version:
        _headers, answer = connections.docker_get(Target.from_device(device), "/version")
        version = str(answer.get("Version", ""))
    return {"ServerVersion": version, "ContainersRunning": len(containers)}


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
