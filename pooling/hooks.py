"""What pooling asks of the apps above it, filled in by them (marketplace's
`AppConfig.ready()`): pooling never imports the apps layer.

`live_apps()` lists the apps running (or stopped) on the devices with the databases their
recipes need, for the pool's recommendations and its "keeps its own database" notes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LiveApp:
    """One app that runs (or is stopped) on a device, as the pool sees it."""

    app: Any  # the apps layer's own object, handed back to pages (its app_name, instance)
    device: Any  # devices.models.Device
    project: str  # its compose project: with the device, the app's identity
    name: str  # the app's name in the catalog ("Nextcloud")
    bundled_databases: bool  # deployed with its own database containers by choice
    database_needs: tuple  # the manifest's database needs (engine, service, env, ...)


LiveAppsProvider = Callable[[], Iterable[LiveApp]]
_live_apps_providers: list[LiveAppsProvider] = []


def register_live_apps(provider: LiveAppsProvider) -> None:
    """Called once by an apps layer in its AppConfig.ready()."""
    if provider not in _live_apps_providers:
        _live_apps_providers.append(provider)


def live_apps() -> list[LiveApp]:
    return [app for provider in _live_apps_providers for app in provider()]
