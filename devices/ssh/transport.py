"""One SSH connection: open it (host key checked before login), run a command on it.

Also the authorized_keys maintenance that logs in with a password (ssh-copy-id).
"""

from __future__ import annotations

import errno
import hashlib
import logging
import select
import shlex
import socket
import time
from dataclasses import dataclass, field

import paramiko
from django.conf import settings

from devices.keys import HostKey, load_private_key
from devices.ssh.errors import AuthFailed, CommandTimeout, HostKeyChanged, Unreachable, Unresponsive

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
    name: str = ""  # the device's name, for messages; not part of the cache key

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
            name=device.name,
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


class _HandshakeFailuresToDebug(logging.Filter):
    """paramiko's transport thread logs a failed handshake at ERROR with its traceback, line
    by line. open_transport explains every such failure in plain words, so during the
    handshake those lines go down to DEBUG: kept for whoever asks, out of everyone's log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.DEBUG:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


# The logger paramiko writes to until the handshake is done (see open_transport).
_HANDSHAKE_LOG_CHANNEL = "devices.ssh.handshake"
logging.getLogger(_HANDSHAKE_LOG_CHANNEL).addFilter(_HandshakeFailuresToDebug())


def _timed_out(exc: BaseException) -> bool:
    """True when the exception, or one it was raised from, is a timeout."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, (socket.timeout, TimeoutError)) or "timed out" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _handshake_error(
    exc: BaseException | None, transport: paramiko.Transport, target: Target
) -> Unreachable:
    """Plain words for a handshake that failed or never finished (open_transport, step 1)."""
    who = target.name or target.address
    where = f"{target.address} port {target.port}"
    if exc is None or _timed_out(exc):
        # The port accepted the connection (a frozen or overloaded machine's kernel still
        # does), but no SSH greeting, or no end to the handshake, came in time.
        return Unresponsive(who)
    if isinstance(exc, (OSError, EOFError)):
        return _describe_os_error(exc, target)
    if not transport.remote_version:
        if isinstance(exc.__context__, EOFError):
            return Unreachable(
                f"{where} closed the connection before greeting us: if this is the SSH port, "
                "the device's SSH server may be refusing new connections (too many at once).",
                reason="closed",
            )
        return Unreachable(f"{where} answered, but it is not an SSH server.", reason="not_ssh")
    # e.g. no algorithm both sides accept: paramiko's own words say which
    return Unreachable(
        f"The SSH handshake with {target.address} failed ({exc}).", reason="handshake"
    )


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
        # paramiko logs to the quiet channel until the handshake is done; a failure is
        # raised below in plain words instead of its traceback in the log.
        transport.set_log_channel(_HANDSHAKE_LOG_CHANNEL)
        try:
            # A little longer than the banner timeout, so that a silent port ends as the
            # transport thread's own banner timeout rather than a half-finished handshake.
            transport.start_client(timeout=timeout + 1)
        except paramiko.SSHException as exc:
            raise _handshake_error(exc, transport, target) from None
        except (OSError, EOFError) as exc:
            raise _describe_os_error(exc, target) from None
        if not transport.is_active() or not transport.initial_kex_done:
            # start_client returns quietly when its own timeout passes mid-handshake.
            raise _handshake_error(transport.get_exception(), transport, target)
        transport.set_log_channel("paramiko.transport")
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
