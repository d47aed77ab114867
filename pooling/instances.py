"""Shared database servers on a device: start, health, remove.

shared_instance_ensure       get or start the device's shared server of an engine, healthy
shared_instance_remove       compose down of the shared instance and its volume

Measuring them and the poll's health check are in pooling.health; the per-app databases
in these servers are in pooling.services.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings

from devices import ssh
from devices.compose import Shell, StepFailed, compose_base, deploy_root, dump_compose
from devices.models import Device
from homelab.core.errors import HomelabError
from homelab.core.masking import mask
from pooling import engines
from pooling.models import SharedInstance

logger = logging.getLogger(__name__)

HEALTH_TIMEOUT_SECONDS = 180


class PoolingError(HomelabError):
    """What stopped pooling, in words that say what to do (code 409 when the person's
    request conflicts, 502 when the device or its database server failed)."""

    default_code = 502

    def as_json(self) -> dict:
        # the pooling API answered {"message": ...} before the error family: keep it
        return {**super().as_json(), "message": self.message}


# ------------------------------------------------------------------------------ shell
class _Shell:
    """Commands on a device outside a deployment (not recorded, not retried): a
    devices.compose.Shell whose `check` raises PoolingError."""

    def __init__(self, device: Device):
        self.device = device
        self.secrets: list[str] = []

    def run(
        self, args: list[str], *, timeout: float | None = None, stdin: bytes | None = None
    ) -> tuple[int, str, str]:
        return ssh.run(self.device, args, timeout=timeout, stdin=stdin)

    def check(
        self,
        args: list[str],
        *,
        timeout: float | None = None,
        what: str,
        stdin: bytes | None = None,
    ) -> str:
        code, out, err = self.run(args, timeout=timeout, stdin=stdin)
        if code != 0:
            detail = mask((err or out).strip(), self.secrets)[-1500:]
            raise PoolingError(f"{what} failed (exit {code}): {detail}")
        return out


def _shell_for(device: Device, shell: Shell | None) -> Shell:
    return shell if shell is not None else _Shell(device)


def _add_secret(shell: Shell, value: str) -> None:
    if value and value not in shell.secrets:
        shell.secrets.append(value)


def _check(
    shell: Shell,
    args: list[str],
    *,
    what: str,
    timeout: float | None = None,
    stdin: bytes | None = None,
) -> str:
    """shell.check, with a shell's StepFailed turned into PoolingError."""
    try:
        return shell.check(args, timeout=timeout, what=what, stdin=stdin)
    except StepFailed as exc:
        raise PoolingError(str(exc)) from None


# --------------------------------------------------------------------------- settings
def pool_prefix() -> str:
    return getattr(settings, "HOMELAB_POOL_PREFIX", "") or "hl-pool"


def pool_network() -> str:
    return getattr(settings, "HOMELAB_POOL_NETWORK", "") or engines.NETWORK


def _folder(project: str) -> str:
    return f"{deploy_root()}/{project}"


def _compose_base(device: Device) -> list[str]:
    return compose_base(device)


# -------------------------------------------------------------------- shared instance
def _live_instance(device: Device, engine: str) -> SharedInstance | None:
    return (
        SharedInstance.objects.filter(device=device, engine=engine)
        .exclude(status=SharedInstance.Status.REMOVED)
        .first()
    )


def _container(shell: Shell, instance: SharedInstance) -> tuple[str, str]:
    """(container id, state) of the shared instance's server, ("", "") when none."""
    spec = engines.ENGINES[instance.engine]
    out = _check(
        shell,
        [
            *("docker", "ps", "-a"),
            *("--filter", f"label=com.docker.compose.project={instance.project}"),
            *("--filter", f"label=com.docker.compose.service={spec.service}"),
            *("--format", "{{.ID}}\t{{.State}}"),
        ],
        what="Looking for the shared database container",
        timeout=30,
    )
    line = out.strip().splitlines()[0] if out.strip() else ""
    container, _, state = line.partition("\t")
    return container.strip(), state.strip()


def _health(shell: Shell, container: str) -> str:
    code, out, _ = shell.run(
        [
            *("docker", "inspect", "-f"),
            "{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}",
            container,
        ],
        timeout=30,
    )
    return out.strip() if code == 0 else "missing"


def _ensure_network(shell: Shell) -> None:
    network = pool_network()
    if shell.run(["docker", "network", "inspect", network], timeout=30)[0] != 0:
        _check(
            shell,
            ["docker", "network", "create", "--label", "homelab.pool=network", network],
            what=f"Creating the network {network}",
            timeout=60,
        )


def _write_file(shell: Shell, path: str, text: str) -> None:
    """Written through stdin (dd), mode 600: it holds the admin password."""
    _check(shell, ["touch", path], what=f"Creating {path}", timeout=30)
    _check(shell, ["chmod", "600", path], what=f"Protecting {path}", timeout=30)
    _check(
        shell,
        ["dd", f"of={path}", "status=none"],
        what=f"Writing {path}",
        timeout=60,
        stdin=text.encode(),
    )


def _start(shell: Shell, instance: SharedInstance) -> None:
    folder = _folder(instance.project)
    compose_file = f"{folder}/compose.yaml"
    data = engines.shared_compose(
        instance.engine,
        project=instance.project,
        admin_password=instance.admin_password,
        network=pool_network(),
    )
    _ensure_network(shell)
    _check(shell, ["mkdir", "-p", folder], what=f"Creating {folder}", timeout=30)
    _write_file(shell, compose_file, dump_compose(data))
    _check(
        shell,
        [*_compose_base(instance.device), "-p", instance.project, "-f", compose_file, "up", "-d"],
        what=f"Starting the shared {instance.get_engine_display()}",
        timeout=900,
    )


def _wait_healthy(shell: Shell, instance: SharedInstance, timeout: float, sleep=time.sleep) -> str:
    deadline = time.monotonic() + timeout
    state = "missing"
    while True:
        container, _ = _container(shell, instance)
        if container:
            state = _health(shell, container)
            if state == "healthy":
                ready = shell.run(
                    engines.ready_command(instance.engine, container),
                    timeout=30,
                    stdin=engines.sql_stdin(instance.engine, "", instance.admin_password),
                )[0]
                if ready == 0:
                    return container
                state = "healthy, not yet answering over TCP"
        if time.monotonic() >= deadline:
            logs = ""
            if container:
                _, out, err = shell.run(["docker", "logs", "--tail", "20", container], timeout=30)
                logs = (out + err).strip()[-800:]
            raise PoolingError(
                f"The shared {instance.get_engine_display()} on {instance.device.name} did not "
                f"become healthy within {timeout:g} s (state: {state}). Check the device's free "
                "memory and disk, or give the app its own database server (the wizard's "
                "Advanced > Give this app its own database server; API: config "
                f'{{"bundled_databases": true}}). {logs}'
            )
        sleep(2)


def _ensure(*, device: Device, engine: str, shell: Shell) -> tuple[SharedInstance, bool, str]:
    """(instance, started by this call, container id)."""
    if engine not in engines.POOLED_ENGINES:
        raise PoolingError(
            f"The database pool does not offer {engine!r} (it offers "
            f"{', '.join(engines.POOLED_ENGINES)}); give the app its own database server "
            "(the wizard's Advanced > Give this app its own database server; API: config "
            '{"bundled_databases": true}).'
        )
    instance = _live_instance(device, engine)
    created = instance is None
    if created:
        _check_room(device, engine)
        project = engines.project_for(engine, pool_prefix())
        _refuse_leftovers(shell, device, engine, project)
        _, version = engines.image_version(engine)
        instance = SharedInstance.objects.create(
            device=device,
            engine=engine,
            version=version,
            project=project,
            admin_password=engines.generate_password(),
        )
    instance.device = device
    _add_secret(shell, instance.admin_password)
    container, state = _container(shell, instance)
    started = False
    if not container or state != "running" or _health(shell, container) != "healthy":
        started = not container
        try:
            _start(shell, instance)
            container = _wait_healthy(shell, instance, HEALTH_TIMEOUT_SECONDS)
        except Exception:
            if created:
                _remove_quietly(shell, instance)
            raise
    SharedInstance.objects.filter(pk=instance.pk).update(status=SharedInstance.Status.RUNNING)
    instance.status = SharedInstance.Status.RUNNING
    return instance, created or started, container


def _refuse_leftovers(shell: Shell, device: Device, engine: str, project: str) -> None:
    """A new shared server must not take over containers or data volumes of the same
    compose project that this install did not start (an earlier install of Homelab, or
    another one): their admin password is not known here, and removing them after a failed
    start would delete other apps' databases. They are left untouched and the error says
    how to go on."""
    label = f"label=com.docker.compose.project={project}"
    found = []
    for what, args in (
        ("a container", ["docker", "ps", "-aq", "--filter", label]),
        ("a data volume", ["docker", "volume", "ls", "-q", "--filter", label]),
    ):
        code, out, err = shell.run(args, timeout=30)
        if code != 0:
            raise PoolingError(
                f"Could not ask Docker on {device.name} what it runs ({(err or out).strip()[-300:]}). "
                "Check that Docker runs on the device, then try again."
            )
        if out.split():
            found.append(what)
    if found:
        label_text = engines.LABELS[engine]
        raise PoolingError(
            f"{device.name} already has {' and '.join(found)} of a shared {label_text} "
            f"({project}) that this Homelab did not start: an earlier install of Homelab or "
            "another one left it, and its password is not known here. It was left untouched, "
            f"because it may hold other apps' data. If no app uses it any more, remove it on "
            f"{device.name} with `docker compose -p {project} down -v` (this deletes its "
            "databases) and deploy again; or give this app its own database server "
            "(the wizard's Advanced > Give this app its own database server)."
        )


def _check_room(device: Device, engine: str) -> None:
    """A new shared server needs about one standalone server's memory free (last poll)."""
    spec = engines.ENGINES[engine]
    free = device.ram_free_bytes
    free = free() if callable(free) else free
    if free is not None and free < spec.default_standalone_bytes:
        label = engines.LABELS[engine]
        raise PoolingError(
            f"{device.name} has only {free // engines.MIB} MB of free memory; a shared "
            f"{label} needs about {spec.default_standalone_bytes // engines.MIB} MB. Free some "
            "memory (stop an app) or deploy to another device."
        )


def _remove_quietly(shell: Shell, instance: SharedInstance) -> None:
    try:
        shared_instance_remove(instance=instance, shell=shell)
    except Exception as exc:  # the first error is the one to report
        logger.warning("Could not clean up %s: %s", instance.project, exc)


def shared_instance_ensure(
    *, device: Device, engine: str, shell: Shell | None = None
) -> SharedInstance:
    """The device's shared instance of `engine`, running and healthy.

    1. Refuse an engine the pool does not offer.
    2. Find the live SharedInstance row, or create one with a generated admin password.
    3. Unless its container runs and is healthy: create the network `homelab-pool`
       (external to every project), write the instance's compose file (mode 600) from
       the built-in recipe and `compose up -d`; wait until healthy.
    4. A new instance that does not start is removed again; the error says what to do.
    """
    shell = _shell_for(device, shell)
    instance, _, _ = _ensure(device=device, engine=engine, shell=shell)
    return instance


def shared_instance_remove(*, instance: SharedInstance, shell: Shell | None = None) -> str:
    shell = _shell_for(instance.device, shell)
    folder = _folder(instance.project)
    compose_file = f"{folder}/compose.yaml"
    # compose v1 needs the file; v2 finds the project by its name when the file is gone
    has_file = shell.run(["test", "-f", compose_file], timeout=30)[0] == 0
    _check(
        shell,
        [
            *_compose_base(instance.device),
            *("-p", instance.project),
            *(("-f", compose_file) if has_file else ()),
            *("down", "-v", "--remove-orphans"),
        ],
        what=f"Removing the shared {instance.get_engine_display()}",
        timeout=300,
    )
    _check(shell, ["rm", "-rf", "--", folder], what=f"Removing {folder}", timeout=60)
    others = (
        SharedInstance.objects.filter(device=instance.device)
        .exclude(pk=instance.pk)
        .exclude(status=SharedInstance.Status.REMOVED)
        .exists()
    )
    if not others:
        shell.run(["docker", "network", "rm", pool_network()], timeout=60)  # in use: stays
    SharedInstance.objects.filter(pk=instance.pk).update(status=SharedInstance.Status.REMOVED)
    instance.status = SharedInstance.Status.REMOVED
    return f"shared {instance.get_engine_display()} removed"


def _run_sql(shell: Shell, instance: SharedInstance, container: str, sql: str, *, what: str) -> str:
    """SQL (or Redis commands) on stdin as the admin; an error in the answer fails too
    (redis-cli exits 0 when a command fails)."""
    out = _check(
        shell,
        engines.sql_command(instance.engine, container),
        what=what,
        timeout=120,
        stdin=engines.sql_stdin(instance.engine, sql, instance.admin_password),
    )
    errors = engines.command_errors(instance.engine, out)
    if errors:
        detail = mask("; ".join(errors), shell.secrets)[-1500:]
        raise PoolingError(
            f"{what} failed: the shared {instance.get_engine_display()} answered: {detail}"
        )
    return out
