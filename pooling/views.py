"""The pooling page: each shared instance with its databases, memory and savings.

Thin: reads from selectors and renders.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from homelab.core.errors import HomelabError
from homelab.core.web import show_error
from pooling import selectors
from pooling.jobs import shared_instance_remove_start


def pooling_index(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "pooling/index.html",
        {
            "instances": selectors.shared_instance_summaries(),
            "saved_bytes": selectors.pooling_saved_ram_bytes(),
            "recommendations": selectors.pooling_recommendations(),
            "unpooled": selectors.pooling_unpooled(),
        },
    )


@require_http_methods(["GET", "POST"])
def shared_instance_remove(request: HttpRequest, instance_id: int) -> HttpResponse:
    """Remove a shared server no app uses (the page offers it only for those).

    GET asks first: what will be removed, and that no app uses it. POST starts the
    `pool.remove` job; the job's page follows it."""
    instance = get_object_or_404(selectors.shared_instances_live(), pk=instance_id)
    if request.method != "POST":
        return render(
            request,
            "pooling/remove.html",
            {"instance": instance, "app_count": instance.databases.count()},
        )
    try:
        job = shared_instance_remove_start(instance=instance, user=request.user)
    except HomelabError as exc:
        show_error(request, exc)
        return redirect("pooling_index")
    messages.info(
        request,
        f"Removing the shared {instance.get_engine_display()} on {instance.device.name}… "
        "Its steps follow here.",
    )
    return redirect("job_detail", job_id=job.pk)
