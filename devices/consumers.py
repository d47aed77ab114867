"""WebSocket consumer for the live dashboard.

The pages refresh themselves with htmx polling (see templates/devices/_dashboard_live.html),
which works with the embedded default where web and worker are separate processes. This
consumer is the push path for later: a signed-in browser connected to ws/dashboard/ gets
the rendered live partial on connect and whenever something sends `dashboard.changed` to
the "dashboard" group (a Redis channel layer carries that across processes).
"""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.template.loader import render_to_string
from django.utils import timezone

from devices.models import Device
from devices.selectors import dashboard_cards, resources_summary
from homelab.core.access import websocket_allowed

DASHBOARD_GROUP = "dashboard"


@database_sync_to_async
def _render_live() -> str:
    devices = list(Device.objects.all())
    return render_to_string(
        "devices/_dashboard_live.html",
        {
            "devices": dashboard_cards(devices),
            "summary": resources_summary() if devices else None,
            "updated": timezone.now(),
        },
    )


class DashboardConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close()
            return
        if not await websocket_allowed(self.scope, "dashboard"):
            return await self.close(code=4403)
        await self.channel_layer.group_add(DASHBOARD_GROUP, self.channel_name)
        await self.accept()
        await self.send(text_data=await _render_live())

    async def disconnect(self, code):
        await self.channel_layer.group_discard(DASHBOARD_GROUP, self.channel_name)

    async def dashboard_changed(self, event):
        await self.send(text_data=await _render_live())
