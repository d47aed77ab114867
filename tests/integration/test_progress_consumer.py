"""The live progress of a deployment over its WebSocket (ws/deployments/<id>/): each step
as it is written, then "done" with the whole section, then the socket closes; a visitor
is refused. Django's test database, channels' in-memory communicator."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from marketplace.models import Deployment, DeploymentStatus, DeploymentStep
from tests.unit.scheduling.factories import make_device


@pytest.fixture
def owner(django_user_model):
    return django_user_model.objects.create_superuser("owner", password="pw-Owner-123")


def _deployment(status) -> Deployment:
    return Deployment.objects.create(
        slug="vaultwarden", app_name="Vaultwarden", device=make_device("big", ram_free_gb=8),
        instance="default", project="hl-vaultwarden-default", status=status,
    )  # fmt: skip


def _talk(user, deployment_id, *, until_closed=True):
    from homelab.routing import websocket_urlpatterns

    async def talk():
        communicator = WebsocketCommunicator(
            URLRouter(websocket_urlpatterns), f"/ws/deployments/{deployment_id}/"
        )
        communicator.scope["user"] = user
        connected, code = await communicator.connect()
        messages = []
        if connected:
            while True:
                output = await communicator.receive_output(timeout=5)
                if output["type"] == "websocket.close":
                    break
                messages.append(json.loads(output["text"]))
        await communicator.disconnect()
        return connected, code, messages

    return async_to_sync(talk)()


@pytest.mark.django_db(transaction=True)
def test_a_finished_deployment_sends_its_steps_then_done_and_closes(owner):
    deployment = _deployment(DeploymentStatus.RUNNING)
    DeploymentStep.objects.create(deployment=deployment, name="pre-flight", status="ok")
    DeploymentStep.objects.create(deployment=deployment, name="health check", status="ok")

    connected, _, messages = _talk(owner, deployment.pk)

    assert connected
    kinds = [m["type"] for m in messages]
    assert kinds.count("step") == 2 and kinds[-1] == "done", kinds
    assert 'id="progress"' in messages[-1]["html"]


@pytest.mark.django_db(transaction=True)
def test_a_visitor_and_a_missing_deployment_are_refused(owner):
    deployment = _deployment(DeploymentStatus.RUNNING)
    connected, code, _ = _talk(AnonymousUser(), deployment.pk)
    assert not connected and code == 4401
    connected, code, _ = _talk(owner, 999999)
    assert not connected and code == 4404
