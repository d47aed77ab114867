from django.urls import path

from devices.consumers import DashboardConsumer
from homelab.core.consumers import JobProgressConsumer
from marketplace.consumers import DeploymentProgressConsumer

websocket_urlpatterns = [
    path("ws/dashboard/", DashboardConsumer.as_asgi()),
    path("ws/jobs/<int:job_id>/", JobProgressConsumer.as_asgi()),
    path("ws/deployments/<int:deployment_id>/", DeploymentProgressConsumer.as_asgi()),
]
