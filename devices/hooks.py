"""What devices asks of the apps above it, filled in by them in their `AppConfig.ready()`
(pooling, marketplace): devices never imports a higher layer (DESIGN.md "Layers").

after_poll                 run after each successful poll, with the device as the poll
                           left it (shared servers' health check, deployments' pending
                           undos); a failing hook is logged and never fails the poll
dashboard_figures          add figures to the homelab's resources summary (apps counts,
                           memory saved by pooling, shared servers down)
device_removal_blockers    names of what still runs on a device: it is not removed then
before_device_removal      forget what the apps keep about a device about to be removed
device_apps                the apps that live on each of some devices (their pages and
                           dashboard cards list them and count the running ones)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)


@dataclass
class Registry:
    """Callables in the order of their `order` (then of registration)."""

    name: str
    _entries: list[tuple[int, int, Callable]] = field(default_factory=list)

    def register(self, fn: Callable, *, order: int = 100) -> Callable:
        if all(entry[2] is not fn for entry in self._entries):
            self._entries.append((order, len(self._entries), fn))
            self._entries.sort(key=lambda entry: entry[:2])
        return fn

    def __iter__(self):
        return iter([entry[2] for entry in self._entries])


after_poll = Registry("after_poll")  # fn(device) -> None
dashboard_figures = Registry("dashboard_figures")  # fn() -> dict of figures
device_removal_blockers = Registry("device_removal_blockers")  # fn(device) -> list[str]
before_device_removal = Registry("before_device_removal")  # fn(device) -> None
# fn(device_ids) -> {device_id: [DeviceApp, ...]}
device_apps = Registry("device_apps")


@dataclass(frozen=True)
class DeviceApp:
    """One app on a device, as a device page lists it: its name, its page, whether it runs."""

    name: str
    url: str
    status_words: str
    running: bool


def run_after_poll(device) -> None:
    for hook in after_poll:
        try:
            hook(device)
        except Exception:  # one hook's failure must not fail the poll; tried again next time
            logger.exception("After polling device %s, %s failed", device.pk, hook.__qualname__)


def collect_dashboard_figures() -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for provider in dashboard_figures:
        figures.update(provider())
    return figures


def removal_blockers(device) -> list[str]:
    return [name for hook in device_removal_blockers for name in hook(device)]


def run_before_device_removal(device) -> None:
    for hook in before_device_removal:
        hook(device)


def apps_on_devices(device_ids) -> dict[int, list[DeviceApp]]:
    """{device id: its apps, by name} from every provider (devices without apps absent)."""
    found: dict[int, list[DeviceApp]] = {}
    for provider in device_apps:
        for device_id, apps in provider(list(device_ids)).items():
            found.setdefault(device_id, []).extend(apps)
    for apps in found.values():
        apps.sort(key=lambda app: app.name.lower())
    return found
