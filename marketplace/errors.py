"""The marketplace's error (its services and selectors raise it; services re-exports it)."""

from __future__ import annotations

from homelab.core.errors import HomelabError


class DeploymentError(HomelabError):
    """Input or state a deployment cannot work with. `field` names what to change;
    `code` is the HTTP status the API answers with."""
