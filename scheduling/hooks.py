"""What placement asks of the apps above it, filled in by them in their
`AppConfig.ready()` (marketplace): placement knows no recipes (DESIGN.md "Layers").

catalog_apps        the apps one can place, each as an object with `slug` and a `manifest`
                    (its name, requirements, architectures, ports, always_on)
host_ports_in_use   {device id: host ports its live apps publish}, for the port check
"""

from __future__ import annotations

from collections.abc import Callable, Iterable


class Providers:
    """Callables whose answers are put together; none registered: an empty answer."""

    def __init__(self, name: str):
        self.name = name
        self._providers: list[Callable] = []

    def register(self, fn: Callable) -> Callable:
        if fn not in self._providers:
            self._providers.append(fn)
        return fn

    def __iter__(self):
        return iter(list(self._providers))


catalog_apps = Providers("catalog_apps")  # fn() -> iterable of recipes
host_ports_in_use = Providers("host_ports_in_use")  # fn(device_ids=...) -> {id: set}


def apps_in_catalog() -> list:
    return [app for provider in catalog_apps for app in provider()]


def ports_in_use(device_ids: Iterable[int] | None) -> dict[int, set[int]]:
    out: dict[int, set[int]] = {}
    for provider in host_ports_in_use:
        for device_id, ports in provider(device_ids=device_ids).items():
            out.setdefault(device_id, set()).update(ports)
    return out
