"""What each catalog app needs, as placement sees it.

The one door placement uses to learn an app's requirements: it asks the catalog the apps
layer registered (scheduling.hooks.catalog_apps: marketplace's valid recipes) and turns a
manifest's requirements into an `AppRequirements` snapshot. Invalid recipes are not offered.
"""

from __future__ import annotations

from scheduling import hooks
from scheduling.scoring import MIB, AppRequirements


def _from_recipe(recipe) -> AppRequirements:
    manifest = recipe.manifest
    need = manifest.requirements
    return AppRequirements(
        slug=recipe.slug,
        name=manifest.name,
        min_ram_bytes=need.ram_min_mb * MIB,
        recommended_ram_bytes=need.ram_recommended_mb * MIB,
        min_storage_bytes=need.storage_min_mb * MIB,
        recommended_storage_bytes=need.storage_recommended_mb * MIB,
        min_cpu_cores=need.cpu_cores_min,
        recommended_cpu_cores=need.cpu_cores_recommended,
        architectures=frozenset(manifest.architectures),
        ports=frozenset(port.default_host_port for port in manifest.ports),
        always_on=manifest.always_on,
    )


def requirements_for_app(slug: str) -> AppRequirements | None:
    """What the app `slug` needs, or None for an app the catalog does not know."""
    for recipe in hooks.apps_in_catalog():
        if recipe.slug == slug:
            return _from_recipe(recipe)
    return None


def known_apps() -> list[AppRequirements]:
    """Every valid catalog app, by name (for forms and error messages)."""
    apps = [_from_recipe(recipe) for recipe in hooks.apps_in_catalog()]
    return sorted(apps, key=lambda app: app.name.lower())
