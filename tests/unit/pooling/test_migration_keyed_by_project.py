"""pooling 0004: a pooled database keeps its app (project, name, instance, id) when the
foreign key to marketplace.Deployment goes."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

OTHERS = [("marketplace", "0004_device_lease_moved_to_devices"), ("devices", "0003_device_lease")]
BEFORE = [("pooling", "0003_shared_instance_last_incident"), *OTHERS]
AFTER = [("pooling", "0004_pooled_database_keyed_by_project"), *OTHERS]


@pytest.mark.django_db(transaction=True)
def test_each_pooled_database_keeps_its_app_through_the_migration():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    Device = old.get_model("devices", "Device")
    Deployment = old.get_model("marketplace", "Deployment")
    SharedInstance = old.get_model("pooling", "SharedInstance")
    PooledDatabase = old.get_model("pooling", "PooledDatabase")
    device = Device.objects.create(
        name="pi", address="192.0.2.1", username="root", private_key="k", public_key="k"
    )
    deployment = Deployment.objects.create(
        slug="paperless-ngx",
        app_name="Paperless-ngx",
        device=device,
        instance="family",
        project="hl-paperless-ngx-family",
        status="running",
    )
    shared = SharedInstance.objects.create(
        device=device, engine="postgres", version="16", project="hl-pool-postgres"
    )
    PooledDatabase.objects.create(
        instance=shared, deployment=deployment, database_name="paperless_ngx_family",
        role_name="paperless_ngx_family", password="p" * 40,
    )  # fmt: skip
    PooledDatabase.objects.create(
        instance=shared, deployment=None, database_name="orphan", role_name="orphan",
        password="p" * 40,
    )  # fmt: skip

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps
    rows = {
        row["database_name"]: row
        for row in new.get_model("pooling", "PooledDatabase").objects.values(
            "database_name", "project", "app_name", "app_instance", "app_id"
        )
    }
    assert rows["paperless_ngx_family"] == {
        "database_name": "paperless_ngx_family",
        "project": "hl-paperless-ngx-family",
        "app_name": "Paperless-ngx",
        "app_instance": "family",
        "app_id": deployment.pk,
    }
    assert rows["orphan"]["project"] == "" and rows["orphan"]["app_id"] is None
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
