"""Pooled database passwords are masked in an app's logs (issue 13, finding 3).

n8n's log printed DB_POSTGRESDB_PASSWORD in clear: deployment_logs masked only the
deployment's own secrets. The device's answer is stubbed (the masking is what is tested);
tests/integration/test_pooling_lab.py covers the real device.
"""

from __future__ import annotations

import pytest

from devices import ssh
from devices.models import Device
from marketplace import services
from marketplace.models import Deployment
from pooling.models import PooledDatabase, SharedInstance

pytestmark = pytest.mark.django_db

POOLED_PASSWORD = "PooledPw0rdGeneratedByUs123"


def test_pooled_database_passwords_are_masked_in_logs(monkeypatch):
    device = Device.objects.create(
        name="server-02",
        address="127.0.0.1",
        username="root",
        private_key="not-a-real-key",
        public_key="ssh-ed25519 AAAA",
    )
    deployment = Deployment.objects.create(
        slug="n8n",
        app_name="n8n",
        category="automation",
        device=device,
        project="hl-n8n-default",
        instance="default",
        status="running",
    )
    instance = SharedInstance.objects.create(
        device=device,
        engine="postgres",
        version="16",
        project="hl-pool-postgres",
        admin_password="AdminPw",
    )
    PooledDatabase.objects.create(
        instance=instance,
        project=deployment.project,
        database_name="n8n_default",
        role_name="n8n_default",
        password=POOLED_PASSWORD,
    )
    log = f"n8n-1 | DB_POSTGRESDB_PASSWORD={POOLED_PASSWORD}\nn8n-1 | ready\n"
    monkeypatch.setattr(ssh, "run", lambda *args, **kwargs: (0, log, ""))
    text = services.deployment_logs(deployment=deployment, tail=50)
    assert POOLED_PASSWORD not in text
    assert "DB_POSTGRESDB_PASSWORD=" in text and "ready" in text


# --- Finding 6: kept dumps are private on the device -----------------------------------------


def test_dumps_are_written_owner_only_into_a_private_folder(tmp_path):
    """The real shell scripts, run here with a stand-in `docker` that prints a dump."""
    import os
    import stat
    import subprocess

    from pooling import engines

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text("#!/bin/sh\necho 'CREATE TABLE secrets (x text);'\n")
    (bin_dir / "docker").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    folder = tmp_path / "kept dumps"
    folder.mkdir(mode=0o755)  # an older folder made with the default mode is closed again
    subprocess.run(
        engines.dumps_folder_command(str(folder)), check=True, env={**env, "UMASK": "022"}
    )
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for engine in ("postgres", "mariadb"):
        path = folder / f"n8n_default-{engine}.sql"
        command = engines.dump_command(engine, "container", "n8n_default", str(path))
        subprocess.run(
            ["sh", "-c", 'umask 022; exec "$@"', "sh", *command], check=True, env=env, input=b"pw\n"
        )
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, engine
        assert "CREATE TABLE" in path.read_text()
