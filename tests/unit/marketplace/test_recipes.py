"""The recipe catalog: every built-in recipe is valid; a broken recipe is listed with its
file, field and problem while the others still load; custom folders override built-ins."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from marketplace.recipes import (
    BUILTIN_DIR,
    CATEGORIES,
    Catalog,
    RecipeNotFound,
    clear_catalog_cache,
    image_problem,
    load_catalog,
    load_recipe,
)

from .helpers import copy_recipe, edit_compose, edit_manifest

BUILTIN_SLUGS = sorted(p.name for p in BUILTIN_DIR.iterdir() if p.is_dir())
MVP = {
    "vaultwarden",
    "uptime-kuma",
    "nextcloud",
    "jellyfin",
    "home-assistant",
    "immich",
    "paperless-ngx",
    "adguard-home",
    "nginx-proxy-manager",
    "portainer",
}


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_catalog_cache()
    yield
    clear_catalog_cache()


def _catalog(*dirs: Path) -> Catalog:
    return load_catalog(list(dirs))


def _problems(catalog: Catalog, folder: str) -> list[str]:
    return [str(p) for p in catalog.problems_for(folder)]


# ------------------------------------------------------------------------- built-ins
def test_every_builtin_recipe_loads_valid():
    catalog = _catalog()
    assert catalog.invalid == []
    assert sorted(catalog.recipes) == BUILTIN_SLUGS


def test_the_catalog_has_at_least_15_recipes_covering_the_mvp_apps():
    catalog = _catalog()
    assert len(catalog.recipes) >= 15
    assert set(catalog.recipes) >= MVP


@pytest.mark.parametrize("slug", BUILTIN_SLUGS)
def test_each_builtin_recipe_pins_every_image_and_declares_its_web_port(slug):
    recipe = _catalog().get(slug)
    for image in recipe.images:
        assert image_problem(image) is None, image
        assert ":latest" not in image
    assert recipe.manifest.category in CATEGORIES
    assert recipe.manifest.web_port is not None
    for service in recipe.compose["services"].values():
        assert service.get("restart") == "unless-stopped"
    assert recipe.source == "builtin" and not recipe.overrides_builtin


def test_bundled_databases_are_declared_with_their_env_mapping():
    catalog = _catalog()
    engines = {
        slug: sorted(n.engine for n in catalog.get(slug).manifest.requires_database)
        for slug in ("paperless-ngx", "immich", "nextcloud", "n8n", "monica")
    }
    assert engines == {
        "paperless-ngx": ["postgres", "redis"],
        "immich": ["postgres", "redis"],
        "nextcloud": ["postgres"],
        "n8n": ["postgres"],
        "monica": ["mysql"],
    }


def test_an_unknown_slug_raises_a_clear_error():
    with pytest.raises(RecipeNotFound, match="no app 'nope'"):
        _catalog().get("nope")


# --------------------------------------------------------------------- broken recipes
def test_invalid_yaml_is_listed_with_its_line_and_the_rest_still_loads(tmp_path):
    folder = copy_recipe(tmp_path, as_slug="broken")
    (folder / "manifest.yaml").write_text("name: [unclosed\nslug: broken\n")
    catalog = _catalog(tmp_path)
    (problem,) = catalog.problems_for("broken")
    assert problem.file == "manifest.yaml"
    assert "not valid YAML" in problem.problem and "line" in problem.problem
    assert "broken" not in catalog.recipes
    assert set(BUILTIN_SLUGS) <= set(catalog.recipes)


def test_an_unknown_field_is_named(tmp_path):
    folder = copy_recipe(tmp_path, as_slug="extra")
    edit_manifest(folder, lambda m: m.update(colour="blue"))
    assert _problems(_catalog(tmp_path), "extra") == [
        "extra/manifest.yaml: colour: is not a known field (check the spelling, or remove it)"
    ]


def test_a_nested_field_error_gives_the_field_path_in_plain_words(tmp_path):
    folder = copy_recipe(tmp_path, as_slug="tiny")
    edit_manifest(folder, lambda m: m["requirements"].update(ram_min_mb=0))
    assert _problems(_catalog(tmp_path), "tiny") == [
        "tiny/manifest.yaml: requirements.ram_min_mb: must be at least 1"
    ]


def test_a_list_item_error_gives_its_index(tmp_path):
    folder = copy_recipe(tmp_path, as_slug="badport")
    edit_manifest(folder, lambda m: m["ports"][0].update(protocol="sctp"))
    (problem,) = _catalog(tmp_path).problems_for("badport")
    assert problem.field == "ports[0].protocol"
    assert "must be one of" in problem.problem


def test_a_string_where_a_number_belongs_is_refused(tmp_path):
    folder = copy_recipe(tmp_path, as_slug="strings")
    edit_manifest(folder, lambda m: m["requirements"].update(ram_min_mb="128"))
    assert _problems(_catalog(tmp_path), "strings") == [
        "strings/manifest.yaml: requirements.ram_min_mb: must be a whole number"
    ]


@pytest.mark.parametrize("slug", ["Bad_Slug", "-x", "a" * 42, "x;rm -rf /", "ok slug"])
def test_a_bad_slug_is_refused(tmp_path, slug):
    folder = copy_recipe(tmp_path, as_slug="good")
    edit_manifest(folder, lambda m: m.update(slug=slug))
    problems = _catalog(tmp_path).problems_for("good")
    assert [p.field for p in problems] == ["slug"]


def test_a_slug_different_from_the_folder_is_refused(tmp_path):
    folder = copy_recipe(tmp_path, as_slug="folder-name")
    edit_manifest(folder, lambda m: m.update(slug="other-name"))
    (problem,) = _catalog(tmp_path).problems_for("folder-name")
    assert problem.field == "slug" and "folder" in problem.problem


@pytest.mark.parametrize(
    ("image", "words"),
    [
        ("vaultwarden/server", "has no tag"),
        ("vaultwarden/server:latest", "uses :latest"),
        ("vaultwarden/server:1.0;reboot", "not a valid image reference"),
    ],
)
def test_an_unpinned_or_malformed_image_is_refused(tmp_path, image, words):
    folder = copy_recipe(tmp_path, as_slug="unpinned")
    edit_compose(folder, lambda c: c["services"]["vaultwarden"].update(image=image))
    (problem,) = _catalog(tmp_path).problems_for("unpinned")
    assert (problem.file, problem.field) == ("compose.yaml", "services.vaultwarden.image")
    assert words in problem.problem


def test_a_missing_compose_file_is_reported(tmp_path):
    folder = copy_recipe(tmp_path, as_slug="nocompose")
    (folder / "compose.yaml").unlink()
    assert _problems(_catalog(tmp_path), "nocompose") == ["nocompose/compose.yaml: is missing"]


def test_an_unparsable_compose_file_is_reported(tmp_path):
    folder = copy_recipe(tmp_path, as_slug="badcompose")
    (folder / "compose.yaml").write_text("services:\n  app: {image: [\n")
    (problem,) = _catalog(tmp_path).problems_for("badcompose")
    assert problem.file == "compose.yaml" and "not valid YAML" in problem.problem


def test_main_service_ports_and_volumes_must_match_compose(tmp_path):
    folder = copy_recipe(tmp_path, as_slug="mismatch")

    def change(m):
        m["main_service"] = "web"
        m["ports"][0]["container_port"] = 81
        m["health_check"]["port"] = 81
        m["volumes"][0]["container_path"] = "/elsewhere"

    edit_manifest(folder, change)
    problems = {p.field: p.problem for p in _catalog(tmp_path).problems_for("mismatch")}
    assert "is not a service of compose.yaml" in problems["main_service"]
    assert "publishes no 81/tcp" in problems["ports[0]"]
    assert (
        "80/tcp, which the manifest's ports do not declare"
        in problems["services.vaultwarden.ports"]
    )
    assert "no service mounts 'data' at /elsewhere" in problems["volumes[0].container_path"]


def test_a_placeholder_that_is_not_a_declared_secret_is_refused(tmp_path):
    folder = copy_recipe(tmp_path, as_slug="placeholder")
    edit_compose(
        folder,
        lambda c: c["services"]["vaultwarden"]["environment"].update(DOMAIN="${DOMAIN:-x}"),
    )
    (problem,) = _catalog(tmp_path).problems_for("placeholder")
    assert problem.field == "services.vaultwarden.environment.DOMAIN"
    assert "not the env of a declared secret" in problem.problem


def test_a_host_bind_mount_is_refused(tmp_path):
    folder = copy_recipe(tmp_path, as_slug="bind")
    edit_compose(folder, lambda c: c["services"]["vaultwarden"]["volumes"].append("/etc:/host"))
    (problem,) = _catalog(tmp_path).problems_for("bind")
    assert problem.field == "services.vaultwarden.volumes" and "'/etc'" in problem.problem


def test_a_container_name_is_refused_because_instances_would_collide(tmp_path):
    folder = copy_recipe(tmp_path, as_slug="named")
    edit_compose(folder, lambda c: c["services"]["vaultwarden"].update(container_name="vw"))
    (problem,) = _catalog(tmp_path).problems_for("named")
    assert problem.field == "services.vaultwarden.container_name"


def test_several_broken_recipes_each_report_and_the_good_custom_one_loads(tmp_path):
    copy_recipe(tmp_path, as_slug="fine")
    (tmp_path / "empty").mkdir()
    bad = copy_recipe(tmp_path, as_slug="bad")
    edit_manifest(bad, lambda m: m.pop("health_check"))
    catalog = _catalog(tmp_path)
    assert "fine" in catalog.recipes and catalog.get("fine").source == "custom"
    assert _problems(catalog, "empty") == ["empty/manifest.yaml: is missing"]
    assert _problems(catalog, "bad") == ["bad/manifest.yaml: health_check: is required"]


def test_load_recipe_never_raises_on_a_non_mapping_manifest(tmp_path):
    folder = copy_recipe(tmp_path, as_slug="list")
    (folder / "manifest.yaml").write_text("- a\n- b\n")
    (problem,) = load_recipe(folder)
    assert problem.problem.startswith("must be a mapping")


# ----------------------------------------------------------------------- custom folders
def test_a_custom_recipe_with_a_builtin_slug_overrides_it_and_says_so(tmp_path):
    folder = copy_recipe(tmp_path, "vaultwarden")
    edit_manifest(folder, lambda m: m.update(name="My Vaultwarden"))
    recipe = _catalog(tmp_path).get("vaultwarden")
    assert recipe.name == "My Vaultwarden"
    assert recipe.source == "custom" and recipe.overrides_builtin
    assert recipe.folder == folder


def test_an_invalid_custom_recipe_does_not_hide_the_builtin_one(tmp_path):
    folder = copy_recipe(tmp_path, "vaultwarden")
    edit_manifest(folder, lambda m: m.update(category="weapons"))
    catalog = _catalog(tmp_path)
    assert catalog.get("vaultwarden").source == "builtin"
    assert [p.field for p in catalog.problems_for("vaultwarden")] == ["category"]


def test_a_missing_custom_folder_is_reported(tmp_path):
    catalog = _catalog(tmp_path / "nowhere")
    assert len(catalog.invalid) == 1 and "does not exist" in catalog.invalid[0].problem
    assert set(BUILTIN_SLUGS) <= set(catalog.recipes)


def test_the_custom_folders_come_from_settings(tmp_path, settings):
    copy_recipe(tmp_path, as_slug="from-settings")
    settings.HOMELAB_RECIPE_DIRS = [str(tmp_path)]
    assert "from-settings" in load_catalog().recipes


def test_the_custom_folders_fall_back_to_the_environment(tmp_path, settings, monkeypatch):
    copy_recipe(tmp_path, as_slug="from-env")
    if hasattr(settings, "HOMELAB_RECIPE_DIRS"):
        del settings.HOMELAB_RECIPE_DIRS
    monkeypatch.setenv("HOMELAB_RECIPE_DIRS", str(tmp_path))
    assert "from-env" in load_catalog().recipes


# -------------------------------------------------------------------------------- cache
def test_the_catalog_is_cached_until_a_recipe_file_changes(tmp_path):
    folder = copy_recipe(tmp_path, as_slug="cached")
    first = _catalog(tmp_path)
    assert _catalog(tmp_path) is first
    edit_manifest(folder, lambda m: m.update(name="Renamed"))
    later = time.time() + 5
    os.utime(folder / "manifest.yaml", (later, later))
    second = _catalog(tmp_path)
    assert second is not first and second.get("cached").name == "Renamed"


def test_a_new_recipe_folder_is_picked_up(tmp_path):
    assert "newcomer" not in _catalog(tmp_path).recipes
    copy_recipe(tmp_path, as_slug="newcomer")
    assert "newcomer" in _catalog(tmp_path).recipes


def test_a_manifest_may_map_a_key_prefix_only_for_redis(tmp_path):
    folder = copy_recipe(tmp_path, "paperless-ngx")

    def change(manifest):
        manifest["requires_database"][0]["env"]["prefix"] = "PAPERLESS_DBHOST"

    edit_manifest(folder, change)
    problems = load_recipe(folder)
    assert [str(p) for p in problems] == [
        "paperless-ngx/manifest.yaml: requires_database[0].env.prefix: is only for Redis "
        "(a key prefix); remove it"
    ]


def test_extensions_are_only_for_postgres_and_their_names_are_checked(tmp_path):
    folder = copy_recipe(tmp_path, "paperless-ngx")

    def on_redis(manifest):
        manifest["requires_database"][1]["extensions"] = ["vectors"]

    edit_manifest(folder, on_redis)
    assert [str(p) for p in load_recipe(folder)] == [
        "paperless-ngx/manifest.yaml: requires_database[1].extensions: is only for PostgreSQL "
        "(extensions the app creates); remove it"
    ]

    def shell(manifest):
        manifest["requires_database"][1].pop("extensions")
        manifest["requires_database"][0]["extensions"] = ["vectors; DROP TABLE x"]

    edit_manifest(folder, shell)
    [problem] = load_recipe(folder)
    assert "requires_database.0.extensions.0" in str(problem) or "extensions" in str(problem)


def test_the_manifest_schema_lives_in_its_own_module_and_is_still_importable_here():
    import marketplace.manifest as manifest
    import marketplace.recipes as recipes

    for name in ("Manifest", "DatabaseEnv", "DatabaseNeed", "CATEGORIES", "SLUG_PATTERN"):
        assert getattr(recipes, name) is getattr(manifest, name)
    assert "prefix" in manifest.DatabaseEnv.model_fields


def test_notes_point_only_at_places_the_product_has():
    # there is no "Secrets" section (secrets are never shown) and the wizard's field is
    # "Extra settings"; a note sending people elsewhere leaves them stuck
    for recipe in _catalog().recipes.values():
        notes = recipe.manifest.post_install_notes
        assert 'under "Secrets"' not in notes and "Advanced > Environment" not in notes, recipe.slug
