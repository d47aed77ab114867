"""The pipeline's pooling hook: when the step runs, and the bundled override."""

from __future__ import annotations

import pytest

from marketplace import services
from marketplace.recipes import load_catalog
from pooling.services import pooling_applies

pytestmark = pytest.mark.django_db


def test_pooling_applies_to_apps_with_a_postgres_or_mysql_need_unless_bundled():
    catalog = load_catalog([])
    assert pooling_applies(catalog.get("paperless-ngx"), {})
    assert pooling_applies(catalog.get("monica"), {"ports": {}})
    assert not pooling_applies(catalog.get("paperless-ngx"), {"bundled_databases": True})
    assert not pooling_applies(catalog.get("vaultwarden"), {})


def test_bundled_databases_must_be_true_or_false():
    with pytest.raises(services.DeploymentError) as caught:
        services.deployment_create(slug="monica", config={"bundled_databases": "yes"})
    assert caught.value.field == "config.bundled_databases"
    with pytest.raises(services.DeploymentError) as caught:
        services.deployment_create(slug="monica", config={"databases": True})
    assert "bundled_databases" in caught.value.message
