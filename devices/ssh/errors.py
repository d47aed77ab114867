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


# The words of an Unresponsive error; devices.status finds them in a device's saved detail
# to give the frozen device its own title and fixes (the status itself stays offline).
UNRESPONSIVE_WORDS = "accepted the connection but did not answer"


class Unresponsive(Unreachable):
    """The device's TCP port accepted us, but no SSH greeting came within the timeout: the
    machine is alive enough for its kernel to answer, too busy or frozen to do more."""

    def __init__(self, who: str):
        super().__init__(
            f"{who} {UNRESPONSIVE_WORDS}: it may be overloaded or frozen.",
            reason="unresponsive",
        )


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
