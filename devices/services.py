"""Services that change devices.

Every function is keyword-only. Views, API, admin, tasks and commands call these and
nothing else to change a device.

Choices worth knowing:
- Adding a device either succeeds completely or leaves nothing behind in the database:
  validation, connection, login, key installation, key verification, pre-flight and the
  first poll all happen before the single INSERT. A device whose login works but whose
  Docker is missing or stopped IS added, with status `docker_missing` and the fix: the
  person can install Docker and the device turns online by itself at the next poll.
- A password is held only in the call that received it: it is sent to the device once
  (checked against the pinned host key first when there is one) to install our key, and
  is never saved, logged, queued or put in an error message.
- A device whose host key changed is never polled nor sent a command until the person
  accepts the new key (`device_accept_host_key`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

import paramiko
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from devices import hooks, ssh
from devices import metrics as metrics_module
from devices.checks import CheckStep, ConnectionCheck, preflight_steps, transport_runner
from devices.models import Device, DeviceStatus, DeviceType
from devices.polling import (  # re-exported: callers use services.device_poll & co.
    device_poll,  # noqa: F401
    devices_poll_all,  # noqa: F401
    docker_status,
    history_row,
    metric_fields,
    metrics_prune,  # noqa: F401
    poll_once,
)
from devices.status import help_for_status
from homelab.core.errors import HomelabError

logger = logging.getLogger(__name__)

EDITABLE_FIELDS = ("name", "address", "port", "username", "device_type", "location", "always_on")
CREDENTIAL_FIELDS = ("password", "private_key")
CONNECTION_FIELDS = ("address", "port", "username")


# The HTTP code of a DeviceError follows what kind of problem it is.
_CODE_OF_DEVICE_STATUS = {"invalid": 422, "conflict": 409}


class DeviceError(HomelabError):
    """A problem a person can fix. `device_status` is a DeviceStatus value (what the
    device's connection says: offline, auth_failed, ...) or "invalid"/"conflict".

    `message` says what happened in plain words; `fixes` lists what to do next; `field`
    names the input at fault when there is one; `errors` maps every invalid field to its
    messages when validation found several. `code` is 422 for invalid input, 409 for a
    conflict and 400 for a device that cannot be used as it is.
    """

    def __init__(
        self,
        message: str,
        *,
        device_status: str,
        fixes: list[str] | None = None,
        field: str | None = None,
        errors: dict[str, list[str]] | None = None,
        code: int | None = None,
    ):
        if code is None:
            code = _CODE_OF_DEVICE_STATUS.get(device_status, 400)
        super().__init__(message, field=field, code=code, fixes=fixes)
        self.device_status = device_status
        self.errors = errors or ({field: [message]} if field else {})

    def as_json(self) -> dict:
        # the devices API answered with the device status as "status": keep it
        return {**super().as_json(), "status": self.device_status}


# --- helpers --------------------------------------------------------------------------------


def _clean_port(port) -> int:
    try:
        value = int(port)
    except (TypeError, ValueError):
        raise DeviceError(
            "The port must be a number between 1 and 65535 (SSH usually uses 22).",
            device_status="invalid",
            field="port",
        ) from None
    if not 1 <= value <= 65535:
        raise DeviceError(
            "The port must be a number between 1 and 65535 (SSH usually uses 22).",
            device_status="invalid",
            field="port",
        )
    return value


def _validate(device: Device) -> None:
    """Run the model's validators on every field; raise DeviceError naming the first bad one."""
    for name in ("name", "address", "username", "location"):
        value = getattr(device, name)
        if not isinstance(value, str):
            raise DeviceError(f"The {name} must be text.", device_status="invalid", field=name)
        if value != value.strip():
            setattr(device, name, value.strip())
    if device.device_type not in DeviceType.values:
        raise DeviceError(
            f"Choose a device type: {', '.join(DeviceType.values)}.",
            device_status="invalid",
            field="device_type",
        )
    try:
        device.full_clean(exclude=["private_key", "public_key"], validate_unique=False)
    except ValidationError as exc:
        errors = {key: [str(m) for m in messages] for key, messages in exc.message_dict.items()}
        first_field = next(iter(errors))
        raise DeviceError(
            errors[first_field][0], device_status="invalid", field=first_field, errors=errors
        ) from None
    clash = Device.objects.filter(name=device.name)
    if device.pk:
        clash = clash.exclude(pk=device.pk)
    if clash.exists():
        raise DeviceError(
            f"A device named {device.name} already exists. Choose another name.",
            device_status="conflict",
            field="name",
            fixes=["Choose another name."],
        )
    duplicate = _already_added(address=device.address, port=device.port, exclude_pk=device.pk)
    if duplicate is not None:
        raise duplicate


def _already_added(
    *,
    address: str = "",
    port: int | None = None,
    host_key: str = "",
    exclude_pk: int | None = None,
) -> DeviceError | None:
    """The error for a machine that is already one of our devices, or None.

    The same machine is the same address and port, or the same SSH host key (the device's
    own identity, which also catches one machine reached under a second address).
    """
    others = Device.objects.exclude(pk=exclude_pk) if exclude_pk else Device.objects.all()
    same = None
    if address and port is not None:
        same = others.filter(address__iexact=address.strip(), port=port).first()
        how = "same address and port"
    if same is None and host_key:
        same = others.filter(host_key=host_key).first()
        how = "same SSH host key: the same machine under another address"
    if same is None:
        return None
    fixes = [
        f"Nothing to add: {same.name} is already in your homelab; open its page to "
        "change its name or how it is reached.",
        "If this really is another machine, check the address you typed.",
    ]
    if how.startswith("same SSH host key"):
        fixes.append(
            "If it is another machine made from a copy of the same SD card or disk image, "
            "give it its own SSH host keys (on it: sudo rm /etc/ssh/ssh_host_* && "
            "sudo ssh-keygen -A && sudo systemctl restart ssh), then add it again."
        )
    return DeviceError(
        f"This is {same.name}, already added ({how}).",
        device_status="conflict",
        field="address",
        fixes=fixes,
    )


def _require_one_credential(password: str | None, private_key: str | None) -> None:
    if password and private_key:
        raise DeviceError(
            "Give either the password or a private key, not both.",
            device_status="invalid",
            field="password",
        )
    if not password and not private_key:
        raise DeviceError(
            "Give the device's login password (used once, then forgotten) or a private key.",
            device_status="invalid",
            field="password",
        )


def _key_pair(private_key: str | None) -> ssh.KeyPair:
    if private_key:
        try:
            return ssh.normalize_private_key(private_key)
        except ssh.InvalidKey as exc:
            raise DeviceError(str(exc), device_status="invalid", field="private_key") from None
    return ssh.generate_key_pair()


def _error_from_ssh(
    exc: ssh.SSHError, *, address: str, port: int, username: str, credential: str = ""
) -> DeviceError:
    if isinstance(exc, ssh.HostKeyChanged):
        words = help_for_status(
            DeviceStatus.HOST_KEY_CHANGED,
            address=address,
            port=port,
            username=username,
            old_fingerprint=exc.old_fingerprint,
            new_fingerprint=exc.new_fingerprint,
        )
        return DeviceError(exc.message, device_status=DeviceStatus.HOST_KEY_CHANGED, fixes=words["fixes"])
    status = exc.status
    words = help_for_status(
        status,
        address=address,
        port=port,
        username=username,
        detail=exc.message,
        credential=credential,
        reason=exc.reason,
    )
    fix_field = {"offline": "address", "auth_failed": "password"}.get(status)
    if status == "offline" and exc.reason == "refused":
        fix_field = "port"
    if exc.reason == "unresponsive":
        fix_field = None  # the address is right: the device itself is stuck
    return DeviceError(
        f"{words['title']}: {exc.message}"
        if status == "offline" and exc.reason != "unresponsive"
        else exc.message,
        device_status=status,
        fixes=words["fixes"],
        field=fix_field,
    )


def device_test_connection(
    *,
    address: str,
    port: int,
    username: str,
    password: str | None = None,
    private_key: str | None = None,
) -> ConnectionCheck:
    """Connect, log in and run the pre-flight once. Saves nothing and changes nothing.

    With a password the login is tried with it (no key is installed by this check).
    """
    probe = Device(name="check", address=address, port=_clean_port(port), username=username)
    for name in CONNECTION_FIELDS:
        model_field = Device._meta.get_field(name)
        try:
            setattr(probe, name, model_field.clean(getattr(probe, name), probe))
        except ValidationError as exc:
            raise DeviceError(exc.messages[0], device_status="invalid", field=name) from None
    duplicate = _already_added(address=probe.address, port=probe.port)
    if duplicate is not None:
        raise duplicate
    _require_one_credential(password, private_key)
    key_pair = _key_pair(private_key) if private_key else None
    target = ssh.Target(
        probe.address,
        probe.port,
        probe.username,
        private_key=key_pair.private_key if key_pair else "",
    )
    steps: list[CheckStep] = []
    try:
        transport, seen = ssh.open_transport(target, password=password)
    except ssh.AuthFailed as exc:
        steps.append(CheckStep("connect", "Device answers", True, f"{address} port {probe.port}"))
        words = help_for_status(
            DeviceStatus.AUTH_FAILED,
            address=address,
            port=probe.port,
            username=username,
            detail=exc.message,
            credential="password" if password else "key",
            reason=exc.reason,
        )
        steps.append(CheckStep("login", "Login works", False, exc.message, words["fixes"]))
        return ConnectionCheck(ok=False, status=DeviceStatus.AUTH_FAILED, steps=steps)
    except ssh.SSHError as exc:
        words = help_for_status(
            DeviceStatus.OFFLINE,
            address=address,
            port=probe.port,
            username=username,
            detail=exc.message,
        )
        steps.append(CheckStep("connect", "Device answers", False, exc.message, words["fixes"]))
        return ConnectionCheck(ok=False, status=DeviceStatus.OFFLINE, steps=steps)
    duplicate = _already_added(host_key=seen.key_base64)
    if duplicate is not None:
        transport.close()
        raise duplicate
    try:
        steps.append(CheckStep("connect", "Device answers", True, f"{address} port {probe.port}"))
        steps.append(CheckStep("login", "Login works", True, f"as {username}"))
        try:
            m = metrics_module.gather(None, runner=transport_runner(transport))
        except ssh.SSHError as exc:
            steps.append(
                CheckStep(
                    "docker",
                    "Docker is installed and running",
                    False,
                    exc.message,
                    ["Check again; the device stopped answering."],
                )
            )
            return ConnectionCheck(
                ok=False,
                status=DeviceStatus.OFFLINE,
                steps=steps,
                host_key_fingerprint=seen.fingerprint,
            )
    finally:
        transport.close()
    steps += preflight_steps(m, username=username)
    status, _detail = docker_status(m, username)
    facts = {
        "arch": m.arch,
        "os_name": m.os_name,
        "kernel": m.kernel,
        "docker_version": m.docker_version,
        "compose_version": m.compose_version,
        "compose_command": m.compose_command,
        "ram_total_bytes": m.ram_total_bytes,
        "cpu_cores": m.cpu_cores,
        "storage_total_bytes": m.storage_total_bytes,
        "storage_free_bytes": (m.storage_total_bytes - m.storage_used_bytes)
        if m.storage_total_bytes is not None and m.storage_used_bytes is not None
        else None,
        "host_key_type": seen.key_type,
    }
    return ConnectionCheck(
        ok=all(step.ok for step in steps),
        status=status,
        steps=steps,
        host_key_fingerprint=seen.fingerprint,
        facts=facts,
    )


def device_add(
    *,
    name: str,
    address: str,
    port: int = 22,
    username: str,
    password: str | None = None,
    private_key: str | None = None,
    device_type: str = "server",
    location: str = "",
    always_on: bool = True,
) -> Device:
    """Add a device. Either it is saved working (online or docker_missing) or nothing is saved.

    1. Validate every field with the model's validators; the name must be new.
    2. With a private key: check it parses (ed25519/ECDSA/RSA) and use it as the stored key.
       With a password: generate our ed25519 key, log in with the password, add the public
       key to ~/.ssh/authorized_keys (idempotent), forget the password.
    3. Reconnect with the key alone (proving it works) and pin the host key seen.
    4. Run the pre-flight / first poll over that connection (one command).
    5. Save the device and its first metric row in one transaction; keep the connection
       as the device's long-lived one.
    On any failure before 5 nothing is saved, and a key we installed is taken out again.
    """
    device = Device(
        name=name,
        address=address,
        port=_clean_port(port),
        username=username,
        device_type=device_type or DeviceType.SERVER,
        location=location or "",
        always_on=bool(always_on),
    )
    _validate(device)
    _require_one_credential(password, private_key)
    key_pair = _key_pair(private_key)
    target = ssh.Target(
        device.address, device.port, device.username, private_key=key_pair.private_key
    )
    key_transport = None
    password_transport = None
    try:
        started = time.monotonic()
        duplicate = None
        try:
            if password:
                password_transport, seen = ssh.install_key_with_password(
                    replace(target, private_key=""),
                    password=password,
                    public_key=key_pair.public_key,
                )
                password = None  # used once; from here on only the key logs in
                target = replace(target, host_key_type=seen.key_type, host_key=seen.key_base64)
            key_transport, seen = ssh.open_transport(target)
            target = replace(target, host_key_type=seen.key_type, host_key=seen.key_base64)
            duplicate = _already_added(host_key=seen.key_base64)
            if duplicate is None:
                m = metrics_module.gather(None, runner=transport_runner(key_transport))
        except ssh.SSHError as exc:
            if password_transport is not None:
                _undo_key_install(password_transport, key_pair.public_key)
            if key_transport is not None:
                key_transport.close()
            raise _error_from_ssh(
                exc,
                address=device.address,
                port=device.port,
                username=device.username,
                credential="password" if password else "key",
            ) from None
        if duplicate is not None:
            key_transport.close()
            if password_transport is not None:
                _undo_key_install(password_transport, key_pair.public_key)
            raise duplicate
        seconds = time.monotonic() - started
        status, detail = docker_status(m, device.username)
        now = timezone.now()
        device.private_key = key_pair.private_key
        device.public_key = key_pair.public_key
        device.host_key_type, device.host_key = seen.key_type, seen.key_base64
        device.status, device.status_detail = status, detail
        device.last_seen = device.last_polled = now
        device.missed_polls = 0
        for name_, value in metric_fields(m).items():
            setattr(device, name_, value)
        try:
            with transaction.atomic():
                device.save()
                history_row(device.pk, m, now=now, seconds=seconds).save()
        except IntegrityError:
            key_transport.close()
            if password_transport is not None:
                _undo_key_install(password_transport, key_pair.public_key)
            raise DeviceError(
                f"A device named {device.name} already exists. Choose another name.",
                device_status="conflict",
                field="name",
            ) from None
        ssh.connections.adopt(ssh.Target.from_device(device), key_transport)
        logger.info("Added device %s (%s) with status %s", device.name, device.address, status)
        return device
    finally:
        if password_transport is not None:
            password_transport.close()


def _undo_key_install(transport: paramiko.Transport, public_key: str) -> None:
    """Best effort: take a key of ours out of authorized_keys (a failed add, a replaced key)."""
    try:
        if transport.is_active():
            ssh.exec_on(transport, ssh.remove_key_command(public_key), timeout=10)
    except Exception:
        logger.info("Could not take a key of ours off the device")


def device_update(*, device: Device, **changes) -> Device:
    """Change a device's fields; a new password or private key replaces the login key.

    1. Validate the changed fields with the model validators (unknown fields are refused).
    2. With a password: log in with it (the pinned host key is checked first), install a new
       generated key, verify it, remove our previous key. With a private key: verify it logs
       in. Nothing is saved if this fails.
    3. Save. When the address, port, user or key changed, the old connection is closed and
       the device is checked again at once.
    """
    unknown = set(changes) - set(EDITABLE_FIELDS) - set(CREDENTIAL_FIELDS)
    if unknown:
        name = min(unknown)
        raise DeviceError(f"The field {name} cannot be changed.", device_status="invalid", field=name)
    password = changes.pop("password", None) or None
    private_key = changes.pop("private_key", None) or None
    current = Device.objects.get(pk=device.pk)
    updated = Device.objects.get(pk=device.pk)
    if "port" in changes:
        changes["port"] = _clean_port(changes["port"])
    if "always_on" in changes:
        changes["always_on"] = bool(changes["always_on"])
    for name, value in changes.items():
        setattr(updated, name, "" if value is None and name == "location" else value)
    _validate(updated)
    connection_changed = any(getattr(updated, n) != getattr(current, n) for n in CONNECTION_FIELDS)

    if password and private_key:
        _require_one_credential(password, private_key)
    new_keys: ssh.KeyPair | None = None
    if password or private_key:
        if current.status == DeviceStatus.HOST_KEY_CHANGED:
            raise DeviceError(
                "The device's identity changed; accept or refuse the new identity before "
                "changing its login.",
                device_status=DeviceStatus.HOST_KEY_CHANGED,
            )
        new_keys = _key_pair(private_key)
        target = ssh.Target(
            updated.address,
            updated.port,
            updated.username,
            private_key=new_keys.private_key,
            host_key_type=current.host_key_type,
            host_key=current.host_key,
        )
        password_transport = None
        try:
            if password:
                password_transport, _seen = ssh.install_key_with_password(
                    replace(target, private_key=""),
                    password=password,
                    public_key=new_keys.public_key,
                )
                password = None
            key_transport, _seen = ssh.open_transport(target)
            # The new key works: take our previous key off the device (never the person's own).
            if (
                current.public_key.endswith(ssh.KEY_COMMENT)
                and current.public_key != new_keys.public_key
            ):
                _undo_key_install(key_transport, current.public_key)
            key_transport.close()
        except ssh.SSHError as exc:
            if password_transport is not None:
                _undo_key_install(password_transport, new_keys.public_key)
            raise _error_from_ssh(
                exc,
                address=updated.address,
                port=updated.port,
                username=updated.username,
                credential="password" if password else "key",
            ) from None
        finally:
            if password_transport is not None:
                password_transport.close()
        updated.private_key, updated.public_key = new_keys.private_key, new_keys.public_key

    recheck = connection_changed or new_keys is not None
    if recheck:
        updated.status = (
            DeviceStatus.PENDING
            if updated.status != DeviceStatus.HOST_KEY_CHANGED
            else updated.status
        )
        updated.missed_polls = 0
        updated.status_detail = ""
    fields = list(changes) + (["private_key", "public_key"] if new_keys else [])
    if recheck:
        fields += ["status", "missed_polls", "status_detail"]
    try:
        updated.save(update_fields=[*sorted(set(fields)), "updated"])
    except IntegrityError:
        raise DeviceError(
            f"A device named {updated.name} already exists. Choose another name.",
            device_status="conflict",
            field="name",
        ) from None
    if recheck:
        ssh.connections.close(updated.pk)
        if updated.status != DeviceStatus.HOST_KEY_CHANGED:
            return poll_once(updated.pk, count_misses=False)
    return updated


def device_remove(*, device: Device) -> None:
    """Forget a device: close its connection, take our key off it if reachable, delete it.

    The key is taken off only when it is one we generated (never the person's own key) and
    the device's identity has not changed (we never run anything on a changed identity).
    A device that still runs apps is not removed: the person removes (or moves) them first.
    The history of apps already removed from it goes with the device.
    """
    live_apps = hooks.removal_blockers(device)
    if live_apps:
        raise DeviceError(
            f"{device.name} still runs {len(live_apps)} app(s): {', '.join(live_apps)}. "
            "Remove those apps first (My apps > Remove), then remove the device.",
            device_status="conflict",
            fixes=["Remove or move the apps on this device, then try again."],
        )
    hooks.run_before_device_removal(device)
    if device.public_key.endswith(ssh.KEY_COMMENT) and device.status in (
        DeviceStatus.ONLINE,
        DeviceStatus.DOCKER_MISSING,
        DeviceStatus.PENDING,
    ):
        try:
            target = ssh.Target.from_device(device)
            transport = ssh.connections.transport(target)
            ssh.exec_on(transport, ssh.remove_key_command(device.public_key), timeout=10)
        except Exception:
            logger.info("Could not remove our key from %s; removing the device anyway", device.name)
    ssh.connections.close(device.pk)
    Device.objects.filter(pk=device.pk).delete()


def device_accept_host_key(*, device: Device, fingerprint: str) -> Device:
    """Trust the new host key the device offered, then check the device again at once.

    `fingerprint` is the new identity the person was shown; if the device offered yet
    another key since, nothing is trusted (a second change is not accepted unseen).
    """
    current = Device.objects.get(pk=device.pk)
    if not current.offered_host_key:
        raise DeviceError(
            "This device's identity has not changed; there is nothing to accept.",
            device_status="invalid",
        )
    if (fingerprint or "").strip() != ssh.fingerprint(current.offered_host_key):
        raise DeviceError(
            f"{current.name}'s identity changed again since it was shown to you, so we did not "
            "trust it. Look at the identity it shows now and decide again.",
            device_status="conflict",
            field="fingerprint",
        )
    updated = Device.objects.filter(pk=current.pk, offered_host_key=current.offered_host_key).update(
        host_key_type=current.offered_host_key_type,
        host_key=current.offered_host_key,
        offered_host_key_type="",
        offered_host_key="",
        status=DeviceStatus.PENDING,
        status_detail="",
        missed_polls=0,
    )
    if not updated:
        raise DeviceError(
            f"{current.name}'s identity changed again while you were deciding, so we did not "
            "trust it. Look at the identity it shows now and decide again.",
            device_status="conflict",
            field="fingerprint",
        )
    ssh.connections.close(current.pk)
    logger.info("Accepted a new host key for device %s", current.name)
    return poll_once(current.pk, count_misses=False)
