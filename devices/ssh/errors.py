"""SSH errors: each carries the device status it implies."""

from __future__ import annotations

from devices.keys import HostKey


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
