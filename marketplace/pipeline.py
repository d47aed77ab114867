"""How a deployment works, top to bottom.

`Runner` is the generic part: it runs steps in order, records each one, keeps the undo
callables the steps register, and on a failure runs those undos in reverse order (the
seeds' LIFO rollback manager). It knows nothing of devices, so unit tests drive it with
fake steps and a fake recorder.

`DeploymentPipeline` is the deployment itself, one method per step:

1. preflight (validating): the device is online and has Docker Compose, the app is built
   for its architecture, its free resources meet the app's minimum (placement's
   disqualifications, our own reservation not counted twice), and every host port is
   free: nothing listens on it (`ss -ltunH`) and no other deployment claims it.
2. render (preparing): the final compose file as data with the stored secrets; the masked
   copy is kept for "What I did".
3. upload (preparing): `mkdir -p <root>/<project>` and an SFTP write of compose.yaml
   (mode 600: it holds the secrets). Undo: `rm -rf` of that folder only.
4. compose_up (deploying): `docker compose -p P -f F up -d [--wait --wait-timeout N]`.
   The undo is registered before the command runs, since a failed `up` may have created a
   network or volumes: `down -v --remove-orphans`.
5. configure (configuring): the app's URL from the device address and the web port.
6. health_check (health_check): HTTP path or TCP port from the control plane to the
   device's published port, until the manifest's timeout.
7. running.

Every command sent is recorded as a DeploymentCommand with each secret value replaced by
MASK. A transient SSH failure (Unreachable) is retried up to 3 times with backoff.
"""

from __future__ import annotations

import logging
import re
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from django.conf import settings
from django.utils import timezone

from marketplace.models import MASK

logger = logging.getLogger(__name__)

DEFAULT_DEPLOY_ROOT = "/opt/homelab/apps"
ROOT_RE = re.compile(r"^/[A-Za-z0-9._/-]*[A-Za-z0-9._-]$")
SSH_RETRIES = 3
SSH_BACKOFF_SECONDS = (1.0, 2.0, 4.0)
OUTPUT_TAIL_CHARS = 4000


# ------------------------------------------------------------------------------ masking
def mask(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret value replaced by MASK (longest first, so a secret that
    contains another is masked whole)."""
    if not text:
        return text
    for value in sorted({s for s in secrets if s}, key=len, reverse=True):
        # compose files carry secrets with `$` doubled: mask that (longer) form first
        if "$" in value:
            text = text.replace(value.replace("$", "$$"), MASK)
        text = text.replace(value, MASK)
    return text


def tail(text: str, limit: int = OUTPUT_TAIL_CHARS) -> str:
    return text if len(text) <= limit else "…" + text[-limit:]


# ------------------------------------------------------------------------------- runner
class StepFailed(Exception):
    """A step could not do its work; the message is for a person and says what to do."""


class Recorder(Protocol):
    def set_status(self, status: str) -> None: ...
    def step_started(self, name: str) -> object: ...
    def step_finished(self, handle: object, status: str, message: str = "") -> None: ...


@dataclass
class Step:
    name: str
    status: str  # the deployment's status while this step runs
    run: Callable[[Context], str | None]  # returns a message for the step row


@dataclass
class Context:
    """Handed to each step: where to register undos."""

    undos: list[tuple[str, Callable[[], object]]] = field(default_factory=list)

    def on_undo(self, name: str, action: Callable[[], object]) -> None:
        self.undos.append((name, action))


@dataclass
class Outcome:
    ok: bool
    status: str  # final: running / rolled_back / failed
    error: str = ""
    failed_step: str = ""
    undo_errors: list[str] = field(default_factory=list)


class Runner:
    """Run steps; on failure undo what was done, newest first.

    1. For each step: set the deployment status, record the step as running, run it,
       record ok with its message.
    2. On an exception: record the step failed with the message, set rolling_back, run
       every registered undo in reverse order (each recorded as its own step, undone or
       undo_failed; an undo failing does not stop the others).
    3. The result is rolled_back when every undo worked, failed otherwise.
    """

    def __init__(self, recorder: Recorder, *, final_status: str = "running"):
        self.recorder = recorder
        self.final_status = final_status
        self.context = Context()

    def run(self, steps: Sequence[Step]) -> Outcome:
        for step in steps:
            self.recorder.set_status(step.status)
            handle = self.recorder.step_started(step.name)
            try:
                message = step.run(self.context) or ""
            except Exception as exc:  # noqa: BLE001 - every failure rolls back
                error = _describe(exc)
                logger.info("Step %s failed: %s", step.name, error)
                self.recorder.step_finished(handle, "failed", error)
                undo_errors = self.rollback()
                status = "failed" if undo_errors else "rolled_back"
                return Outcome(False, status, error, step.name, undo_errors)
            self.recorder.step_finished(handle, "ok", message)
        self.recorder.set_status(self.final_status)
        return Outcome(True, self.final_status)

    def rollback(self) -> list[str]:
        self.recorder.set_status("rolling_back")
        errors = []
        while self.context.undos:
            name, action = self.context.undos.pop()
            handle = self.recorder.step_started(f"undo: {name}")
            try:
                message = action() or ""
            except Exception as exc:  # noqa: BLE001 - keep undoing the rest
                error = _describe(exc)
                errors.append(f"{name}: {error}")
                self.recorder.step_finished(handle, "undo_failed", error)
            else:
                self.recorder.step_finished(handle, "undone", str(message))
        return errors


def _describe(exc: BaseException) -> str:
    if isinstance(exc, StepFailed):
        return str(exc)
    from devices import ssh

    if isinstance(exc, ssh.SSHError):
        return f"The device did not answer over SSH: {exc}"
    return f"Unexpected error ({type(exc).__name__}): {exc}"


# ------------------------------------------------------------------- device operations
def deploy_root() -> str:
    root = str(getattr(settings, "HOMELAB_DEPLOY_ROOT", "") or DEFAULT_DEPLOY_ROOT).rstrip("/")
    if not ROOT_RE.match(root) or ".." in root.split("/"):
        raise StepFailed(
            f"HOMELAB_DEPLOY_ROOT {root!r} is not an absolute path of letters, digits, '.', '-', '_'."
        )
    return root


def compose_base(device) -> list[str]:
    command = (device.compose_command or "docker compose").split()
    if command not in (["docker", "compose"], ["docker-compose"]):
        raise StepFailed(
            f"{device.name} has no usable Docker Compose ({device.compose_command!r}); "
            "install the docker compose plugin and poll the device again."
        )
    return command


def compose_version_tuple(version: str) -> tuple[int, ...]:
    numbers = re.findall(r"\d+", version or "")
    return tuple(int(n) for n in numbers[:3])


def wait_flags(device, timeout_seconds: int) -> list[str]:
    """`--wait` exists from compose v2.1, `--wait-timeout` from v2.17."""
    if compose_base(device) != ["docker", "compose"]:
        return []
    version = compose_version_tuple(device.compose_version)
    if version >= (2, 17):
        return ["--wait", "--wait-timeout", str(timeout_seconds)]
    if version >= (2, 1):
        return ["--wait"]
    return []


class DeviceShell:
    """Commands on one device for one deployment: retried when the device drops, and
    recorded (masked) as DeploymentCommand rows."""

    def __init__(
        self, deployment, *, secrets: Iterable[str] = (), sleep=time.sleep, record: bool = True
    ):
        self.deployment = deployment
        self.device = deployment.device
        self.secrets = [s for s in secrets if s]
        self.sleep = sleep
        self.record = record  # False before the deployment is saved (create's quick check)

    def _record(self, command: str, exit_code: int | None, output: str, seconds: float) -> None:
        from marketplace.models import DeploymentCommand

        if not self.record:
            return
        DeploymentCommand.objects.create(
            deployment_id=self.deployment.pk,
            command=mask(command, self.secrets),
            exit_code=exit_code,
            output=mask(tail(output), self.secrets),
            seconds=round(seconds, 3),
        )

    def _retrying(self, label: str, action: Callable[[], tuple[int, str]]) -> tuple[int, str]:
        from devices import ssh

        for attempt in range(SSH_RETRIES + 1):
            started = time.monotonic()
            try:
                exit_code, output = action()
            except ssh.Unreachable as exc:
                self._record(label, None, f"connection lost: {exc}", time.monotonic() - started)
                if attempt == SSH_RETRIES:
                    raise
                delay = SSH_BACKOFF_SECONDS[min(attempt, len(SSH_BACKOFF_SECONDS) - 1)]
                logger.info("%s: device unreachable, retry %d in %.0f s", label, attempt + 1, delay)
                self.sleep(delay)
                continue
            self._record(label, exit_code, output, time.monotonic() - started)
            return exit_code, output
        raise AssertionError("unreachable")

    def run(
        self, args: list[str], *, timeout: float | None = None, stdin: bytes | None = None
    ) -> tuple[int, str, str]:
        from devices import ssh

        result: dict = {}

        def action() -> tuple[int, str]:
            exit_code, out, err = ssh.run(self.device, args, timeout=timeout, stdin=stdin)
            result["out"], result["err"] = out, err
            return exit_code, (out + ("\n" if out and err else "") + err).strip()

        exit_code, _ = self._retrying(ssh.quote_command(args), action)
        return exit_code, result["out"], result["err"]

    def check(
        self,
        args: list[str],
        *,
        timeout: float | None = None,
        what: str,
        stdin: bytes | None = None,
    ) -> str:
        exit_code, out, err = self.run(args, timeout=timeout, stdin=stdin)
        if exit_code != 0:
            detail = mask((err or out).strip(), self.secrets)
            raise StepFailed(f"{what} failed (exit {exit_code}): {tail(detail, 1500)}")
        return out

    def write_file(self, path: str, data: bytes, *, mode: int = 0o600) -> None:
        import paramiko

        from devices import ssh

        def action() -> tuple[int, str]:
            transport = ssh.connections.transport(ssh.Target.from_device(self.device))
            try:
                sftp = paramiko.SFTPClient.from_transport(transport)
            except (paramiko.SSHException, EOFError, OSError) as exc:
                raise ssh.Unreachable(f"SFTP could not start: {exc}") from None
            try:
                with sftp.open(path + ".tmp", "wb") as fh:
                    fh.write(data)
                sftp.chmod(path + ".tmp", mode)
                sftp.posix_rename(path + ".tmp", path)
            except OSError as exc:
                raise StepFailed(f"Could not write {path} on {self.device.name}: {exc}") from None
            finally:
                sftp.close()
            return 0, f"{len(data)} bytes written"

        self._retrying(f"sftp put {path} (mode {mode:o})", action)


# ------------------------------------------------------------------------------ ports
@dataclass(frozen=True)
class Listener:
    protocol: str  # tcp / udp
    port: int
    process: str


_USERS_RE = re.compile(r'users:\(\("([^"]+)"')


def parse_ss(output: str) -> list[Listener]:
    """Lines of `ss -ltunpH` (Netid State Recv-Q Send-Q Local:Port Peer:Port [users])."""
    found = []
    for line in output.splitlines():
        parts = line.split()
        if len(parts) < 5:
            continue
        protocol = parts[0].lower()
        if protocol not in ("tcp", "udp"):
            continue
        local = parts[4]
        port_text = local.rsplit(":", 1)[-1]
        if not port_text.isdigit():
            continue
        users = _USERS_RE.search(line)
        found.append(Listener(protocol, int(port_text), users.group(1) if users else ""))
    return found


def host_ports(recipe, config: dict) -> list[tuple[str, int, str]]:
    """(port name, host port, protocol) the deployment publishes."""
    chosen = (config or {}).get("ports") or {}
    return [
        (p.name, int(chosen.get(p.name, p.default_host_port)), p.protocol)
        for p in recipe.manifest.ports
    ]


# ---------------------------------------------------------------------- the deployment
class DeploymentRecorder:
    """Persist status changes and steps of one deployment."""

    def __init__(self, deployment):
        self.deployment = deployment

    def set_status(self, status: str) -> None:
        from marketplace.models import Deployment

        self.deployment.status = status
        Deployment.objects.filter(pk=self.deployment.pk).update(
            status=status, updated=timezone.now()
        )

    def step_started(self, name: str):
        from marketplace.models import DeploymentStep

        return DeploymentStep.objects.create(deployment_id=self.deployment.pk, name=name)

    def step_finished(self, handle, status: str, message: str = "") -> None:
        handle.status = status
        handle.message = mask(message, self.deployment.secret_values().values())
        handle.save(update_fields=["status", "message"])


class DeploymentPipeline:
    def __init__(self, deployment, recipe, *, sleep=time.sleep):
        self.deployment = deployment
        self.device = deployment.device
        self.recipe = recipe
        self.secrets = deployment.secret_values()
        self.shell = DeviceShell(deployment, secrets=self.secrets.values(), sleep=sleep)
        self.folder = f"{deploy_root()}/{deployment.project}"
        self.compose_file = f"{self.folder}/compose.yaml"
        self.compose_text = ""
        self.compose_data: dict = {}

    # -- helpers
    def compose(self, *args: str) -> list[str]:
        return [
            *compose_base(self.device),
            "-p",
            self.deployment.project,
            "-f",
            self.compose_file,
            *args,
        ]

    def steps(self) -> list[Step]:
        from pooling.services import pooling_applies

        # --- pooling: only for apps whose databases the pool offers (not bundled)
        pooled = (
            [Step("shared databases", "preparing", self.pool_databases)]
            if pooling_applies(self.recipe, self.deployment.config)
            else []
        )
        return [
            Step("pre-flight checks", "validating", self.preflight),
            Step("render compose file", "preparing", self.render),
            *pooled,
            Step("upload compose file", "preparing", self.upload),
            Step("start containers", "deploying", self.compose_up),
            Step("configure", "configuring", self.configure),
            Step("health check", "health_check", self.health_check),
        ]

    def run(self) -> Outcome:
        return Runner(DeploymentRecorder(self.deployment)).run(self.steps())

    # -- 1. pre-flight
    def preflight(self, ctx: Context) -> str:
        from devices.models import Device

        device = Device.objects.get(pk=self.device.pk)
        self.device = self.shell.device = self.deployment.device = device
        problems = preflight_problems(self.deployment, self.recipe, device)
        if not problems:  # an offline device is not asked for its ports
            problems = port_problems(self.deployment, self.recipe, device, self.shell)
        if problems:
            raise StepFailed("; ".join(problems))
        return (
            f"{device.name} is ready: online, compose {device.compose_version or '?'}, ports free"
        )

    # -- 2. render
    def render(self, ctx: Context) -> str:
        from marketplace.compose import RenderConfig, RenderError, dump_compose, render_compose

        config = self.deployment.config or {}
        try:
            data = render_compose(
                self.recipe,
                project=self.deployment.project,
                config=RenderConfig(
                    instance=self.deployment.instance,
                    ports=config.get("ports") or {},
                    env=config.get("env") or {},
                    secrets=self.secrets,
                ),
            )
        except RenderError as exc:
            raise StepFailed(f"config.{exc.field}: {exc.message}") from None
        self.compose_data = data
        self._store_compose(dump_compose(data))
        return f"{len(self.compose_text.splitlines())} lines, {len(self.secrets)} secret(s) masked"

    def _store_compose(self, text: str) -> None:
        self.compose_text = text
        masked = mask(self.compose_text, [*self.secrets.values(), *self.shell.secrets])
        type(self.deployment).objects.filter(pk=self.deployment.pk).update(
            compose_masked=masked, compose_path=self.compose_file
        )
        self.deployment.compose_masked, self.deployment.compose_path = masked, self.compose_file

    # -- 2b. pooling (only when the pool serves one of the app's databases)
    def pool_databases(self, ctx: Context) -> str:
        """Provision the app's databases in the device's shared instances and wire the
        rendered compose to them (pooling.services.pooled_databases_attach)."""
        from marketplace.compose import dump_compose
        from pooling.services import PoolingError, pooled_databases_attach

        try:
            message = pooled_databases_attach(
                deployment=self.deployment,
                recipe=self.recipe,
                compose=self.compose_data,
                shell=self.shell,
                on_undo=ctx.on_undo,
            )
        except PoolingError as exc:
            raise StepFailed(exc.message) from None
        self._store_compose(dump_compose(self.compose_data))
        return message

    # -- 3. upload
    def upload(self, ctx: Context) -> str:
        existed = self.shell.run(["test", "-d", self.folder])[0] == 0
        if not existed:
            ctx.on_undo("remove the app folder", self.remove_folder)
        self.shell.check(["mkdir", "-p", self.folder], what=f"Creating {self.folder}")
        self.shell.write_file(self.compose_file, self.compose_text.encode())
        return f"{self.compose_file} written"

    def remove_folder(self) -> str:
        self.shell.check(["rm", "-rf", "--", self.folder], what=f"Removing {self.folder}")
        return f"{self.folder} removed"

    # -- 4. compose up
    def compose_up(self, ctx: Context) -> str:
        ctx.on_undo("remove containers, networks and volumes", self.compose_down)
        timeout = self.recipe.manifest.health_check.timeout_seconds + 60
        args = self.compose("up", "-d", "--remove-orphans", *wait_flags(self.device, timeout))
        # pulling images may take a while before the wait starts
        self.shell.check(args, timeout=timeout + 900, what="docker compose up")
        return "containers started"

    def compose_by_project(self, *args: str) -> list[str]:
        """Like compose(), but without `-f` when the file is gone (interrupted before the
        upload, or removed): compose v2 finds the project by its name."""
        if self.shell.run(["test", "-f", self.compose_file])[0] == 0:
            return self.compose(*args)
        return [*compose_base(self.device), "-p", self.deployment.project, *args]

    def compose_down(self, *, delete_data: bool = True) -> str:
        flags = ["--remove-orphans", *(["-v"] if delete_data else [])]
        args = self.compose_by_project("down", *flags)
        self.shell.check(args, timeout=300, what="docker compose down")
        return "containers, networks" + (" and volumes" if delete_data else "") + " removed"

    # -- 5. configure
    def configure(self, ctx: Context) -> str:
        url = app_url(self.recipe, self.deployment, self.device)
        type(self.deployment).objects.filter(pk=self.deployment.pk).update(url=url)
        self.deployment.url = url
        return f"the app will be at {url}" if url else "the app has no web page"

    # -- 6. health check
    def health_check(self, ctx: Context) -> str:
        check = self.recipe.manifest.health_check
        port = health_host_port(self.recipe, self.deployment)
        return wait_healthy(
            address=self.device.address,
            port=port,
            kind=check.type,
            path=check.path or "/",
            expect_status=check.expect_status,
            timeout_seconds=check.timeout_seconds,
        )


def app_url(recipe, deployment, device) -> str:
    web = recipe.manifest.web_port
    if web is None:
        return ""
    chosen = {name: port for name, port, _ in host_ports(recipe, deployment.config)}
    host = f"[{device.address}]" if ":" in device.address else device.address
    return f"http://{host}:{chosen[web.name]}"


def health_host_port(recipe, deployment) -> int:
    check = recipe.manifest.health_check
    chosen = {name: port for name, port, _ in host_ports(recipe, deployment.config)}
    for p in recipe.manifest.ports:
        if p.container_port == check.port and p.protocol == "tcp":
            return chosen[p.name]
    raise StepFailed(f"the health check port {check.port} is not published")


def wait_healthy(
    *,
    address: str,
    port: int,
    kind: str,
    path: str = "/",
    expect_status: int = 200,
    timeout_seconds: float = 60,
    sleep=time.sleep,
) -> str:
    """Poll until the app answers; StepFailed with the last thing seen on timeout."""
    deadline = time.monotonic() + timeout_seconds
    last = "no answer yet"
    host = f"[{address}]" if ":" in address else address
    while True:
        try:
            if kind == "tcp":
                with socket.create_connection((address, port), timeout=5):
                    return f"port {port} accepts connections"
            url = f"http://{host}:{port}{path}"
            request = urllib.request.Request(url, method="GET")
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    code = response.status
            except urllib.error.HTTPError as exc:
                code = exc.code
            if code == expect_status:
                return f"{url} answered {code}"
            last = f"{url} answered {code}, expected {expect_status}"
        except (OSError, urllib.error.URLError) as exc:
            last = f"{address}:{port}: {getattr(exc, 'reason', exc)}"
        if time.monotonic() >= deadline:
            raise StepFailed(
                f"The app did not become healthy within {timeout_seconds:g} s ({last}). "
                "Check its logs in the debug view."
            )
        sleep(1)


def preflight_problems(deployment, recipe, device) -> list[str]:
    """What stops the app from running on the device, from its last poll (no SSH):
    placement's disqualifications with this deployment's own reservation not counted."""
    from scheduling.scoring import disqualifications
    from scheduling.selectors import active_reservations, snapshot_from_device

    if device.status != "online":
        status = device.get_status_display().lower()
        return [
            (
                f"{device.name} is {status}; bring it back online (or choose another device) "
                "and try again"
            )
        ]
    reservations = active_reservations().filter(device_id=device.pk)
    if deployment.reservation_id:
        reservations = reservations.exclude(pk=deployment.reservation_id)
    reservations = list(reservations)
    snapshot = snapshot_from_device(
        device,
        reserved_ram_bytes=sum(r.ram_bytes for r in reservations),
        reserved_storage_bytes=sum(r.storage_bytes for r in reservations),
        reserved_cpu_cores=sum(r.cpu_cores for r in reservations),
        reservation_count=len(reservations),
    )
    return [
        f"{device.name}: {reason}"
        for reason in disqualifications(snapshot, requirements_of(recipe, ports=()))
    ]


def claimed_ports(deployment, device) -> dict[tuple[int, str], str]:
    """Host ports other live deployments on the device publish: {(port, proto): who}."""
    from marketplace.models import FINISHED_STATUSES, Deployment
    from marketplace.recipes import RecipeNotFound, load_catalog

    catalog = load_catalog()
    claimed = {}
    others = Deployment.objects.filter(device=device).exclude(status__in=FINISHED_STATUSES)
    if deployment.pk:
        others = others.exclude(pk=deployment.pk)
    for other in others:
        try:
            recipe = catalog.get(other.slug)
        except RecipeNotFound:
            continue
        for _, port, protocol in host_ports(recipe, other.config):
            claimed[(port, protocol)] = f"the deployment {other.app_name} ({other.instance})"
    return claimed


def port_problems(deployment, recipe, device, shell: DeviceShell | None) -> list[str]:
    """Each host port of the deployment that is claimed or already listening on the device."""
    problems = []
    wanted = host_ports(recipe, deployment.config)
    claimed = claimed_ports(deployment, device)
    for name, port, protocol in wanted:
        if (port, protocol) in claimed:
            problems.append(
                f"port {port}/{protocol} ({name}) on {device.name} is claimed by "
                f"{claimed[(port, protocol)]}; choose another host port in config.ports.{name}"
            )
    if shell is None:
        return problems
    exit_code, out, err = shell.run(["ss", "-ltunpH"], timeout=30)
    if exit_code != 0:
        hint = " (install the iproute2 package, which provides `ss`)" if exit_code == 127 else ""
        raise StepFailed(f"Could not list the ports in use on {device.name}{hint}: {err.strip()}")
    listening = {(item.port, item.protocol): item.process for item in parse_ss(out)}
    for name, port, protocol in wanted:
        if (port, protocol) in claimed or (port, protocol) not in listening:
            continue
        holder = _port_holder(shell, port, listening[(port, protocol)])
        if holder is None:  # our own containers (a re-run of the same deployment)
            continue
        problems.append(
            f"port {port}/{protocol} ({name}) on {device.name} is already in use by {holder}; "
            f"stop that or choose another host port in config.ports.{name}"
        )
    return problems


def _port_holder(shell: DeviceShell, port: int, process: str) -> str | None:
    """Who holds a port: a container name when Docker publishes it, else the process.
    None when it is a container of this very deployment."""
    exit_code, out, _ = shell.run(
        [
            "docker",
            "ps",
            "--filter",
            f"publish={port}",
            "--format",
            '{{.Names}}\t{{.Label "com.docker.compose.project"}}',
        ],
        timeout=30,
    )
    if exit_code == 0 and out.strip():
        name, _, project = out.strip().splitlines()[0].partition("\t")
        if project and project == shell.deployment.project:
            return None
        return f"container {name}"
    return f"process {process}" if process else "another program"


def requirements_of(recipe, *, ports: Iterable[int] | None = None):
    """Placement requirements from a recipe's manifest (ports: the host ports to claim,
    default the recipe's default host ports)."""
    from scheduling.scoring import MIB, AppRequirements

    r = recipe.manifest.requirements
    return AppRequirements(
        name=recipe.name,
        slug=recipe.slug,
        min_ram_bytes=r.ram_min_mb * MIB,
        recommended_ram_bytes=r.ram_recommended_mb * MIB,
        min_storage_bytes=r.storage_min_mb * MIB,
        recommended_storage_bytes=r.storage_recommended_mb * MIB,
        min_cpu_cores=float(r.cpu_cores_min),
        recommended_cpu_cores=float(r.cpu_cores_recommended),
        architectures=frozenset(recipe.manifest.architectures),
        ports=frozenset(
            (p.default_host_port for p in recipe.manifest.ports) if ports is None else ports
        ),
        always_on=recipe.manifest.always_on,
    )
