"""Background work for deployments (django-q2). Tasks take ids and call one service."""

from __future__ import annotations

from marketplace import services


def run_deployment(deployment_id: int) -> str:
    """Run one deployment's pipeline; returns its final status (stored as the task result)."""
    deployment = services.deployment_run(deployment_id=deployment_id)
    return deployment.status if deployment is not None else "not claimed"
