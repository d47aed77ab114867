"""Shared database servers measured, and checked on every poll.

shared_instance_measure      read the shared container's memory (docker stats)
shared_instance_measure_baseline   start a standalone server of the same image, measure it
shared_instances_check       every poll: restart a stopped server, measure memory and sizes
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from urllib.parse import quote

from django.utils import timezone

from devices import ssh
from devices.compose import Shell
from devices.lease import DeviceBusy, device_lease
from devices.models import Device
from pooling import engines
from pooling.instances import (
    HEALTH_TIMEOUT_SECONDS,
    PoolingError,
    _add_secret,
    _check,
    _container,
    _shell_for,
    _start,
    _wait_healthy,
)
from pooling.models import PooledDatabase, SharedInstance

logger = logging.getLogger(__name__)

# The poll's health check reads memory (docker stats) and database sizes (SQL) at most this
# often: both start processes on the device, the "is it running" check does not.
MEASURE_EVERY_SECONDS = 300
# A server that did not start again is tried again this long after (each try may wait
# HEALTH_TIMEOUT_SECONDS holding the device's lease): not on every 30 s poll.
RETRY_FAILED_SECONDS = 600


# -------------------------------------------------------------------------- measuring
def shared_instance_measure(*, instance: SharedInstance, shell: Shell | None = None) -> int | None:
    """The shared container's memory now (docker stats) and each database's size and open
    connections (SQL), stored together: `measured_at` says both were read (measure_due)."""
    shell = _shell_for(instance.device, shell)
    container, state = _container(shell, instance)
    if not container or state != "running":
        return None
    out = _check(
        shell,
        ["docker", "stats", "--no-stream", "--format", "{{.MemUsage}}", container],
        what="Reading the shared database's memory",
        timeout=60,
    )
    used = engines.parse_mem_usage(out.strip())
    if used is not None:
        SharedInstance.objects.filter(pk=instance.pk).update(
            measured_memory_bytes=used, measured_at=timezone.now()
        )
        instance.measured_memory_bytes = used
    _measure_sizes(shell, instance, container)
    return used


def shared_instance_measure_baseline(
    *,
    instance: SharedInstance,
    shell: Shell | None = None,
    settle_seconds: float = 5,
    sleep=time.sleep,
) -> int | None:
    """Start one standalone server of the same image with its default settings (what an
    app would bundle), wait until it answers, read its memory, remove it; stored as the
    instance's standalone_memory_bytes."""
    import secrets as pysecrets

    shell = _shell_for(instance.device, shell)
    image, _ = engines.image_version(instance.engine)
    name = f"{instance.project}-baseline-{pysecrets.token_hex(3)}"
    password = engines.generate_password()
    _add_secret(shell, password)
    env, ready = engines.baseline_run(instance.engine, password)
    _check(
        shell,
        ["docker", "run", "-d", "--name", name, "--label", "homelab.pool=baseline", *env, image],
        what="Starting a standalone server to measure",
        timeout=600,
    )
    try:
        deadline = time.monotonic() + 120
        while shell.run(["docker", "exec", name, *ready], timeout=30)[0] != 0:
            if time.monotonic() > deadline:
                return None
            sleep(1)
        sleep(settle_seconds)
        out = _check(
            shell,
            ["docker", "stats", "--no-stream", "--format", "{{.MemUsage}}", name],
            what="Reading the standalone server's memory",
            timeout=60,
        )
        used = engines.parse_mem_usage(out.strip())
    finally:
        shell.run(["docker", "rm", "-f", "-v", name], timeout=120)
    if used is not None:
        SharedInstance.objects.filter(pk=instance.pk).update(standalone_memory_bytes=used)
        instance.standalone_memory_bytes = used
    return used


# ------------------------------------------------------------------------------ health
def shared_instances_check(
    *,
    device: Device,
    shell: Shell | None = None,
    measure_every: float | None = None,
    container_state=None,
) -> list[str]:
    """Health of the device's shared instances, for every poll.

    1. Each live instance whose server is not running (stopped, killed, removed by hand)
       is started again from its compose file and reported; one that did not start is
       tried again after RETRY_FAILED_SECONDS, not on every poll.
    2. Each running one has its memory measured and its databases' sizes read: always, or
       with `measure_every` only when the last measure is older than that many seconds
       (and after a restart).
    `container_state(instance) -> (id, state)` finds the server (default: `docker ps`; the
    poll passes a Docker API look-up over the device's kept channel, which starts nothing
    on the device). Returns one sentence per instance that needed attention.
    """
    live = SharedInstance.objects.filter(device=device).exclude(
        status=SharedInstance.Status.REMOVED
    )
    if not live.exists():  # most devices, on most polls: the cheapest query there is
        return []
    shell = _shell_for(device, shell)
    said = []
    for instance in live:
        instance.device = device
        _add_secret(shell, instance.admin_password)
        if container_state is not None:
            container, state = container_state(instance)
        else:
            container, state = _container(shell, instance)
        restarted = False
        if not container or state != "running":
            if _retry_later(instance):
                continue
            outcome = _restart_under_lease(shell, device, instance, state)
            if outcome is None:  # a deployment is working on the device, or removed it
                continue
            restarted, sentence, container = outcome
            said.append(sentence)
            logger.warning(sentence)
            if not restarted:
                continue
        if restarted or measure_due(instance, measure_every):
            shared_instance_measure(instance=instance, shell=shell)
    return said


def _restart_under_lease(shell: Shell, device: Device, instance: SharedInstance, state: str):
    """Start a stopped shared server again, holding the device's deployment lease so that a
    deployment removing this server at the same moment is never undone by the check.

    Returns None when the device is busy (the next poll looks again) or the server was
    removed meanwhile; else (restarted, sentence, container id).
    """
    holder = f"pool-check-{instance.pk}-{uuid.uuid4().hex[:8]}"
    try:
        with device_lease(device_id=device.pk, holder=holder, wait_seconds=0):
            current = SharedInstance.objects.filter(pk=instance.pk).values_list("status", flat=True)
            if not current or current[0] == SharedInstance.Status.REMOVED:
                return None
            SharedInstance.objects.filter(pk=instance.pk).update(
                status=SharedInstance.Status.STOPPED
            )
            label = f"The shared {instance.get_engine_display()} on {device.name}"
            was = f"had stopped ({state})" if state else "was gone (its container was removed)"
            try:
                _start(shell, instance)
                container = _wait_healthy(shell, instance, HEALTH_TIMEOUT_SECONDS)
            except PoolingError as exc:
                sentence = f"{label} {was} and did not start again: {exc.message}"
                _incident(instance, sentence, SharedInstance.Status.FAILED)
                return False, sentence, ""
            sentence = f"{label} {was}; it was started again and its apps reconnect."
            _incident(instance, sentence, SharedInstance.Status.RUNNING)
            return True, sentence, container
    except DeviceBusy:
        logger.info(
            "%s on %s is not running, but a deployment is working on the device; "
            "the next poll looks again",
            instance.project,
            device.name,
        )
        return None


def _retry_later(instance: SharedInstance, now=None) -> bool:
    """Whether a server that did not start again was tried too recently to try now."""
    if instance.status != SharedInstance.Status.FAILED or instance.last_incident_at is None:
        return False
    now = now or timezone.now()
    return (now - instance.last_incident_at).total_seconds() < RETRY_FAILED_SECONDS


def _incident(instance: SharedInstance, sentence: str, status: str) -> None:
    """What the health check did, kept for the Shared databases page and the API."""
    SharedInstance.objects.filter(pk=instance.pk).update(
        status=status, last_incident=sentence, last_incident_at=timezone.now()
    )


def measure_due(instance: SharedInstance, every: float | None, now=None) -> bool:
    """Whether the instance's memory and sizes should be read now (see shared_instances_check)."""
    if every is None or instance.measured_at is None:
        return True
    now = now or timezone.now()
    return (now - instance.measured_at).total_seconds() >= every


def container_state_api(device: Device, instance: SharedInstance) -> tuple[str, str]:
    """(container id, state) of the shared instance's server from the Docker API over the
    device's kept channel (devices.ssh.docker_get): the same answer as `_container`."""
    spec = engines.ENGINES[instance.engine]
    filters = json.dumps(
        {
            "label": [
                f"com.docker.compose.project={instance.project}",
                f"com.docker.compose.service={spec.service}",
            ]
        }
    )
    _headers, containers = ssh.connections.docker_get(
        ssh.Target.from_device(device), f"/containers/json?all=1&filters={quote(filters)}"
    )
    if not containers:
        return "", ""
    return str(containers[0].get("Id", ""))[:12], str(containers[0].get("State", ""))


def _measure_sizes(shell: Shell, instance: SharedInstance, container: str) -> None:
    names = list(
        PooledDatabase.objects.filter(instance=instance).values_list("database_name", flat=True)
    )
    query = engines.size_sql(instance.engine, names)
    if not query:
        return
    code, out, _ = shell.run(
        engines.sql_command(instance.engine, container),
        timeout=60,
        stdin=engines.sql_stdin(instance.engine, query, instance.admin_password),
    )
    if code != 0 or engines.command_errors(instance.engine, out):
        return
    usage = engines.parse_usage(instance.engine, out)
    for pooled in PooledDatabase.objects.filter(instance=instance):
        if pooled.database_name in usage:
            size, connections = usage[pooled.database_name]
            PooledDatabase.objects.filter(pk=pooled.pk).update(
                size_bytes=size, connections=connections
            )
