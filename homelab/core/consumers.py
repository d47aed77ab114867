"""Live progress of any job over a WebSocket: ws/jobs/<id>/.

Web and worker are separate processes and the embedded default has no shared channel
layer, so this consumer follows the persisted rows rather than waiting for events:

1. On connect: the user must be signed in and the job must exist, else close (4401, 4404).
2. Every POLL_SECONDS: read the job (status and progress) first, then the steps that are
   new or were still running when sent, and the items changed since the last round; send
   each as a rendered HTML fragment (JSON {"type": "step"|"item"|"status"|"done", ...}).
3. When the job is final, send "done" with the whole job section rendered, then close.

A reload renders every step so far and connects again: steps are sent by id and the
browser replaces a fragment it already has (static/js/jobs.js).
"""

from __future__ import annotations

import asyncio
import json

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.db.models import Q
from django.template.loader import render_to_string

from homelab.core.access import websocket_allowed
from homelab.core.models import Job, JobItem, JobStep, JobStepStatus

POLL_SECONDS = 0.5


class _Follower:
    """What was sent already, and the next round of changes."""

    def __init__(self, job_id: int):
        self.job_id = job_id
        self.after_step_id = 0
        self.running_steps: set[int] = set()
        self.items_seen: dict[int, tuple] = {}
        self.last_state: tuple | None = None

    def changes(self) -> tuple[list[dict], bool]:
        """(messages to send, final?)."""
        from homelab.core.views import job_context

        job = Job.objects.select_related("user").filter(pk=self.job_id).first()
        if job is None:
            return [], True
        # the status is read before the steps: a final status seen here means every step
        # that led to it is written, so the last round sends the complete list
        final = job.is_final
        out: list[dict] = []
        steps = JobStep.objects.filter(job_id=self.job_id).filter(
            Q(pk__gt=self.after_step_id) | Q(pk__in=self.running_steps)
        )
        for step in steps.order_by("order", "id"):
            if step.pk in self.running_steps and step.status == JobStepStatus.RUNNING:
                continue  # sent already, unchanged
            out.append(
                {
                    "type": "step",
                    "id": step.pk,
                    "name": step.name,
                    "status": step.status,
                    "html": render_to_string("core/_step.html", {"step": step}),
                }
            )
            self.after_step_id = max(self.after_step_id, step.pk)
            if step.status == JobStepStatus.RUNNING:
                self.running_steps.add(step.pk)
            else:
                self.running_steps.discard(step.pk)
        for item in JobItem.objects.filter(job_id=self.job_id).order_by("id"):
            seen = (item.status, item.message)
            if self.items_seen.get(item.pk) == seen:
                continue
            self.items_seen[item.pk] = seen
            out.append(
                {
                    "type": "item",
                    "id": item.pk,
                    "label": item.label,
                    "status": item.status,
                    "html": render_to_string("core/_item.html", {"item": item}),
                }
            )
        state = (job.status, job.percent, job.bytes_done, job.eta_seconds, job.cancel_requested)
        if state != self.last_state:
            self.last_state = state
            out.append(
                {
                    "type": "status",
                    "status": job.status,
                    "percent": job.percent,
                    "html": render_to_string("core/_status.html", {"job": job}),
                }
            )
        if final:
            out.append(
                {
                    "type": "done",
                    "status": job.status,
                    "html": render_to_string("core/_job.html", job_context(job)),
                }
            )
        return out, final


class FollowConsumer(AsyncWebsocketConsumer):
    """Follow one object over a WebSocket by reading its persisted rows.

    1. On connect: the person must be signed in (else 4401), allowed on `stream`
       (homelab.core.access; else 4403), and the object named by the URL's `url_kwarg`
       must exist (`exists`; else 4404).
    2. Every POLL_SECONDS: `changes()` (run in a thread, it may use the ORM) gives the
       messages to send and whether the object is final; when it is, close.
    Subclasses set `stream` and `url_kwarg` and write `exists` and `changes`.
    """

    stream = ""
    url_kwarg = ""

    def exists(self, pk: int) -> bool:
        raise NotImplementedError

    def changes(self) -> tuple[list[dict], bool]:
        raise NotImplementedError

    async def connect(self):
        user = self.scope.get("user")
        self.pk = int(self.scope["url_route"]["kwargs"][self.url_kwarg])
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        if not await websocket_allowed(self.scope, self.stream):
            await self.close(code=4403)
            return
        if not await database_sync_to_async(self.exists)(self.pk):
            await self.close(code=4404)
            return
        await self.accept()
        self.follower_task = asyncio.ensure_future(self._follow())

    async def disconnect(self, code):
        task = getattr(self, "follower_task", None)
        if task is not None and not task.done():
            task.cancel()

    async def _follow(self) -> None:
        next_round = database_sync_to_async(self.changes)
        while True:
            messages, final = await next_round()
            for message in messages:
                await self.send(text_data=json.dumps(message))
            if final:
                await self.close()
                return
            await asyncio.sleep(POLL_SECONDS)


class JobProgressConsumer(FollowConsumer):
    stream = "jobs"
    url_kwarg = "job_id"

    def exists(self, pk: int) -> bool:
        return Job.objects.filter(pk=pk).exists()

    def changes(self) -> tuple[list[dict], bool]:
        if not hasattr(self, "follower"):
            self.follower = _Follower(self.pk)
        return self.follower.changes()
