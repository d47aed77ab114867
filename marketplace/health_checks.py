"""Scheduled health checks: each live app's manifest health check, from the control plane.

A django-q2 Schedule ("health-checks", every minute, made at start-up by
`ensure_health_check_schedule`) runs `health_checks_run_due`:

1. Pick the apps that should run (UP_STATUSES) whose last sample is older than their
   interval (`Deployment.health_check_minutes`, default DEFAULT_INTERVAL_MINUTES).
2. Probe each once (HTTP path or TCP port, PROBE_TIMEOUT_SECONDS), in a few threads, and
   keep a HealthSample (time, ok, answer time, what was seen in words).
3. `health_verdict` (pure): FAILURES_FOR_NOT_ANSWERING failures in a row make a running
   app not_answering with the last error; an answer brings a not_answering app back to
   running. Container states (marketplace.watch) take precedence over the health check.

Uptime over a window is the share of samples that were answered (`uptime_fractions`).
"""

from __future__ import annotations

import logging
import socket
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Max, Q
from django.utils import timezone

from marketplace.models import UP_STATUSES, Deployment, DeploymentStatus, HealthSample

logger = logging.getLogger(__name__)

SCHEDULE_NAME = "health-checks"
DEFAULT_INTERVAL_MINUTES = 5
PROBE_TIMEOUT_SECONDS = 5.0
FAILURES_FOR_NOT_ANSWERING = 2
PARALLEL_PROBES = 8
SAMPLE_RETENTION_DAYS = 31
UPTIME_WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}


@dataclass(frozen=True)
class Probe:
    ok: bool
    answer_ms: float | None
    message: str


def probe(
    *,
    address: str,
    port: int,
    kind: str,
    path: str = "/",
    expect_status: int = 200,
    timeout: float = PROBE_TIMEOUT_SECONDS,
) -> Probe:
    """One try of a health check: did it answer as expected, how fast, in words."""
    host = f"[{address}]" if ":" in address else address
    started = time.monotonic()
    try:
        if kind == "tcp":
            with socket.create_connection((address, port), timeout=timeout):
                pass
            ms = (time.monotonic() - started) * 1000
            return Probe(True, round(ms, 1), f"port {port} accepts connections")
        url = f"http://{host}:{port}{path}"
        try:
            with urllib.request.urlopen(urllib.request.Request(url), timeout=timeout) as answer:
                code = answer.status
        except urllib.error.HTTPError as exc:
            code = exc.code
        ms = round((time.monotonic() - started) * 1000, 1)
        if code == expect_status:
            return Probe(True, ms, f"{path} answered {code}")
        return Probe(
            False,
            ms,
            f"{path} answered {code} instead of {expect_status}: the app "
            "runs but reports a problem; its logs say which",
        )
    except TimeoutError:
        return Probe(False, None, f"no answer on port {port} within {timeout:g} seconds")
    except ConnectionRefusedError:
        return Probe(False, None, f"nothing listens on port {port} (connection refused)")
    except (OSError, urllib.error.URLError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, ConnectionRefusedError):
            return Probe(False, None, f"nothing listens on port {port} (connection refused)")
        if isinstance(reason, TimeoutError):
            return Probe(False, None, f"no answer on port {port} within {timeout:g} seconds")
        return Probe(False, None, f"could not reach port {port}: {reason}"[:300])


def health_verdict(*, current: str, ok: bool, failures_in_row: int) -> str | None:
    """The status after a sample (failures_in_row counts this one), or None: unchanged."""
    if ok:
        return DeploymentStatus.RUNNING if current == DeploymentStatus.NOT_ANSWERING else None
    if current == DeploymentStatus.RUNNING and failures_in_row >= FAILURES_FOR_NOT_ANSWERING:
        return DeploymentStatus.NOT_ANSWERING
    return None


def uptime_fractions(samples: list[tuple[datetime, bool]], *, now: datetime) -> dict:
    """{"24h": 0.98, "7d": ..., "30d": ...}: the answered share of samples in each window;
    None where no sample fell in it."""
    out: dict[str, float | None] = {}
    for name, span in UPTIME_WINDOWS.items():
        inside = [ok for when, ok in samples if now - when <= span]
        out[name] = round(sum(inside) / len(inside), 4) if inside else None
    return out


def deployment_uptime(deployment: Deployment, *, now: datetime | None = None) -> dict:
    """Uptime fractions from the database, counted there (no rows loaded)."""
    now = now or timezone.now()
    figures = {}
    aggregates = {}
    for name, span in UPTIME_WINDOWS.items():
        aggregates[f"n_{name}"] = Count("id", filter=Q(time__gte=now - span))
        aggregates[f"ok_{name}"] = Count("id", filter=Q(time__gte=now - span, ok=True))
    row = HealthSample.objects.filter(deployment=deployment).aggregate(**aggregates)
    for name in UPTIME_WINDOWS:
        total = row[f"n_{name}"] or 0
        figures[name] = round((row[f"ok_{name}"] or 0) / total, 4) if total else None
    return figures


def deployment_health(deployment: Deployment) -> dict:
    """{"state", "checked_at", "answer_ms", "message"} from the last sample."""
    last = HealthSample.objects.filter(deployment=deployment).order_by("-time").first()
    if last is None:
        return {
            "state": "unknown",
            "checked_at": None,
            "answer_ms": None,
            "message": "Not checked yet.",
        }
    return {
        "state": "answering" if last.ok else "not_answering",
        "checked_at": last.time,
        "answer_ms": last.answer_ms,
        "message": last.message,
    }


def answer_history(deployment: Deployment, *, since: datetime) -> list[HealthSample]:
    return list(
        HealthSample.objects.filter(deployment=deployment, time__gte=since).order_by("time")
    )


# ------------------------------------------------------------------------- the run
def due_deployments(*, now: datetime) -> list[Deployment]:
    rows = (
        Deployment.objects.filter(status__in=UP_STATUSES)
        .select_related("device")
        .annotate(last_checked=Max("health_samples__time"))
    )
    due = []
    for deployment in rows:
        minutes = deployment.health_check_minutes or DEFAULT_INTERVAL_MINUTES
        # Half a minute of slack: the schedule ticks about every minute.
        if deployment.last_checked is None or (
            now - deployment.last_checked >= timedelta(minutes=minutes, seconds=-30)
        ):
            due.append(deployment)
    return due


def deployment_probe(deployment: Deployment) -> Probe:
    from marketplace.pipeline import health_host_port
    from marketplace.recipes import load_catalog

    recipe = load_catalog().recipes.get(deployment.slug)
    if recipe is None:
        return Probe(False, None, "its recipe is no longer in the catalog")
    check = recipe.manifest.health_check
    try:
        port = health_host_port(recipe, deployment)
    except Exception as exc:
        return Probe(False, None, str(exc)[:300])
    return probe(
        address=deployment.device.address,
        port=port,
        kind=check.type,
        path=check.path or "/",
        expect_status=check.expect_status,
    )


def deployment_health_record(deployment: Deployment, result: Probe, *, now: datetime) -> str | None:
    """Keep the sample, count failures in a row, move the status when the verdict says."""
    from marketplace import watch

    HealthSample.objects.create(
        deployment=deployment,
        time=now,
        ok=result.ok,
        answer_ms=result.answer_ms,
        message=result.message[:300],
    )
    memory = dict(deployment.watch_memory or {})
    failures = 0 if result.ok else int(memory.get("health_failures", 0)) + 1
    if memory.get("health_failures", 0) != failures:
        memory["health_failures"] = failures
        Deployment.objects.filter(pk=deployment.pk).update(watch_memory=memory)
        deployment.watch_memory = memory
    to = health_verdict(current=deployment.status, ok=result.ok, failures_in_row=failures)
    if to is None:
        return None
    reason = (
        "" if result.ok else f"its health check failed {failures} times in a row: {result.message}"
    )
    watch.status_change(deployment, to=to, reason=reason, now=now)
    return to


def health_checks_run_due() -> int:
    """The scheduled task: check every due app once; returns how many were checked."""
    now = timezone.now()
    due = due_deployments(now=now)
    if not due:
        return 0
    with ThreadPoolExecutor(max_workers=min(PARALLEL_PROBES, len(due))) as pool:
        results = list(pool.map(deployment_probe, due))
    for deployment, result in zip(due, results, strict=True):
        try:
            deployment_health_record(deployment, result, now=timezone.now())
        except Exception:
            logger.exception("Recording the health check of deployment %s failed", deployment.pk)
    HealthSample.objects.filter(time__lt=now - timedelta(days=SAMPLE_RETENTION_DAYS)).delete()
    return len(due)


def ensure_health_check_schedule() -> None:
    """Create the "health-checks" schedule (every minute; idempotent; at start-up)."""
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name=SCHEDULE_NAME,
        defaults={
            "func": "marketplace.health_checks.health_checks_run_due",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        },
    )
