"""The compose renderer: data in, data out, deterministic, and nothing the platform writes
is ever interpolated by compose (compose issue #11058)."""

from __future__ import annotations

import string

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.compose import dump_compose
from homelab.core.secrets import ALPHABETS, generate_secret
from marketplace.compose import (
    RenderConfig,
    RenderError,
    dollar_uses,
    generate_secrets,
    render_compose,
    walk_strings,
)
from marketplace.recipes import clear_catalog_cache, load_catalog

SHELL_AND_SQL = "x'; rm -rf / #\"$(id)`id`|&;<>\\\n${HOME}$HOME %s -- DROP TABLE users;"


@pytest.fixture(scope="module")
def catalog():
    clear_catalog_cache()
    return load_catalog([])


def _config(recipe, **kw) -> RenderConfig:
    return RenderConfig(secrets=kw.pop("secrets", None) or generate_secrets(recipe), **kw)


def _unescape(value: str) -> str:
    """What compose makes of a rendered string: `$$` is one literal `$`."""
    assert all(use.escaped for use in dollar_uses(value)), value
    return value.replace("$$", "$")


def test_every_builtin_recipe_renders_with_generated_secrets(catalog):
    for recipe in catalog.recipes.values():
        data = render_compose(recipe, project=f"{recipe.slug}-x", config=_config(recipe))
        assert data["name"] == f"{recipe.slug}-x"
        for path, value in walk_strings(data):
            assert all(use.escaped for use in dollar_uses(value)), (recipe.slug, path, value)


def test_rendering_is_deterministic_to_the_byte(catalog):
    recipe = catalog.get("paperless-ngx")
    config = _config(recipe, ports={"web": 8111}, env={"B": "2", "A": "1"})
    first = dump_compose(render_compose(recipe, project="p", config=config))
    again = RenderConfig(
        secrets=dict(reversed(list(config.secrets.items()))),
        ports=dict(config.ports),
        env={"A": "1", "B": "2"},
    )
    assert dump_compose(render_compose(recipe, project="p", config=again)) == first


def test_rendering_does_not_change_the_recipe(catalog):
    recipe = catalog.get("nextcloud")
    before = yaml.safe_dump(recipe.compose)
    render_compose(recipe, project="p", config=_config(recipe, env={"X": "1"}))
    assert yaml.safe_dump(recipe.compose) == before


def test_a_secret_containing_dollar_signs_survives_compose_interpolation(catalog):
    recipe = catalog.get("paperless-ngx")
    password = "pa$word${HOME}$$x$"
    secrets = {**generate_secrets(recipe), "db_password": password}
    data = render_compose(recipe, project="p", config=RenderConfig(secrets=secrets))
    app_env = data["services"]["webserver"]["environment"]
    db_env = data["services"]["db"]["environment"]
    assert app_env["PAPERLESS_DBPASS"] == "pa$$word$${HOME}$$$$x$$"
    assert _unescape(app_env["PAPERLESS_DBPASS"]) == password
    assert _unescape(db_env["POSTGRES_PASSWORD"]) == password
    # and the YAML text reads back to the same escaped value
    reread = yaml.safe_load(dump_compose(data))
    assert _unescape(reread["services"]["db"]["environment"]["POSTGRES_PASSWORD"]) == password


def test_a_secret_fills_every_place_its_variable_appears(catalog):
    recipe = catalog.get("nextcloud")
    config = _config(recipe)
    data = render_compose(recipe, project="nc", config=config)
    assert (
        data["services"]["nextcloud"]["environment"]["POSTGRES_PASSWORD"]
        == config.secrets["db_password"]
    )
    assert (
        data["services"]["db"]["environment"]["POSTGRES_PASSWORD"] == config.secrets["db_password"]
    )
    assert "change-me" not in dump_compose(data)


def test_env_values_with_shell_and_sql_metacharacters_are_written_literally(catalog):
    recipe = catalog.get("vaultwarden")
    data = render_compose(recipe, project="vw", config=_config(recipe, env={"NOTE": SHELL_AND_SQL}))
    written = data["services"]["vaultwarden"]["environment"]["NOTE"]
    assert _unescape(written) == SHELL_AND_SQL
    text = dump_compose(data)
    assert yaml.safe_load(text)["services"]["vaultwarden"]["environment"]["NOTE"] == written


@pytest.mark.parametrize(
    "name", ["lower", "1ABC", "A-B", "A B", "A;B", "$(id)", "A=B", "", "Ä", "A\nB"]
)
def test_an_env_name_outside_the_strict_pattern_is_rejected(catalog, name):
    recipe = catalog.get("vaultwarden")
    with pytest.raises(RenderError) as error:
        render_compose(recipe, project="vw", config=_config(recipe, env={name: "v"}))
    assert error.value.field == f"env.{name}"


@pytest.mark.parametrize("value", [None, 1.5, True, ["a"], {"a": 1}])
def test_an_env_value_of_the_wrong_type_is_rejected(catalog, value):
    recipe = catalog.get("vaultwarden")
    with pytest.raises(RenderError, match="must be text or a whole number"):
        render_compose(recipe, project="vw", config=_config(recipe, env={"X": value}))


def test_an_env_override_replaces_the_recipe_default(catalog):
    recipe = catalog.get("vaultwarden")
    data = render_compose(
        recipe, project="vw", config=_config(recipe, env={"SIGNUPS_ALLOWED": "false", "N": 3})
    )
    env = data["services"]["vaultwarden"]["environment"]
    assert env["SIGNUPS_ALLOWED"] == "false" and env["N"] == "3"


def test_a_chosen_host_port_is_published_and_the_others_keep_their_default(catalog):
    recipe = catalog.get("adguard-home")
    data = render_compose(
        recipe, project="dns", config=_config(recipe, ports={"setup": 3300, "dns-udp": 5353})
    )
    assert data["services"]["adguardhome"]["ports"] == [
        "53:53",
        "5353:53/udp",
        "3300:3000",
        "8082:80",
    ]


@pytest.mark.parametrize(
    ("ports", "field", "words"),
    [
        ({"nope": 80}, "ports.nope", "no port named"),
        ({"web": 0}, "ports.web", "between 1 and 65535"),
        ({"web": 70000}, "ports.web", "between 1 and 65535"),
        ({"web": "8080"}, "ports.web", "whole number"),
        ({"web": True}, "ports.web", "whole number"),
    ],
)
def test_a_bad_port_choice_names_the_port(catalog, ports, field, words):
    recipe = catalog.get("vaultwarden")
    with pytest.raises(RenderError) as error:
        render_compose(recipe, project="vw", config=_config(recipe, ports=ports))
    assert error.value.field == field and words in error.value.message


def test_two_ports_on_one_host_port_are_refused(catalog):
    recipe = catalog.get("gitea")
    with pytest.raises(RenderError, match="already used by port 'web'"):
        render_compose(recipe, project="g", config=_config(recipe, ports={"ssh": 3002}))


@pytest.mark.parametrize("project", ["", "UPPER", "a b", "a;b", "-a", "a/b", "$(id)", "a" * 64])
def test_a_bad_project_name_is_rejected(catalog, project):
    recipe = catalog.get("vaultwarden")
    with pytest.raises(RenderError) as error:
        render_compose(recipe, project=project, config=_config(recipe))
    assert error.value.field == "project"


@pytest.mark.parametrize("instance", ["", "A", "a_b", "a;b", "x" * 32, "$x"])
def test_a_bad_instance_name_is_rejected(catalog, instance):
    recipe = catalog.get("vaultwarden")
    with pytest.raises(RenderError) as error:
        render_compose(recipe, project="vw", config=_config(recipe, instance=instance))
    assert error.value.field == "instance"


def test_a_missing_or_unknown_secret_is_refused(catalog):
    recipe = catalog.get("paperless-ngx")
    secrets = generate_secrets(recipe)
    missing = {k: v for k, v in secrets.items() if k != "secret_key"}
    with pytest.raises(RenderError) as error:
        render_compose(recipe, project="p", config=RenderConfig(secrets=missing))
    assert error.value.field == "secrets.secret_key"
    with pytest.raises(RenderError) as error:
        render_compose(recipe, project="p", config=RenderConfig(secrets={**secrets, "x": "y"}))
    assert error.value.field == "secrets.x"


def test_every_service_is_labelled_with_project_app_instance_and_service(catalog):
    recipe = catalog.get("immich")
    data = render_compose(recipe, project="immich-2", config=_config(recipe, instance="second"))
    for name, service in data["services"].items():
        assert service["labels"] == {
            "homelab.project": "immich-2",
            "homelab.app": "immich",
            "homelab.instance": "second",
            "homelab.service": name,
        }


def test_volume_names_stay_unprefixed_for_compose_to_prefix_with_the_project(catalog):
    recipe = catalog.get("paperless-ngx")
    data = render_compose(recipe, project="p", config=_config(recipe))
    assert set(data["volumes"]) == {"data", "media", "consume", "export", "pgdata", "redisdata"}


# ---------------------------------------------------------------------------- secrets
def test_generated_secrets_use_only_their_alphabet_and_length():
    for alphabet, chars in ALPHABETS.items():
        value = generate_secret(40, alphabet)
        assert len(value) == 40 and set(value) <= set(chars)
    assert set(ALPHABETS["alnum"]) == set(string.ascii_letters + string.digits)
    assert generate_secret() != generate_secret()


def test_generate_secrets_follows_the_manifest(catalog):
    recipe = catalog.get("monica")
    secrets = generate_secrets(recipe)
    assert sorted(secrets) == ["app_key", "db_password"]
    assert len(secrets["app_key"]) == 32  # Laravel's APP_KEY must be exactly 32


def test_an_unknown_alphabet_or_length_is_refused():
    with pytest.raises(ValueError, match="unknown alphabet"):
        generate_secret(32, "emoji")
    with pytest.raises(ValueError):
        generate_secret(4)


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=60))
def test_any_secret_or_env_value_reads_back_exactly_or_is_refused(value):
    recipe = load_catalog([]).get("vaultwarden")
    config = RenderConfig(secrets={"admin_token": value}, env={"FREE_TEXT": value})
    if any(
        (ord(c) < 32 and c not in "\t\n") or 0x7F <= ord(c) <= 0x9F or c in "\u2028\u2029\ufeff"
        for c in value
    ):
        with pytest.raises(RenderError, match="control characters"):
            render_compose(recipe, project="vw", config=config)
        return
    data = render_compose(recipe, project="vw", config=config)
    env = yaml.safe_load(dump_compose(data))["services"]["vaultwarden"]["environment"]
    assert _unescape(env["ADMIN_TOKEN"]) == value
    assert _unescape(env["FREE_TEXT"]) == value


def test_a_memory_limit_goes_on_the_main_service_only_and_is_checked(catalog):
    recipe = catalog.get("paperless-ngx")  # several services: only the main one is limited
    secrets = generate_secrets(recipe)
    data = render_compose(
        recipe, project="p", config=RenderConfig(secrets=secrets, memory_limit_mb=3000)
    )
    main = recipe.manifest.main_service
    assert data["services"][main]["mem_limit"] == "3000m"
    assert all("mem_limit" not in s for n, s in data["services"].items() if n != main)
    unlimited = render_compose(recipe, project="p", config=RenderConfig(secrets=secrets))
    assert "mem_limit" not in unlimited["services"][main]
    for bad in (1, True, "3000", 10**9):
        with pytest.raises(RenderError) as raised:
            render_compose(
                recipe, project="p", config=RenderConfig(secrets=secrets, memory_limit_mb=bad)
            )
        assert raised.value.field == "memory_limit_mb"
