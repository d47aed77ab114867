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
(offline; its `Unresponsive` when the port accepts but no SSH greeting comes), `AuthFailed`
(auth_failed), `HostKeyChanged` (host_key_changed).
"""

from devices.keys import (
    KEY_COMMENT,
    HostKey,
    InvalidKey,
    KeyPair,
    fingerprint,
    generate_key_pair,
    load_private_key,
    normalize_private_key,
)
from devices.ssh.device import docker_client, docker_summary, run, shell_call
from devices.ssh.errors import (
    AuthFailed,
    CommandTimeout,
    HostKeyChanged,
    SSHError,
    Unreachable,
    Unresponsive,
)
from devices.ssh.manager import MAX_CONNECTION_AGE_SECONDS, ConnectionManager, connections
from devices.ssh.transport import (
    Target,
    exec_on,
    install_key_with_password,
    open_transport,
    quote_command,
    remove_key_command,
)

__all__ = [
    "KEY_COMMENT",
    "MAX_CONNECTION_AGE_SECONDS",
    "AuthFailed",
    "CommandTimeout",
    "ConnectionManager",
    "HostKey",
    "HostKeyChanged",
    "InvalidKey",
    "KeyPair",
    "SSHError",
    "Target",
    "Unreachable",
    "Unresponsive",
    "connections",
    "docker_client",
    "docker_summary",
    "exec_on",
    "fingerprint",
    "generate_key_pair",
    "install_key_with_password",
    "load_private_key",
    "normalize_private_key",
    "open_transport",
    "quote_command",
    "remove_key_command",
    "run",
    "shell_call",
]
