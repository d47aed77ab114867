"""How a deployment works, top to bottom.

`run_steps` is the generic part: it runs steps in order as the steps of a job
(homelab.core.jobs.JobRunner: the job's step rows, the undo callables the steps register
with `on_undo`, masking), and on a failure runs those undos in reverse order (the seeds'
LIFO rollback manager) and says rolled_back or failed. The job that runs a deployment is
marketplace.jobs.DeployJob; it mirrors the job's steps into DeploymentStep rows, which the
deployment page follows.

`DeploymentPipeline` is the deployment itself, one method per step:

1. preflight (validating): the device is online and has Docker Compose, the app is built
   for its architecture, its free resources meet the app's minimum (placement's
   disqualifications, our own reservation not counted twice), and every host port is
   free: nothing listens on it and no other deployment claims it. What the device runs
   is asked in one command (marketplace.preflight).
2. render (preparing): the final compose file as data with the stored secrets; the masked
   copy is kept for "What I did".
3. upload (preparing): one SFTP session creates `<root>/<project>` when missing and
   writes compose.yaml (mode 600: it holds the secrets). Undo: `rm -rf` of that folder
   only, registered when pre-flight found no folder there.
4. compose_up (deploying): `docker compose -p P -f F up -d [--wait --wait-timeout N]`
   (`--wait` when a service has its own container health check).
   The undo is registered before the command runs, since a failed `up` may have created a
   network or volumes: `down -v --remove-orphans`.
5. configure (configuring): the app's URL from the device address and the web port.
6. health_check (health_check): HTTP path or TCP port from the control plane to the
   device's published port, until the manifest's timeout; a device that stops answering
   altogether (not even SSH) ends it early.
7. running.

Every command sent is recorded as a DeploymentCommand with each secret value replaced by
MASK (marketplace.shell, on devices.compose.DeviceShell). A transient SSH failure (Unreachable) is retried up to 3 times
with backoff. When undos fail (mostly: the device went away), what they should have
removed is kept: the outcome says `cleanup_pending`, and marketplace.recovery runs the
undo again after the device's next successful poll.
"""

from __future__ import annotations

import logging
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from django.utils import timezone

from devices import ssh
from devices.compose import (
    StepFailed,
    compose_base,
    deploy_root,
    dump_compose,
    ssh_port_answers,
    wait_flags,
)
from devices.models import Device
from homelab.core.jobs import JobCancelled, JobRunner
from homelab.core.masking import mask, mask_data
from marketplace.compose import RenderConfig, RenderError, render_compose
from marketplace.models import Deployment
from marketplace.preflight import (
    device_state,
    host_ports,
    port_problems,
    preflight_problems,
)
from marketplace.shell import DeploymentShell
from pooling.services import PoolingError, pooled_databases_attach, pooling_applies

logger = logging.getLogger(__name__)

# The health check's pause between tries grows from the first to the last figure.
HEALTH_PAUSES_SECONDS = (0.1, 0.2, 0.3, 0.5, 1.0)
# While the app does not answer, check this often whether the device still does.
DEVICE_CHECK_EVERY_SECONDS = 5.0


# ------------------------------------------------------------------------------- steps
@dataclass
class Step:
    name: str
    status: str  # the deployment's status while this step runs
    run: Callable[[Context], str | None]  # returns a message for the step row


class Context(Protocol):
    """Handed to each step: where to register undos. The job's runner is one
    (homelab.core.jobs.JobRunner.on_undo); UndoList is one for code that runs steps by
    hand (the lab's recovery test)."""

    def on_undo(self, name: str, action: Callable[[], object]) -> None: ...


@dataclass
class UndoList:
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
    # the device went away: the undos that failed must run when it is back
    cleanup_pending: bool = False


def run_steps(
    job: JobRunner,
    steps: Sequence[Step],
    *,
    set_status: Callable[[str], None],
    final_status: str = "running",
) -> Outcome:
    """Run steps as the job's steps; on failure undo what was done, newest first.

    1. For each step: set the deployment status, then `with job.step(name)` (the job's
       step row: running, then ok with the step's message; failed with the error in the
       job's words, masked).
    2. On an exception: set rolling_back and run every registered undo in reverse order
       (job.rollback: each its own step, undone or undo_failed; an undo failing does not
       stop the others).
    3. The result is rolled_back when every undo worked, failed otherwise. The caller
       decides what the job's own outcome is.
    """
    for number, step in enumerate(steps):
        set_status(step.status)
        try:
            if number:
                job.check_cancelled()  # between steps: a person may have pressed Cancel
            with job.step(step.name) as handle:
                handle.message = step.run(job) or ""
        except Exception as exc:  # every failure rolls back
            error = job.describe_error(exc)
            logger.info("Step %s failed: %s", step.name, error)
            set_status("rolling_back")
            undo_errors = job.rollback()
            status = "failed" if undo_errors else "rolled_back"
            return Outcome(False, status, error, step.name, undo_errors)
    set_status(final_status)
    return Outcome(True, final_status)


def describe(exc: BaseException) -> str:
    """A step's failure in plain words (the deployment jobs' describe_error)."""
    if isinstance(exc, JobCancelled):
        return "Cancelled on request; what it had done so far was undone."
    if isinstance(exc, StepFailed):
        return str(exc)
    if isinstance(exc, ssh.SSHError):
        return f"The device did not answer over SSH: {exc}"
    return f"Unexpected error ({type(exc).__name__}): {exc}"


# ---------------------------------------------------------------------- the deployment
class DeviceGone(StepFailed):
    """The device stopped answering altogether (not only the app)."""


class DeploymentPipeline:
    def __init__(self, deployment, recipe, *, sleep=time.sleep):
        self.deployment = deployment
        self.device = deployment.device
        self.recipe = recipe
        self.secrets = deployment.secret_values()
        self.shell = DeploymentShell(deployment, secrets=deployment.values_to_mask(), sleep=sleep)
        self.folder = f"{deploy_root()}/{deployment.project}"
        self.compose_file = f"{self.folder}/compose.yaml"
        self.compose_text = ""
        self.compose_data: dict = {}
        self.folder_existed: bool | None = None  # None: pre-flight has not looked

    # -- helpers
    def set_status(self, status: str) -> None:
        self.deployment.status = status
        Deployment.objects.filter(pk=self.deployment.pk).update(
            status=status, updated=timezone.now()
        )

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

    def run(self, job: JobRunner) -> Outcome:
        """Run the steps as `job`'s steps (marketplace.jobs.DeployJob)."""
        outcome = run_steps(job, self.steps(), set_status=self.set_status)
        if not outcome.ok and outcome.undo_errors:
            # mostly the device went away (or is shutting down): try again when it is back
            outcome.cleanup_pending = True
        return outcome

    # -- 1. pre-flight
    def preflight(self, ctx: Context) -> str:
        device = Device.objects.get(pk=self.device.pk)
        self.device = self.shell.device = self.deployment.device = device
        problems = preflight_problems(self.deployment, self.recipe, device)
        if not problems:  # an offline device is not asked for its ports
            state = device_state(self.shell, self.folder)
            self.folder_existed = state.folder_exists
            problems = port_problems(self.deployment, self.recipe, device, self.shell, state=state)
        if problems:
            raise StepFailed("; ".join(problems))
        return (
            f"{device.name} is ready: online, compose {device.compose_version or '?'}, ports free"
        )

    # -- 2. render
    def render(self, ctx: Context) -> str:
        config = self.deployment.config or {}
        try:
            data = render_compose(
                self.recipe,
                project=self.deployment.project,
                config=RenderConfig(
                    instance=self.deployment.instance,
                    ports=config.get("ports") or {},
                    env={**(config.get("env") or {}), **self.env_secret_values()},
                    secrets=self.secrets,
                    memory_limit_mb=config.get("memory_limit_mb"),
                ),
            )
        except RenderError as exc:
            raise StepFailed(f"config.{exc.field}: {exc.message}") from None
        self.compose_data = data
        self._store_compose(dump_compose(data))
        return f"{len(self.compose_text.splitlines())} lines, {len(self.secrets)} secret(s) masked"

    def env_secret_values(self) -> dict[str, str]:
        """The typed secret settings this run renders (a change of settings: the new ones)."""
        return self.deployment.env_secret_values()

    def _store_compose(self, text: str) -> None:
        self.compose_text = text
        secrets = [*self.deployment.values_to_mask(), *self.shell.secrets]
        # the data masked before it is written: YAML may quote or escape a secret's text
        masked = mask(dump_compose(mask_data(self.compose_data, secrets)), secrets)
        type(self.deployment).objects.filter(pk=self.deployment.pk).update(
            compose_masked=masked, compose_path=self.compose_file
        )
        self.deployment.compose_masked, self.deployment.compose_path = masked, self.compose_file

    # -- 2b. pooling (only when the pool serves one of the app's databases)
    def pool_databases(self, ctx: Context) -> str:
        """Provision the app's databases in the device's shared instances and wire the
        rendered compose to them (pooling.services.pooled_databases_attach)."""
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
        existed = self.folder_existed
        if existed is None:  # run without pre-flight (recovery, tests): ask the device
            existed = self.shell.run(["test", "-d", self.folder])[0] == 0
        if not existed:
            # registered first: a failed write may have created the folder already
            ctx.on_undo("remove the app folder", self.remove_folder)
        self.shell.write_file(self.compose_file, self.compose_text.encode(), make_dirs=True)
        return f"{self.compose_file} written"

    def remove_folder(self) -> str:
        self.shell.check(["rm", "-rf", "--", self.folder], what=f"Removing {self.folder}")
        return f"{self.folder} removed"

    # -- 4. compose up
    def compose_up(self, ctx: Context) -> str:
        ctx.on_undo("remove containers, networks and volumes", self.compose_down)
        return self.up()

    def up(self) -> str:
        """`up -d`: creates the app's containers, or recreates those whose settings changed
        (a change of settings, marketplace.reconfigure, which registers its own undo)."""
        timeout = self.recipe.manifest.health_check.timeout_seconds + 60
        # `--wait` only where a service has its own health check (a bundled database the
        # app needs healthy): otherwise it adds compose's polling and our health check
        # below is the wait
        services = (self.compose_data or {}).get("services") or {}
        wait = not services or any("healthcheck" in (s or {}) for s in services.values())
        flags = wait_flags(self.device, timeout) if wait else []
        args = self.compose("up", "-d", "--remove-orphans", *flags)
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
        try:
            return wait_healthy(
                address=self.device.address,
                port=port,
                kind=check.type,
                path=check.path or "/",
                expect_status=check.expect_status,
                timeout_seconds=check.timeout_seconds,
                device_answers=lambda: ssh_port_answers(self.device.address, self.device.port),
                device_name=self.device.name,
            )
        except DeviceGone:
            self.shell.lost = True  # the undos try once; what fails is kept for later
            raise


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


class _SameHostRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to the same host and port: the health check never leaves the
    device (a redirect elsewhere counts as the app answering with that redirect status)."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        target = urllib.parse.urlsplit(urllib.parse.urljoin(req.full_url, newurl))
        if target.scheme != "http" or target.hostname != self.host or (target.port or 80) != self.port:
            return None  # urllib then raises HTTPError with the redirect's own status
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def wait_healthy(
    *,
    address: str,
    port: int,
    kind: str,
    path: str = "/",
    expect_status: int = 200,
    timeout_seconds: float = 60,
    sleep=time.sleep,
    device_answers: Callable[[], bool] | None = None,
    device_name: str = "the device",
) -> str:
    """Poll until the app answers; StepFailed with the last thing seen on timeout.

    1. Try the TCP port or the HTTP path; pause briefly, a little longer each time.
    2. While nothing answers at all, ask `device_answers` (its SSH port) every
       DEVICE_CHECK_EVERY_SECONDS; two misses in a row: DeviceGone at once, rather than
       waiting out the timeout for a device that is off.
    """
    deadline = time.monotonic() + timeout_seconds
    last = "no answer yet"
    host = f"[{address}]" if ":" in address else address
    tries = misses = 0
    next_device_check = time.monotonic() + DEVICE_CHECK_EVERY_SECONDS
    while True:
        try:
            if kind == "tcp":
                with socket.create_connection((address, port), timeout=5):
                    return f"port {port} accepts connections"
            url = f"http://{host}:{port}{path}"
            request = urllib.request.Request(url, method="GET")
            try:
                opener = urllib.request.build_opener(_SameHostRedirects(address.lower(), port))
                with opener.open(request, timeout=5) as response:
                    code = response.status
            except urllib.error.HTTPError as exc:
                code = exc.code
            if code == expect_status:
                return f"{url} answered {code}"
            last = f"{url} answered {code}, expected {expect_status}"
            misses = 0
        except (OSError, urllib.error.URLError) as exc:
            last = f"{address}:{port}: {getattr(exc, 'reason', exc)}"
            if device_answers is not None and time.monotonic() >= next_device_check:
                next_device_check = time.monotonic() + DEVICE_CHECK_EVERY_SECONDS
                misses = 0 if device_answers() else misses + 1
                if misses >= 2:
                    raise DeviceGone(
                        f"{device_name} stopped answering: neither the app ({last}) nor SSH "
                        "answer. Check that it is on and connected."
                    ) from None
        if time.monotonic() >= deadline:
            raise StepFailed(
                f"The app did not become healthy within {timeout_seconds:g} s ({last}). "
                "Check its logs in the debug view."
            )
        sleep(HEALTH_PAUSES_SECONDS[min(tries, len(HEALTH_PAUSES_SECONDS) - 1)])
        tries += 1
