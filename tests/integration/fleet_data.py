"""Factory data for the fleet tests: devices, live apps, shared database servers."""

from __future__ import annotations

from devices.models import Device
from marketplace.models import Deployment
from pooling.models import PooledDatabase, SharedInstance

SLUGS = ("gitea", "nextcloud", "vaultwarden", "uptime-kuma", "jellyfin", "n8n", "immich")


def make_device(name: str, *, status: str = "online", **fields) -> Device:
    defaults = {
        "address": "127.0.0.1",
        "username": "pi",
        "private_key": "PRIVATE-KEY-NEVER-EXPORTED",
        "public_key": "ssh-ed25519 AAAA-public",
        "host_key_type": "ssh-ed25519",
        "host_key": "AAAAHOSTKEY",
        "status": status,
    }
    defaults.update(fields)
    return Device.objects.create(name=name, **defaults)


def make_app(
    device: Device, slug: str, *, instance: str = "default", status: str = "running", config=None
) -> Deployment:
    return Deployment.objects.create(
        slug=slug,
        app_name=slug.replace("-", " ").title(),
        device=device,
        instance=instance,
        project=f"hl-{slug}-{instance}",
        status=status,
        config=config or {},
        secrets='{"ADMIN_TOKEN": "generated-secret-value"}',
    )


def make_shared(device: Device, *apps: Deployment, engine: str = "postgres") -> SharedInstance:
    shared = SharedInstance.objects.create(
        device=device,
        engine=engine,
        version="16-alpine",
        project=f"hl-pool-{engine}",
        admin_password="ADMIN-PASSWORD-NEVER-EXPORTED",
        status="running",
    )
    for app in apps:
        PooledDatabase.objects.create(
            instance=shared,
            project=app.project,
            app_name=app.app_name,
            app_instance=app.instance,
            app_id=app.pk,
            database_name=app.slug.replace("-", "_"),
            role_name=app.slug.replace("-", "_"),
            password="DB-PASSWORD-NEVER-EXPORTED",
        )
    return shared


def make_fleet(devices: int = 10, apps_per_device: int = 5) -> list[Device]:
    made = []
    for index in range(devices):
        device = make_device(f"node-{index:02d}", status="offline" if index == 3 else "online")
        apps = [make_app(device, SLUGS[n % len(SLUGS)]) for n in range(apps_per_device)]
        if index % 2 == 0:
            make_shared(device, apps[1])
        made.append(device)
    return made
