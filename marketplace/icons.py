"""App logos: the Simple Icons (CC0) vendored under static/vendor, by recipe slug.

A recipe without a logo there gets a neutral box icon."""

from __future__ import annotations

SIMPLE_ICONS_DIR = "vendor/simple-icons-16.37.0"
FALLBACK_ICON = "img/app-fallback.svg"

# recipe slug -> Simple Icons file name (without .svg)
SIMPLE_ICONS = {
    "adguard-home": "adguard",
    "gitea": "gitea",
    "home-assistant": "homeassistant",
    "homepage": "homepage",
    "immich": "immich",
    "jellyfin": "jellyfin",
    "monica": "monica",
    "n8n": "n8n",
    "nextcloud": "nextcloud",
    "nginx-proxy-manager": "nginxproxymanager",
    "paperless-ngx": "paperlessngx",
    "portainer": "portainer",
    "uptime-kuma": "uptimekuma",
    "vaultwarden": "vaultwarden",
}


def app_icon_path(slug: str) -> str:
    """The static path of the app's logo, or of the neutral icon."""
    name = SIMPLE_ICONS.get(slug)
    return f"{SIMPLE_ICONS_DIR}/{name}.svg" if name else FALLBACK_ICON
