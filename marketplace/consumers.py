"""Live progress of one deployment over a WebSocket: ws/deployments/<id>/.

Web and worker are separate processes and the embedded default has no shared channel
layer, so this consumer follows the persisted step rows instead of waiting for events:

1. On connect: the user must be signed in and the deployment must exist, else close.
2. Every POLL_SECONDS: read the steps that are new (id > the last sent) or that were still
   running when sent, and the deployment's status; send each new or changed step and the
   status line as rendered HTML fragments (JSON: {"type": "step"|"status"|"done", ...}).
3. When the deployment reaches a final status, send "done" with the whole progress
   section rendered, then close.

A page reloaded mid-deployment renders every step so far and connects again; steps are
sent by id, and the browser replaces a fragment it already has (static/js/progress.js).
"""

from __future__ import annotations

from django.template.loader import render_to_string

from homelab.core.consumers import FollowConsumer
from marketplace.models import FINAL_STATUSES, Deployment, DeploymentStep
from marketplace.views import _progress_context


def _changes(deployment_id: int, after_id: int, pending: set[int], last_status: str | None):
    """(messages to send, new last id, step ids still running, status, final?)."""
    from django.db.models import Q


    deployment = Deployment.objects.select_related("device").filter(pk=deployment_id).first()
    if deployment is None:
        return [], after_id, pending, last_status, True
    # read the status before the steps: a final status seen here means every step that
    # led to it is already written, so the last round sends the complete list
    status = deployment.status
    final = status in FINAL_STATUSES
    steps = list(
        DeploymentStep.objects.filter(deployment_id=deployment_id).filter(
            Q(pk__gt=after_id) | Q(pk__in=pending)
        )
    )
    out: list[dict] = []
    still_running = set(pending)
    for step in steps:
        if step.pk in pending and step.pk <= after_id and step.status == "running":
            continue  # sent already and unchanged
        out.append(
            {
                "type": "step",
                "id": step.pk,
                "name": step.name,
                "status": step.status,
                "html": render_to_string("marketplace/_step.html", {"step": step}),
            }
        )
        after_id = max(after_id, step.pk)
        if step.status == "running":
            still_running.add(step.pk)
        else:
            still_running.discard(step.pk)
    if status != last_status:
        out.append(
            {
                "type": "status",
                "status": status,
                "html": render_to_string("marketplace/_status.html", {"deployment": deployment}),
            }
        )
    if final:
        out.append(
            {
                "type": "done",
                "status": status,
                "url": deployment.url,
                "html": render_to_string(
                    "marketplace/_progress.html", _progress_context(deployment)
                ),
                "actions_html": render_to_string(
                    "marketplace/_actions.html", {"deployment": deployment}
                ),
            }
        )
    return out, after_id, still_running, status, final


class DeploymentProgressConsumer(FollowConsumer):
    stream = "deployments"
    url_kwarg = "deployment_id"

    def exists(self, pk: int) -> bool:
        return Deployment.objects.filter(pk=pk).exists()

    def changes(self) -> tuple[list[dict], bool]:
        after_id, pending, status = getattr(self, "state", (0, set(), None))
        messages, after_id, pending, status, final = _changes(self.pk, after_id, pending, status)
        self.state = (after_id, pending, status)
        return messages, final
