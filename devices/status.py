"""Plain words and fixes for each device status (seeds 002, 3.5 "Clear, actionable errors").

`status_help(device)` is what every page, the API and the wizard show for a device; the
words name the device's own address, port and user so the fix can be followed as written.
"""

from __future__ import annotations

from devices.models import DeviceStatus
from devices.ssh import fingerprint
from devices.ssh.errors import UNRESPONSIVE_WORDS


def _login_fixes(*, username: str, credential: str, reason: str) -> list[str]:
    """Only the hints that fit how the login failed.

    `credential` is what was just tried: "password" or "key" (wizard, device add or edit),
    or "" for a saved device whose stored key stopped working (a poll).
    """
    user = f"Check the user name is correct (currently: {username})."
    if reason == "install_failed":  # the login worked; writing our key did not
        return [
            f"Check that {username} owns its home folder and ~/.ssh on the device, and that "
            "the device's disk is not full.",
            "Or paste a private key the device already accepts instead of the password.",
        ]
    if credential == "password":
        if reason == "method_not_allowed":
            return [
                "This device accepts no password logins: paste a private key it accepts instead.",
                (
                    "Or allow password logins for a moment: PasswordAuthentication yes in "
                    "/etc/ssh/sshd_config, then restart SSH on the device."
                ),
            ]
        return [
            user,
            (
                "Check the password: it is the one you type to log in on the device itself, "
                "and capital letters matter."
            ),
        ]
    if credential == "key":
        return [
            user,
            "Check the private key: paste all of it, including its BEGIN and END lines.",
            (
                "Make sure its public key is in ~/.ssh/authorized_keys on the device and the "
                "device allows SSH logins with a key (PubkeyAuthentication yes)."
            ),
        ]
    return [
        user,
        (
            "If the device was reinstalled or its password changed, edit it here and enter "
            "its password once: we install our key again and forget the password."
        ),
        "Make sure the device allows SSH logins with a key (PubkeyAuthentication yes).",
    ]


def _help_for(
    status: str,
    *,
    address: str,
    port: int,
    username: str,
    detail: str = "",
    old_fingerprint: str = "",
    new_fingerprint: str = "",
    credential: str = "",
    reason: str = "",
) -> dict:
    if status == DeviceStatus.ONLINE:
        return {
            "title": "Online",
            "message": "The device answers and reports its resources.",
            "fixes": [],
        }
    if status == DeviceStatus.PENDING:
        return {
            "title": "Not checked yet",
            "message": "The device has not been checked yet; the first check runs within a minute.",
            "fixes": ['Wait a moment, or press "Check now".'],
        }
    if status == DeviceStatus.OFFLINE and UNRESPONSIVE_WORDS in detail:
        # Reached, but silent: a frozen or overloaded machine, not a wrong address.
        return {
            "title": "Not answering: overloaded or frozen",
            "message": detail,
            "fixes": [
                "Wait a minute or two: a device busy with a large job often answers again.",
                (
                    "Check the device itself: is it very hot, is its power supply strong "
                    "enough, is its disk or memory full?"
                ),
                (
                    "If it stays silent, restart it (unplug it for ten seconds, or restart "
                    'its virtual machine or container), then press "Check now".'
                ),
            ],
        }
    if status == DeviceStatus.OFFLINE:
        return {
            "title": "Can't connect to device",
            "message": detail or f"The device at {address} did not answer.",
            "fixes": [
                "Is the device powered on and connected to the network?",
                f"Check the address is correct (currently: {address}).",
                f"Ensure remote login (SSH) is enabled on port {port}.",
                "If the device moved to another address, edit it here and enter the new one.",
            ],
        }
    if status == DeviceStatus.AUTH_FAILED:
        return {
            "title": "Login refused",
            "message": detail or f"The device refused the login as {username}.",
            "fixes": _login_fixes(username=username, credential=credential, reason=reason),
        }
    if status == DeviceStatus.HOST_KEY_CHANGED:
        fingerprints = ""
        if old_fingerprint or new_fingerprint:
            fingerprints = (
                f" Known: {old_fingerprint or 'unknown'}. Now: {new_fingerprint or 'unknown'}."
            )
        return {
            "title": "The device's identity changed",
            "message": (
                "The device answered with a different identity (SSH host key) than before, so "
                "nothing will run on it until you decide." + fingerprints
            ),
            "fixes": [
                "If you reinstalled the device or replaced its SSH keys, accept the new identity.",
                (
                    f"If you did not, another machine may be answering at {address}: check the "
                    "address and your network before accepting."
                ),
                "To compare, run on the device: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub",
            ],
        }
    if status == DeviceStatus.DOCKER_MISSING:
        problem = detail or "Docker is not installed or not running on the device."
        if "Compose is missing" in problem:
            return {
                "title": "Docker Compose missing",
                "message": problem,
                "fixes": [
                    (
                        "Install the Compose plugin: sudo apt-get install docker-compose-plugin "
                        "(or docker-compose on older systems)."
                    ),
                    'Then press "Check now"; the device turns online by itself.',
                ],
            }
        fixes = [
            "Install Docker on the device, for example with: sudo apt-get install docker.io",
            "Start it: sudo systemctl enable --now docker.",
        ]
        if username != "root":
            fixes.append(
                f"Let {username} use Docker: sudo usermod -aG docker {username}, then check again."
            )
        fixes.append('Then press "Check now"; the device turns online by itself.')
        return {"title": "Docker missing", "message": problem, "fixes": fixes}
    return {"title": str(status), "message": detail, "fixes": []}


def status_help(device) -> dict:
    """{"title", "message", "fixes": [...]} for the device's current status."""
    return _help_for(
        device.status,
        address=device.address,
        port=device.port,
        username=device.username,
        detail=device.status_detail,
        old_fingerprint=fingerprint(device.host_key) if device.host_key else "",
        new_fingerprint=fingerprint(device.offered_host_key) if device.offered_host_key else "",
    )


def help_for_status(
    status: str,
    *,
    address: str,
    port: int,
    username: str,
    detail: str = "",
    old_fingerprint: str = "",
    new_fingerprint: str = "",
    credential: str = "",
    reason: str = "",
) -> dict:
    """The same words for a status when there is no saved device yet (wizard, device_add).

    `credential` ("password" or "key") and `reason` (the SSHError's) pick the login hints
    that fit the failure.
    """
    return _help_for(
        status,
        address=address,
        port=port,
        username=username,
        detail=detail,
        old_fingerprint=old_fingerprint,
        new_fingerprint=new_fingerprint,
        credential=credential,
        reason=reason,
    )
