"""What the Backups page reads (no secrets): destinations, and each installed app's
backups per destination."""

from __future__ import annotations

from django.db.models import Count, Max, Sum

from backups.models import Destination, Snapshot
from marketplace.models import Deployment


def backups_overview() -> dict:
    destinations = list(Destination.objects.all())
    apps = []
    for deployment in Deployment.objects.installed().select_related("device").order_by("app_name"):
        per_destination = {
            row["destination_id"]: row
            for row in Snapshot.objects.filter(deployment=deployment)
            .values("destination_id")
            .annotate(
                count=Count("id", distinct=True),
                last=Max("time"),
                stored=Sum("added_bytes"),
            )
        }
        last = (
            Snapshot.objects.filter(deployment=deployment, kind=Snapshot.Kind.VOLUMES)
            .order_by("-time")
            .first()
        )
        apps.append(
            {
                "deployment": deployment,
                "last": last,
                "cells": [
                    {"destination": d, **per_destination.get(d.pk, {"count": 0, "last": None})}
                    for d in destinations
                ],
            }
        )
    return {"destinations": destinations, "apps": apps}
