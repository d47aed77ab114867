"""The pooling page: each shared instance with its databases, memory and savings.

Thin: reads from selectors and renders.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from pooling import selectors, services
from pooling.jobs import shared_instance_remove_start


def pooling_index(request: HttpRequest) -> HttpResponse:
    instances = []
    for instance in selectors.shared_instances_live():
        baseline, source = selectors.shared_instance_baseline(instance)
        databases = list(selectors.pooled_databases_of(instance))
        measured = [d.connections for d in databases if d.connections is not None]
        instances.append(
            {
                "instance": instance,
                "databases": databases,
                "connections": sum(measured) if measured else None,
                "baseline_bytes": baseline,
                "baseline_source": source,
                "saved_bytes": selectors.shared_instance_saved_bytes(instance, instance.apps),
            }
        )
    return render(
        request,
        "pooling/index.html",
        {
            "instances": instances,
            "saved_bytes": selectors.pooling_saved_ram_bytes(),
            "recommendations": selectors.pooling_recommendations(),
            "unpooled": selectors.pooling_unpooled(),
        },
    )


@require_POST
def shared_instance_remove(request: HttpRequest, instance_id: int) -> HttpResponse:
    """Remove a shared server no app uses (the page offers it only for those): a
    `pool.remove` job; the job's page follows it."""
    instance = get_object_or_404(selectors.shared_instances_live(), pk=instance_id)
    try:
        job = shared_instance_remove_start(instance=instance, user=request.user)
    except services.PoolingError as exc:
        messages.error(request, exc.message)
        return redirect("pooling_index")
    messages.info(
        request,
        f"Removing the shared {instance.get_engine_display()} on {instance.device.name}… "
        "Its steps follow here.",
    )
    return redirect("job_detail", job_id=job.pk)
