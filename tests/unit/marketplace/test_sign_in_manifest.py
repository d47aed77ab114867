"""The `sign_in:` section of a recipe (issue 14, item 3): strict like the rest."""

from __future__ import annotations

import pytest

from marketplace.recipes import clear_catalog_cache, load_catalog, load_recipe

from .helpers import copy_recipe, edit_manifest


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_catalog_cache()
    yield
    clear_catalog_cache()


def test_the_apps_with_a_generated_admin_login_declare_it():
    catalog = load_catalog([])
    assert catalog.get("nextcloud").manifest.sign_in.user == "admin"
    assert catalog.get("nextcloud").manifest.sign_in.secrets == ["admin_password"]
    assert catalog.get("paperless-ngx").manifest.sign_in.secrets == ["admin_password"]
    assert catalog.get("vaultwarden").manifest.sign_in.secrets == ["admin_token"]
    assert catalog.get("vaultwarden").manifest.sign_in.path == "/admin"
    assert catalog.get("uptime-kuma").manifest.sign_in is None


def test_sign_in_may_only_name_a_declared_secret(tmp_path):
    folder = copy_recipe(tmp_path, "vaultwarden")
    edit_manifest(folder, lambda m: m["sign_in"].update(secrets=["admin_tokn"]))
    assert [str(p) for p in load_recipe(folder)] == [
        "vaultwarden/manifest.yaml: sign_in.secrets[0]: 'admin_tokn' is not a declared secret"
    ]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda s: s.update(show=True), "is not a known field"),
        (lambda s: s.update(secrets=[]), "needs at least 1 item"),
        (lambda s: s.update(path="admin; rm -rf /"), "not allowed"),
        (lambda s: s.update(user=""), "must not be empty"),
    ],
)
def test_a_malformed_sign_in_section_is_refused(tmp_path, change, words):
    folder = copy_recipe(tmp_path, "vaultwarden")
    edit_manifest(folder, lambda m: change(m["sign_in"]))
    problems = [str(p) for p in load_recipe(folder)]
    assert len(problems) == 1 and "sign_in" in problems[0] and words in problems[0], problems
