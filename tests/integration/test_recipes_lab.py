"""Recipes against real Docker Compose on the lab devices.

* every recipe's rendered compose file passes `docker compose config` (Compose v2.40.3);
* stand-ins of an app and its bundled databases come up inside a device, and the app's
  /standin/status says it logged into each database with the exact password the platform
  generated, `$` included (compose issue #11058).
"""

from __future__ import annotations

import hashlib
import json
import secrets as pysecrets
import time
import urllib.error
import urllib.request

import pytest

from devices.compose import dump_compose, escape_dollars
from marketplace.compose import (
    RenderConfig,
    generate_secrets,
    render_compose,
)
from marketplace.recipes import load_catalog

DEVICE = "lab-server-2"
CATALOG = load_catalog([])
WORK = "/tmp/homelab-recipes-test"


def _upload(lab, device: str, folder: str, text: str) -> None:
    lab.exec(device, ["mkdir", "-p", folder], check=True)
    lab.exec(device, ["sh", "-c", f"cat > {folder}/compose.yaml"], input=text, check=True)


@pytest.mark.parametrize("slug", sorted(CATALOG.recipes))
def test_the_rendered_compose_passes_docker_compose_config(lab, slug):
    recipe = CATALOG.get(slug)
    secrets = generate_secrets(recipe)
    first = recipe.manifest.secrets[0].name if recipe.manifest.secrets else None
    if first:
        secrets[first] = secrets[first][:20] + "$x${HOME}$"  # must reach the app verbatim
    text = dump_compose(
        render_compose(
            recipe,
            project=f"cfg-{slug}",
            config=RenderConfig(secrets=secrets, env={"HOMELAB_NOTE": "a $b `c` $(d)"}),
        )
    )
    folder = f"{WORK}/config-{slug}"
    _upload(lab, DEVICE, folder, text)
    quiet = lab.exec(DEVICE, ["docker", "compose", "-f", f"{folder}/compose.yaml", "config", "-q"])
    assert quiet.returncode == 0, quiet.stderr
    resolved = lab.exec(
        DEVICE, ["docker", "compose", "-f", f"{folder}/compose.yaml", "config", "--format", "json"]
    )
    assert resolved.returncode == 0, resolved.stderr
    assert "WARN" not in resolved.stderr, resolved.stderr
    data = json.loads(resolved.stdout)
    main = data["services"][recipe.manifest.main_service]
    # `config` prints a compose file again, so a literal `$` comes back escaped as `$$`;
    # had compose interpolated `$b`, it would be gone
    assert main["environment"]["HOMELAB_NOTE"] == escape_dollars("a $b `c` $(d)")
    assert main["labels"]["homelab.app"] == slug
    if first:
        value = escape_dollars(secrets[first])
        env_names = recipe.manifest.secrets[0].env
        found = [
            v
            for service in data["services"].values()
            for v in (service.get("environment") or {}).values()
            if v == value
        ]
        assert found, f"{env_names} did not reach compose verbatim"
    lab.exec(DEVICE, ["rm", "-rf", folder])


@pytest.fixture(scope="module")
def standin_images(lab):
    from tests.lab.images import build_and_push_recipe_images

    return build_and_push_recipe_images(lab, CATALOG, verbose=False)


def _status(address: str, port: int, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{address}:{port}/standin/status", timeout=20) as r:
                data = json.load(r)
            if data["databases_ok"]:
                return data
            last = data
        except (urllib.error.URLError, OSError, ValueError) as e:
            last = repr(e)
        time.sleep(2)
    raise AssertionError(f"the stand-in never reported its databases reachable: {last}")


@pytest.mark.parametrize("slug", ["paperless-ngx", "nextcloud", "n8n", "immich", "monica"])
def test_an_app_standin_reaches_its_bundled_databases_with_the_generated_password(
    lab, standin_images, slug
):
    recipe = CATALOG.get(slug)
    secrets = generate_secrets(recipe)
    db_secret = next(s for s in recipe.manifest.secrets if s.name == "db_password")
    secrets["db_password"] = pysecrets.token_hex(8) + "$dollar${HOME}$$"
    host_port = 20000 + pysecrets.randbelow(9000)
    web = recipe.manifest.web_port
    project = f"it-{slug}-{pysecrets.token_hex(3)}"
    data = render_compose(
        recipe,
        project=project,
        config=RenderConfig(secrets=secrets, ports={web.name: host_port}),
    )
    folder = f"{WORK}/{project}"
    _upload(lab, DEVICE, folder, dump_compose(data))
    compose = ["docker", "compose", "-p", project, "-f", f"{folder}/compose.yaml"]
    try:
        up = lab.exec(
            DEVICE, [*compose, "up", "-d", "--wait", "--wait-timeout", "240"], timeout=400
        )
        assert up.returncode == 0, up.stderr
        status = _status(lab.device(DEVICE).address, host_port)
        assert status["app"] == slug
        engines = sorted(d["engine"] for d in status["databases"])
        assert engines == sorted(n.engine for n in recipe.manifest.requires_database)
        expected = hashlib.sha256(secrets["db_password"].encode()).hexdigest()
        password_dbs = [d for d in status["databases"] if d["engine"] != "redis"]
        assert [d["password_sha256"] for d in password_dbs] == [expected], (
            f"{db_secret.env} reached the app altered"
        )
        assert status["volumes"] and all(v == "written" for v in status["volumes"].values())
    finally:
        lab.exec(DEVICE, [*compose, "down", "-v", "--remove-orphans"], timeout=180)
        lab.exec(DEVICE, ["rm", "-rf", folder])
    left = lab.exec(DEVICE, ["docker", "ps", "-aq", "--filter", f"label=homelab.project={project}"])
    assert left.stdout.strip() == ""
