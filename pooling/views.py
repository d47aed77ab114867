"""The pooling page: each shared instance with its databases, memory and savings.

Thin: reads from selectors and renders.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from pooling import selectors


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
