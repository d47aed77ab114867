"""The lab's stand-in plan covers every image the recipes name (tests/lab/images)."""

from __future__ import annotations

import json

from marketplace.recipes import clear_catalog_cache, load_catalog
from tests.lab.images.build import dockerfile, is_docker_hub, plan_images, role_for


def test_every_recipe_image_has_a_standin_with_the_right_role():
    clear_catalog_cache()
    catalog = load_catalog([])
    plans = plan_images(catalog)
    assert set(plans) == {image for r in catalog.recipes.values() for image in r.images}
    assert role_for("postgres:16-alpine") == "postgres"
    assert role_for("tensorchord/pgvecto-rs:pg14-v0.2.0") == "postgres"
    assert role_for("mariadb:11.4") == "mariadb"
    assert role_for("redis:7-alpine") == "redis"
    assert role_for("vaultwarden/server:1.32.7") == "app"


def test_an_app_standin_knows_its_ports_health_path_volumes_and_databases():
    plans = plan_images(load_catalog([]))
    paperless = plans["paperlessngx/paperless-ngx:2.13.5"]
    assert paperless.ports == {"8000/tcp"}
    assert paperless.health == "/accounts/login/"
    assert "/usr/src/paperless/media" in paperless.volumes
    assert sorted(d["engine"] for d in paperless.databases) == ["postgres", "redis"]
    adguard = plans["adguard/adguardhome:v0.107.55"]
    assert {"53/udp", "53/tcp", "3000/tcp", "80/tcp"} == adguard.ports


def test_the_dockerfile_quotes_env_values_and_escapes_dollars():
    plan = plan_images(load_catalog([]))["paperlessngx/paperless-ngx:2.13.5"]
    plan.health = '/a"$b'
    text = dockerfile(plan, "base:1")
    assert 'ENV STANDIN_HEALTH="/a\\"\\$b"' in text
    line = next(x for x in text.splitlines() if x.startswith("ENV STANDIN_DATABASES="))
    assert json.loads(json.loads(line.split("=", 1)[1]))


def test_only_docker_hub_names_go_through_the_registry_mirror():
    assert is_docker_hub("postgres:16-alpine")
    assert is_docker_hub("vaultwarden/server:1.32.7")
    assert not is_docker_hub("ghcr.io/immich-app/immich-server:v1.123.0")
    assert not is_docker_hub("localhost:5000/x:1")
