"""The watch's section on an app's page: health, uptime (a window selector), answer
times as a small chart, the app's history and its watch settings (issue 20)."""

from __future__ import annotations

from django import template
from django.utils import timezone

from marketplace import health_checks, watch
from marketplace.watch_selectors import deployment_events

register = template.Library()

CHART_WIDTH, CHART_HEIGHT, CHART_POINTS = 600, 80, 120


def answer_chart(samples, *, width: int = CHART_WIDTH, height: int = CHART_HEIGHT) -> dict:
    """SVG polyline points of answer times (ms) over time, and the failed checks as marks.

    More samples than CHART_POINTS are thinned to every n-th; no script: the page's CSP
    allows none inline."""
    if not samples:
        return {"points": "", "failed": [], "max_ms": 0}
    step = max(1, len(samples) // CHART_POINTS)
    shown = samples[::step]
    start, end = shown[0].time.timestamp(), shown[-1].time.timestamp()
    span = max(end - start, 1.0)
    top = max((s.answer_ms or 0) for s in shown) or 1.0
    points, failed = [], []
    for sample in shown:
        x = round((sample.time.timestamp() - start) / span * width, 1)
        if sample.ok and sample.answer_ms is not None:
            y = round(height - (sample.answer_ms / top) * (height - 4) - 2, 1)
            points.append(f"{x},{y}")
        elif not sample.ok:
            failed.append(x)
    return {"points": " ".join(points), "failed": failed, "max_ms": round(top)}


@register.inclusion_tag("marketplace/_watch.html", takes_context=True)
def deployment_watch(context, deployment):
    request = context.get("request")
    window = request.GET.get("window", "24h") if request is not None else "24h"
    if window not in health_checks.UPTIME_WINDOWS:
        window = "24h"
    now = timezone.now()
    samples = health_checks.answer_history(
        deployment, since=now - health_checks.UPTIME_WINDOWS[window]
    )
    uptime = health_checks.deployment_uptime(deployment, now=now)
    return {
        "deployment": deployment,
        "health": health_checks.deployment_health(deployment),
        "uptime": uptime,
        "uptime_percent": None if uptime[window] is None else round(uptime[window] * 100, 2),
        "window": window,
        "windows": list(health_checks.UPTIME_WINDOWS),
        "chart": answer_chart(samples),
        "chart_width": CHART_WIDTH,
        "chart_height": CHART_HEIGHT,
        "events": deployment_events(deployment=deployment, limit=20),
        "auto_restart": watch.restarts_automatically(deployment),
        "interval": deployment.health_check_minutes or health_checks.DEFAULT_INTERVAL_MINUTES,
        "csrf_token": context.get("csrf_token"),
    }
