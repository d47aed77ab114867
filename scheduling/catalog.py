"""STAND-IN for the marketplace: what the best-known apps need.

The marketplace (recipes with a manifest.yaml each) does not exist yet. Until it does,
placement asks `requirements_for_app(slug)` and this small table answers. When the
marketplace lands, `requirements_for_app` becomes a call into it and this table goes;
nothing else in scheduling reads `_CATALOG` directly.

Figures are from the apps' own documentation and common homelab experience (minimum =
starts and works for one person; recommended = comfortable for a family).
"""

from __future__ import annotations

from scheduling.scoring import GIB, MIB, AppRequirements

_MULTI_ARCH = frozenset({"amd64", "arm64", "arm/v7"})
_64_BIT = frozenset({"amd64", "arm64"})

_CATALOG: dict[str, AppRequirements] = {
    app.slug: app
    for app in (
        AppRequirements(
            slug="vaultwarden",
            name="Vaultwarden",
            min_ram_bytes=128 * MIB,
            recommended_ram_bytes=512 * MIB,
            min_storage_bytes=1 * GIB,
            recommended_storage_bytes=5 * GIB,
            min_cpu_cores=0.5,
            recommended_cpu_cores=1,
            architectures=_MULTI_ARCH,
            ports=frozenset({8080}),
            always_on=True,
        ),
        AppRequirements(
            slug="nextcloud",
            name="Nextcloud",
            min_ram_bytes=512 * MIB,
            recommended_ram_bytes=2 * GIB,
            min_storage_bytes=10 * GIB,
            recommended_storage_bytes=100 * GIB,
            min_cpu_cores=1,
            recommended_cpu_cores=2,
            architectures=_MULTI_ARCH,
            ports=frozenset({8081}),
            always_on=True,
        ),
        AppRequirements(
            slug="jellyfin",
            name="Jellyfin",
            min_ram_bytes=1 * GIB,
            recommended_ram_bytes=4 * GIB,
            min_storage_bytes=10 * GIB,
            recommended_storage_bytes=50 * GIB,
            min_cpu_cores=2,
            recommended_cpu_cores=4,
            architectures=_64_BIT,
            ports=frozenset({8096}),
            always_on=False,
        ),
        AppRequirements(
            slug="immich",
            name="Immich",
            min_ram_bytes=4 * GIB,
            recommended_ram_bytes=6 * GIB,
            min_storage_bytes=20 * GIB,
            recommended_storage_bytes=200 * GIB,
            min_cpu_cores=2,
            recommended_cpu_cores=4,
            architectures=_64_BIT,
            ports=frozenset({2283}),
            always_on=False,
        ),
        AppRequirements(
            slug="uptime-kuma",
            name="Uptime Kuma",
            min_ram_bytes=256 * MIB,
            recommended_ram_bytes=512 * MIB,
            min_storage_bytes=1 * GIB,
            recommended_storage_bytes=2 * GIB,
            min_cpu_cores=0.5,
            recommended_cpu_cores=1,
            architectures=_MULTI_ARCH,
            ports=frozenset({3001}),
            always_on=True,
        ),
        AppRequirements(
            slug="home-assistant",
            name="Home Assistant",
            min_ram_bytes=1 * GIB,
            recommended_ram_bytes=2 * GIB,
            min_storage_bytes=8 * GIB,
            recommended_storage_bytes=32 * GIB,
            min_cpu_cores=1,
            recommended_cpu_cores=2,
            architectures=_MULTI_ARCH,
            ports=frozenset({8123}),
            always_on=True,
        ),
        AppRequirements(
            slug="paperless-ngx",
            name="Paperless-ngx",
            min_ram_bytes=1 * GIB,
            recommended_ram_bytes=2 * GIB,
            min_storage_bytes=5 * GIB,
            recommended_storage_bytes=50 * GIB,
            min_cpu_cores=1,
            recommended_cpu_cores=2,
            architectures=_MULTI_ARCH,
            ports=frozenset({8000}),
            always_on=False,
        ),
        AppRequirements(
            slug="adguard-home",
            name="AdGuard Home",
            min_ram_bytes=128 * MIB,
            recommended_ram_bytes=256 * MIB,
            min_storage_bytes=512 * MIB,
            recommended_storage_bytes=1 * GIB,
            min_cpu_cores=0.5,
            recommended_cpu_cores=1,
            architectures=_MULTI_ARCH,
            ports=frozenset({53, 3000}),
            always_on=True,
        ),
        AppRequirements(
            slug="nginx-proxy-manager",
            name="Nginx Proxy Manager",
            min_ram_bytes=256 * MIB,
            recommended_ram_bytes=512 * MIB,
            min_storage_bytes=1 * GIB,
            recommended_storage_bytes=2 * GIB,
            min_cpu_cores=0.5,
            recommended_cpu_cores=1,
            architectures=_MULTI_ARCH,
            ports=frozenset({80, 443, 81}),
            always_on=True,
        ),
        AppRequirements(
            slug="portainer",
            name="Portainer",
            min_ram_bytes=128 * MIB,
            recommended_ram_bytes=256 * MIB,
            min_storage_bytes=512 * MIB,
            recommended_storage_bytes=1 * GIB,
            min_cpu_cores=0.5,
            recommended_cpu_cores=1,
            architectures=_MULTI_ARCH,
            ports=frozenset({9443}),
            always_on=False,
        ),
    )
}


def requirements_for_app(slug: str) -> AppRequirements | None:
    """What the app `slug` needs, or None for an app we do not know.

    The one door placement uses; the marketplace will answer here once it exists.
    """
    return _CATALOG.get(slug)


def known_apps() -> list[AppRequirements]:
    """Every app the stand-in knows, by name (for forms and error messages)."""
    return sorted(_CATALOG.values(), key=lambda app: app.name.lower())
