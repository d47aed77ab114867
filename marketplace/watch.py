"""The watch: after every poll, each live app's status follows its containers' real state.

A poll (devices.polling) stores the state of our apps' containers on the device
(`Device.app_containers`, by compose project). `after_device_poll`, registered as an
after-poll hook, then for each deployment on the device that should be running:

1. Judge its containers with `derive_status` (pure): running, degraded (some down or
   unhealthy), stopped_unexpectedly (all down), crash_loop (restarted more than
   CRASH_LOOP_RESTARTS times in CRASH_LOOP_MINUTES), missing (its containers are gone).
   not_answering belongs to the health checks (marketplace.health_checks): while the
   containers run it stays until the app answers again.
2. A change of status is a DeploymentEvent with the reason in plain words, and a
   notification (marketplace.notify), one per change.
3. Automatic restart (per app, default on for always-on apps): an app found stopped
   unexpectedly or degraded is started again, with backoff (RESTART_BACKOFF_MINUTES
   between tries), at most MAX_AUTO_RESTARTS times in AUTO_RESTART_WINDOW_MINUTES; then
   the watch stops trying and says so.

Nothing is judged while the device's lease is held (a deployment, stop or restart is
changing it). Stopped (a person's wish) and transient states (deploying, removing, ...) are never
touched: only deployments in UP_STATUSES are judged.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from devices.models import DeviceLease
from marketplace.models import (
    TROUBLE_STATUSES,
    UP_STATUSES,
    Deployment,
    DeploymentEvent,
    DeploymentStatus,
)

logger = logging.getLogger(__name__)

CRASH_LOOP_RESTARTS = 3  # more restarts than this within the window: a crash loop
CRASH_LOOP_MINUTES = 10
MAX_AUTO_RESTARTS = 3
AUTO_RESTART_WINDOW_MINUTES = 30
RESTART_BACKOFF_MINUTES = (0, 2, 5)  # before the 1st, 2nd, 3rd try (after the previous)

# Exit codes people meet, in their words (docker run's own codes and signals 128+n).
EXIT_CODE_WORDS = {
    0: "finished normally",
    1: "the app reported an error",
    2: "the app was started wrongly (a bad setting or argument)",
    125: "Docker could not run it",
    126: "its command could not be run",
    127: "its command was not found",
    130: "interrupted (Ctrl-C)",
    134: "aborted by the app itself",
    137: "killed, often out of memory",
    139: "crashed (segmentation fault)",
    143: "asked to stop (SIGTERM) and stopped",
}


def exit_code_words(code: int | None, *, oom_killed: bool | None = False) -> str:
    """ "code 137 (killed, often out of memory)"; an OOM kill is said as such."""
    if oom_killed:
        return (
            f"code {code if code is not None else 137} (killed because it ran out of memory: "
            "give it more, or move it to a device with more free memory)"
        )
    if code is None:
        return "an unknown code"
    words = EXIT_CODE_WORDS.get(code)
    if words is None and 128 < code < 160:
        words = f"stopped by signal {code - 128}"
    return f"code {code} ({words})" if words else f"code {code}"


@dataclass(frozen=True)
class Verdict:
    status: str
    reason: str


def _is_up(container: dict) -> bool:
    return container.get("state") == "running" and container.get("health") != "unhealthy"


def _finished_cleanly(container: dict) -> bool:
    # A one-shot helper (a migration, an init job) that exited 0 is done, not down.
    return container.get("state") == "exited" and container.get("exit_code") == 0


def _what_is_wrong(container: dict) -> str:
    name = container.get("service") or container.get("name") or "a container"
    state = container.get("state")
    if state == "running" and container.get("health") == "unhealthy":
        return f"{name} runs but its own health check fails"
    if state == "restarting":
        return f"{name} keeps restarting (last exit {exit_code_words(container.get('exit_code'), oom_killed=container.get('oom_killed'))})"
    if state in ("exited", "dead"):
        return f"{name} exited with {exit_code_words(container.get('exit_code'), oom_killed=container.get('oom_killed'))}"
    if state == "created":
        return f"{name} was created but never started"
    if state == "paused":
        return f"{name} is paused"
    return f"{name} is {state}"


def restarts_in_window(
    samples: list[list], *, now: float, minutes: int = CRASH_LOOP_MINUTES
) -> int:
    """Restarts seen within the last `minutes`: samples are [epoch seconds, total restart
    count of the app's containers]; a count that went down (containers recreated) resets."""
    recent = [(t, n) for t, n in samples if now - t <= minutes * 60]
    total = 0
    for (_, before), (_, after) in itertools.pairwise(recent):
        if after > before:
            total += after - before
    return total


def derive_status(
    *, containers: list[dict], current: str, restarts_recent: int = 0
) -> Verdict | None:
    """The status the containers say the deployment has, or None to leave it as it is.

    1. Only an app that should run (UP_STATUSES) is judged; stopped and transient: None.
    2. No container: missing.
    3. More than CRASH_LOOP_RESTARTS restarts within the window: crash_loop.
    4. None up (even if each exited 0): stopped_unexpectedly, with what each says.
    5. Some not up (a one-shot helper that exited 0 is fine): degraded.
    6. All up: running, except not_answering, which only a health check ends.
    """
    if current not in UP_STATUSES:
        return None
    if not containers:
        return Verdict(
            DeploymentStatus.MISSING,
            "its containers are gone from the device (removed outside the product?). "
            "Remove it, or deploy it again.",
        )
    troubled = [c for c in containers if not _is_up(c) and not _finished_cleanly(c)]
    if restarts_recent > CRASH_LOOP_RESTARTS:
        last = troubled[0] if troubled else containers[0]
        return Verdict(
            DeploymentStatus.CRASH_LOOP,
            f"it restarted {restarts_recent} times in the last {CRASH_LOOP_MINUTES} minutes "
            f"(last exit {exit_code_words(last.get('exit_code'), oom_killed=last.get('oom_killed'))}). "
            "Its logs say why.",
        )
    if not any(_is_up(c) for c in containers):
        # All down, even a clean exit 0: nobody asked it to stop.
        down = troubled or containers
        if len(down) == 1:
            why = "its container " + _what_is_wrong(down[0]).split(" ", 1)[1]
        else:
            why = "; ".join(_what_is_wrong(c) for c in down)
        return Verdict(DeploymentStatus.STOPPED_UNEXPECTEDLY, why)
    if troubled:
        return Verdict(DeploymentStatus.DEGRADED, "; ".join(_what_is_wrong(c) for c in troubled))
    if current == DeploymentStatus.NOT_ANSWERING:
        return None
    return Verdict(DeploymentStatus.RUNNING, "")


# ------------------------------------------------------------------- changing status
def status_change(
    deployment: Deployment, *, to: str, reason: str, now: datetime | None = None
) -> DeploymentEvent | None:
    """Move the deployment to `to` (only from the status it had when read) and record the
    event; None when nothing changed or it changed meanwhile (a person acted)."""
    now = now or timezone.now()
    previous = deployment.status
    if previous == to:
        if reason and reason != deployment.status_reason:
            Deployment.objects.filter(pk=deployment.pk, status=previous).update(
                status_reason=reason
            )
            deployment.status_reason = reason
        return None
    claimed = Deployment.objects.filter(pk=deployment.pk, status=previous).update(
        status=to, status_reason=reason, status_since=now, updated=now
    )
    if claimed != 1:
        return None
    deployment.status, deployment.status_reason, deployment.status_since = to, reason, now
    event = DeploymentEvent.objects.create(
        deployment=deployment,
        time=now,
        from_status=previous,
        to_status=to,
        message=event_sentence(deployment, to=to, reason=reason),
    )
    _notify_later(event)
    return event


def event_sentence(deployment: Deployment, *, to: str, reason: str) -> str:
    """ "Paperless-ngx stopped unexpectedly: its container exited with code 137 (...)"."""
    name = deployment.app_name
    if deployment.instance != "default":
        name += f" ({deployment.instance})"
    words = {
        DeploymentStatus.RUNNING: "is running again",
        DeploymentStatus.DEGRADED: "is only partly running",
        DeploymentStatus.STOPPED_UNEXPECTEDLY: "stopped unexpectedly",
        DeploymentStatus.CRASH_LOOP: "keeps crashing",
        DeploymentStatus.MISSING: "is missing from its device",
        DeploymentStatus.NOT_ANSWERING: "does not answer",
    }.get(
        to, f"is now {DeploymentStatus(to).label.lower() if to in DeploymentStatus.values else to}"
    )
    return f"{name} {words}" + (f": {reason}" if reason else ".")


def _notify_later(event: DeploymentEvent) -> None:
    from marketplace import notify

    transaction.on_commit(lambda: notify.event_notify_soon(event_id=event.pk))


# ------------------------------------------------------------------------- the hook
def after_device_poll(device) -> None:
    """devices.hooks.after_poll: judge every app on the device that should be running."""
    projects = getattr(device, "app_containers", None) or {}
    deployments = list(Deployment.objects.filter(device_id=device.pk, status__in=UP_STATUSES))
    if not deployments:
        return
    now = timezone.now()
    if DeviceLease.objects.filter(device_id=device.pk, expires_at__gt=now).exists():
        # A deployment, stop or restart is changing the device: containers stopped by a
        # person's Stop would look like a crash for a moment. The next poll judges.
        return
    for deployment in deployments:
        try:
            deployment_watch(deployment, containers=projects.get(deployment.project, []), now=now)
        except Exception:  # one app's trouble must not keep the others unwatched
            logger.exception("Watching deployment %s failed", deployment.pk)


def deployment_watch(deployment: Deployment, *, containers: list[dict], now: datetime) -> None:
    """One deployment after one poll: remember restart counts, judge, act."""
    memory = dict(deployment.watch_memory or {})
    epoch = now.timestamp()
    counts = [c.get("restart_count") for c in containers if c.get("restart_count") is not None]
    samples = [s for s in memory.get("restarts", []) if epoch - s[0] <= CRASH_LOOP_MINUTES * 60]
    if counts and len(counts) == len(containers):
        samples.append([epoch, sum(counts)])
    recent = restarts_in_window(samples, now=epoch)
    if samples != memory.get("restarts", []):
        memory["restarts"] = samples[-20:]
        Deployment.objects.filter(pk=deployment.pk).update(watch_memory=memory)
        deployment.watch_memory = memory
    verdict = derive_status(
        containers=containers, current=deployment.status, restarts_recent=recent
    )
    if verdict is None:
        return
    reason = verdict.reason
    if any(c.get("oom_killed") for c in containers) and verdict.status != S_RUNNING:
        reason += memory_at_the_time(deployment.device)
    status_change(deployment, to=verdict.status, reason=reason, now=now)
    if verdict.status in (DeploymentStatus.STOPPED_UNEXPECTEDLY, DeploymentStatus.DEGRADED):
        auto_restart_consider(deployment, now=now)


S_RUNNING = DeploymentStatus.RUNNING


def memory_at_the_time(device) -> str:
    """ " (server-02 had 3.8 GB of 4.0 GB memory in use)", from the poll that saw the kill."""
    used, total = device.ram_used_bytes, device.ram_total_bytes
    if not used or not total:
        return ""
    return f" ({device.name} had {used / 1e9:.1f} GB of {total / 1e9:.1f} GB memory in use)"


# ------------------------------------------------------------------ automatic restart
def restarts_automatically(deployment: Deployment) -> bool:
    """The person's choice, else the app's default: on for apps meant to be always on."""
    if deployment.auto_restart is not None:
        return deployment.auto_restart
    from marketplace.recipes import load_catalog

    recipe = load_catalog().recipes.get(deployment.slug)
    return bool(recipe and recipe.manifest.always_on)


def auto_restart_plan(attempts: list[float], *, now: float) -> str:
    """ "now", "wait" (backoff) or "give_up" (MAX_AUTO_RESTARTS within the window)."""
    recent = sorted(t for t in attempts if now - t <= AUTO_RESTART_WINDOW_MINUTES * 60)
    if len(recent) >= MAX_AUTO_RESTARTS:
        return "give_up"
    if recent and now - recent[-1] < RESTART_BACKOFF_MINUTES[len(recent)] * 60:
        return "wait"
    return "now"


def auto_restart_consider(deployment: Deployment, *, now: datetime) -> str:
    """Queue a restart when the app restarts automatically and the backoff allows it."""
    if not restarts_automatically(deployment):
        return "off"
    memory = dict(deployment.watch_memory or {})
    attempts = memory.get("auto_restarts", [])
    plan = auto_restart_plan(attempts, now=now.timestamp())
    if plan == "give_up":
        if not memory.get("gave_up"):
            memory["gave_up"] = now.timestamp()
            Deployment.objects.filter(pk=deployment.pk).update(watch_memory=memory)
            deployment.watch_memory = memory
            reason = (
                f"{deployment.status_reason} I restarted it {MAX_AUTO_RESTARTS} times in "
                f"{AUTO_RESTART_WINDOW_MINUTES} minutes and it kept stopping, so I stopped "
                "trying. Look at its logs, then start it yourself."
            ).strip()
            Deployment.objects.filter(pk=deployment.pk).update(status_reason=reason)
            deployment.status_reason = reason
            DeploymentEvent.objects.create(
                deployment=deployment,
                time=now,
                from_status=deployment.status,
                to_status=deployment.status,
                message=f"{deployment.app_name}: automatic restarts stopped after "
                f"{MAX_AUTO_RESTARTS} tries in {AUTO_RESTART_WINDOW_MINUTES} minutes.",
            )
        return plan
    if plan == "wait":
        return plan
    attempts = [t for t in attempts if now.timestamp() - t <= AUTO_RESTART_WINDOW_MINUTES * 60]
    memory["auto_restarts"] = [*attempts, now.timestamp()]
    memory.pop("gave_up", None)
    Deployment.objects.filter(pk=deployment.pk).update(watch_memory=memory)
    deployment.watch_memory = memory
    deployment_id = deployment.pk
    transaction.on_commit(lambda: _queue_restart(deployment_id))
    return plan


def _queue_restart(deployment_id: int) -> None:
    from django_q.tasks import async_task

    async_task(
        "marketplace.watch.deployment_auto_restart",
        deployment_id,
        task_name=f"auto-restart-{deployment_id}",
    )


def deployment_auto_restart(deployment_id: int) -> str:
    """The task: start the app's containers again and record it (an event either way)."""
    from marketplace import services

    deployment = Deployment.objects.select_related("device").filter(pk=deployment_id).first()
    if deployment is None or deployment.status not in TROUBLE_STATUSES:
        return "nothing to do"
    previous = deployment.status
    tries = len((deployment.watch_memory or {}).get("auto_restarts", []))
    try:
        services.deployment_start(deployment=deployment)
    except Exception as exc:  # said in the app's history; the next poll judges again
        DeploymentEvent.objects.create(
            deployment=deployment,
            time=timezone.now(),
            from_status=previous,
            to_status=previous,
            message=f"{deployment.app_name}: restarting it automatically failed: {exc}",
        )
        return "failed"
    now = timezone.now()
    Deployment.objects.filter(pk=deployment.pk).update(status_since=now, status_reason="")
    event = DeploymentEvent.objects.create(
        deployment=deployment,
        time=now,
        from_status=previous,
        to_status=DeploymentStatus.RUNNING,
        message=f"{deployment.app_name} was restarted automatically "
        f"(try {tries} of {MAX_AUTO_RESTARTS}).",
    )
    _notify_later(event)
    return "restarted"


def since_text(deployment: Deployment, *, now: datetime | None = None) -> str:
    """ "3 minutes ago" for the status line."""
    if deployment.status_since is None:
        return ""
    from django.utils.timesince import timesince

    return f"{timesince(deployment.status_since, now or timezone.now()).split(',')[0]} ago"


def deployment_watch_settings_save(
    *, deployment: Deployment, auto_restart: bool, health_check_minutes: int
) -> Deployment:
    """The person's choices: restart automatically, minutes between health checks."""
    deployment.auto_restart = auto_restart
    deployment.health_check_minutes = max(1, min(int(health_check_minutes), 1440))
    Deployment.objects.filter(pk=deployment.pk).update(
        auto_restart=deployment.auto_restart,
        health_check_minutes=deployment.health_check_minutes,
    )
    return deployment
