"""The state of our apps' containers on a device, read on every poll (issue 20).

The poll already asks the device's Docker API for its containers (`ssh.docker_summary`);
the same answer (GET /containers/json?all=1) carries every container's state and labels,
so reading our apps' containers costs no extra round trip. Only containers that look
wrong (not running, just (re)started, unhealthy) are inspected one by one for what the
list does not say: exit code, restart count, the OOM-kill flag and times.

Pure parsing (`app_containers_from_list`, `needs_inspect`, `merge_inspect`) is unit-tested;
`inspect_troubled` does the I/O. The result is stored on the device
(`Device.app_containers`): {project: [{name, service, state, exit_code, restart_count,
health, oom_killed, started_at, finished_at}]}, for the apps above to judge.
"""

from __future__ import annotations

import logging
import re

logger = logging.getLogger(__name__)

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
# Our apps' compose projects (marketplace names them hl-<slug>-<instance>).
OUR_PROJECT = re.compile(r"hl-[a-z0-9][a-z0-9_-]{0,60}")
CONTAINER_ID = re.compile(r"[0-9a-f]{12,64}")
_EXIT = re.compile(r"(?:Exited|Restarting) \((-?\d+)\)")
_JUST_STARTED = re.compile(r"Up (?:Less than a second|\d+ seconds?)")
# Inspect at most this many containers per poll: a device full of broken apps must not
# make the poll slow; the others are inspected on the next polls.
MAX_INSPECTS_PER_POLL = 8


def _health(status_text: str) -> str:
    if "(unhealthy)" in status_text:
        return "unhealthy"
    if "(healthy)" in status_text:
        return "healthy"
    if "(health: starting)" in status_text:
        return "starting"
    return ""


def app_containers_from_list(listed: list[dict]) -> dict[str, list[dict]]:
    """{project: [container, ...]} for our projects, from Docker's container list.

    Each container: name, service, state (running, exited, restarting, created, paused,
    dead), exit_code (from "Exited (137) ..." or None), health ("healthy", "unhealthy",
    "starting" or ""), restart_count/oom_killed/started_at/finished_at (None until
    inspected), and `id` (kept for inspecting, dropped before storing).
    """
    projects: dict[str, list[dict]] = {}
    for item in listed or []:
        labels = item.get("Labels") or {}
        project = str(labels.get(PROJECT_LABEL) or "")
        if not OUR_PROJECT.fullmatch(project):
            continue
        names = item.get("Names") or [""]
        status_text = str(item.get("Status") or "")
        match = _EXIT.search(status_text)
        projects.setdefault(project, []).append(
            {
                "id": str(item.get("Id") or ""),
                "name": str(names[0]).lstrip("/")[:128],
                "service": str(labels.get(SERVICE_LABEL) or "")[:63],
                "state": str(item.get("State") or "unknown")[:20],
                "exit_code": int(match.group(1)) if match else None,
                "restart_count": None,
                "health": _health(status_text),
                "oom_killed": None,
                "started_at": None,
                "finished_at": None,
                "just_started": bool(_JUST_STARTED.match(status_text)),
            }
        )
    for containers in projects.values():
        containers.sort(key=lambda c: c["name"])
    return projects


def needs_inspect(container: dict) -> bool:
    """Whether the list leaves out something that matters: a container that is down, in a
    restart, unhealthy or started seconds ago (how a crash loop looks between two restarts)."""
    return (
        container["state"] != "running"
        or container["health"] == "unhealthy"
        or container.get("just_started", False)
    )


def merge_inspect(container: dict, inspected: dict) -> dict:
    """The container with what GET /containers/{id}/json adds."""
    state = inspected.get("State") or {}
    merged = dict(container)
    if isinstance(state.get("ExitCode"), int) and container["state"] != "running":
        merged["exit_code"] = state["ExitCode"]
    if isinstance(inspected.get("RestartCount"), int):
        merged["restart_count"] = inspected["RestartCount"]
    merged["oom_killed"] = bool(state.get("OOMKilled"))
    for key, field in (("StartedAt", "started_at"), ("FinishedAt", "finished_at")):
        value = str(state.get(key) or "")
        # Docker says 0001-01-01T00:00:00Z for "never".
        merged[field] = None if not value or value.startswith("0001-") else value[:35]
    health = (state.get("Health") or {}).get("Status")
    if health in ("healthy", "unhealthy", "starting"):
        merged["health"] = health
    return merged


def stored(projects: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """What the device keeps: without the id and the list-only hint."""
    return {
        project: [
            {k: v for k, v in c.items() if k not in ("id", "just_started")} for c in containers
        ]
        for project, containers in projects.items()
    }


def inspect_troubled(projects: dict[str, list[dict]], get) -> dict[str, list[dict]]:
    """Inspect the containers `needs_inspect` picks (at most MAX_INSPECTS_PER_POLL), with
    `get(path) -> (headers, json)` (the device's Docker API over its kept channel).
    A failed inspect leaves the container as listed."""
    budget = MAX_INSPECTS_PER_POLL
    out: dict[str, list[dict]] = {}
    for project, containers in projects.items():
        out[project] = []
        for container in containers:
            if budget > 0 and needs_inspect(container) and CONTAINER_ID.fullmatch(container["id"]):
                budget -= 1
                try:
                    _headers, inspected = get(f"/containers/{container['id']}/json")
                    container = merge_inspect(container, inspected or {})
                except Exception as exc:  # the list's view is still worth keeping
                    logger.info("Inspecting container %s failed: %s", container["name"], exc)
            out[project].append(container)
    return out
