"""Extra settings a person types whose name says they are secret (SMTP_PASSWORD...), or that
the person marks secret, are stored encrypted and never shown: not in the config the API
answers, not in the database in clear, and masked in the compose file shown and in logs
(issue 13, finding 8). The device is never reached (the quick port listing is faked)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from homelab.core.masking import MASK
from marketplace import pipeline, services
from marketplace.models import Deployment
from marketplace.recipes import load_catalog
from tests.unit.scheduling.factories import make_device

pytestmark = pytest.mark.django_db

TYPED = "Tr0ub4dor&3-smtp"
MARKED = "my-webhook-value-42"


@pytest.fixture
def quiet_device(monkeypatch):
    def run(self, args, *, timeout=None):
        return 0, "", ""

    monkeypatch.setattr(pipeline.DeploymentShell, "run", run)
    monkeypatch.setattr(services, "enqueue_run", lambda deployment_id: None)
    return make_device("big", ram_free_gb=8)


def _deploy(client):
    user = get_user_model().objects.create_superuser("owner", password="a-long-password-1")
    client.force_login(user)
    config = {
        "env": {"SMTP_PASSWORD": TYPED, "SMTP_HOST": "mail.example", "HOOK": MARKED},
        "secret_env": ["HOOK"],
    }
    response = client.post(
        "/api/v1/applications/vaultwarden/deploy",
        {"config": config},
        content_type="application/json",
    )
    assert response.status_code == 202, response.content
    return Deployment.objects.get(pk=response.json()["deployment_id"])


def test_secret_settings_are_encrypted_and_the_config_shows_them_masked(client, quiet_device):
    deployment = _deploy(client)

    assert deployment.config["env"] == {
        "SMTP_PASSWORD": MASK,
        "SMTP_HOST": "mail.example",
        "HOOK": MASK,
    }
    assert deployment.env_secret_values() == {"SMTP_PASSWORD": TYPED, "HOOK": MARKED}
    with connection.cursor() as cursor:
        cursor.execute("select * from marketplace_deployment where id = %s", [deployment.pk])
        row = " ".join(str(v) for v in cursor.fetchone())
    assert TYPED not in row and MARKED not in row
    listing = client.get("/api/v1/deployments").content.decode()
    detail = client.get(f"/api/v1/deployments/{deployment.pk}").content.decode()
    for answer in (listing, detail):
        assert TYPED not in answer and MARKED not in answer
        assert "mail.example" in answer  # a plain setting is shown as typed


def test_the_compose_file_gets_the_real_value_and_shows_it_masked(client, quiet_device):
    deployment = _deploy(client)
    p = pipeline.DeploymentPipeline(deployment, load_catalog().recipes["vaultwarden"])
    written = {}
    p._store_compose = lambda text: written.setdefault("text", text)

    p.render(ctx=None)

    assert TYPED in written["text"] and MARKED in written["text"]  # what the app needs
    assert TYPED in p.shell.secrets and MARKED in p.shell.secrets  # masked in every command
    assert TYPED not in services.mask(written["text"], deployment.values_to_mask())


@pytest.mark.parametrize(
    ("secret_env", "field"),
    [
        ("HOOK", "config.secret_env"),
        (["NOT_GIVEN"], "config.secret_env"),
        ([1], "config.secret_env"),
    ],
)
def test_a_bad_mark_is_a_422_naming_the_field(client, quiet_device, secret_env, field):
    user = get_user_model().objects.create_superuser("owner", password="a-long-password-1")
    client.force_login(user)
    response = client.post(
        "/api/v1/applications/vaultwarden/deploy",
        {"config": {"env": {"HOOK": "x"}, "secret_env": secret_env}},
        content_type="application/json",
    )
    assert response.status_code == 422, response.content
    assert response.json()["field"] == field
    assert not Deployment.objects.exists()
