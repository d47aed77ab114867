"""The Backups page: destinations and every app against every destination; "Back up now".

Thin: reads from selectors, starts jobs through services.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from backups import selectors, services
from homelab.core.errors import HomelabError
from homelab.core.web import show_error
from marketplace.models import Deployment


def backups_index(request: HttpRequest) -> HttpResponse:
    return render(request, "backups/index.html", selectors.backups_overview())


@require_POST
def backup_now(request: HttpRequest, deployment_id: int) -> HttpResponse:
    """A `backup.run` job for the app; its page follows it."""
    deployment = get_object_or_404(Deployment, pk=deployment_id)
    try:
        job = services.deployment_backup(deployment=deployment, user=request.user)
    except HomelabError as exc:
        show_error(request, exc)
        return redirect("backups_index")
    messages.info(request, f"Backing up {deployment.app_name}… Its steps follow here.")
    return redirect("job_detail", job_id=job.pk)
