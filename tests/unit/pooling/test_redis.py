"""Redis in the pool without a device: ACL rule text, names, quoting for redis-cli, how
its answers are read, env injection and which Redis needs can be pooled."""

from __future__ import annotations

import pytest

from marketplace.recipes import load_catalog
from pooling import engines, redis_acl
from pooling.services import compose_use_pool, need_poolable

PASSWORD = "Pw" * 20
BAD = ["a;b", "$(id)", "a'b", 'a"b', "a b", "a\nb", "a\rb", "`id`", "A", "", "a-b", "a*", "a:b"]


def test_an_app_user_is_named_from_slug_and_instance_and_owns_one_prefix():
    name = engines.database_name_for(slug="paperless-ngx", instance="a")
    assert name == "paperless_ngx_a"
    assert redis_acl.prefix_for(name) == "paperless_ngx_a:"
    assert redis_acl.acl_rules(user=name, password=PASSWORD) == [
        "reset",
        "on",
        redis_acl.password_hash(PASSWORD),
        "~paperless_ngx_a:*",
        "&paperless_ngx_a:*",
        "+@all",
        "-@dangerous",
        "-@admin",
        "-select",
        "-function",
        "-script|flush",
        "-randomkey",
    ]


def test_the_password_reaches_redis_only_as_its_sha256():
    import hashlib

    text = engines.provision_sql("redis", database="app_a", role="app_a", password=PASSWORD)
    assert PASSWORD not in text
    assert "#" + hashlib.sha256(PASSWORD.encode()).hexdigest() in text


@pytest.mark.parametrize("name", BAD)
def test_it_refuses_names_with_shell_or_redis_metacharacters(name):
    with pytest.raises(engines.NameError_):
        redis_acl.prefix_for(name)
    with pytest.raises(engines.NameError_):
        engines.provision_sql("redis", database=name, role=name, password=PASSWORD)
    with pytest.raises(engines.NameError_):
        engines.drop_sql("redis", database=name, role=name)
    with pytest.raises(engines.NameError_):
        engines.size_sql("redis", [name])


@pytest.mark.parametrize("password", ["short", "a" * 31, "a;b" * 12, "$(id)" * 8, "a b" * 12])
def test_it_refuses_passwords_that_are_not_long_letters_and_digits(password):
    with pytest.raises(ValueError):
        engines.provision_sql("redis", database="app_a", role="app_a", password=password)


@pytest.mark.parametrize(
    "arg,quoted",
    [
        ("a;b", '"a;b"'),
        ("$(id)", '"$(id)"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ("line\nbreak", '"line\\x0abreak"'),
        ("two words", '"two words"'),
    ],
)
def test_every_argument_is_one_quoted_word_on_one_line(arg, quoted):
    assert redis_acl.quote(arg) == quoted
    assert "\n" not in redis_acl.line("SET", arg, arg)


def test_commands_go_on_stdin_after_the_admin_password_never_on_the_command_line():
    command = engines.sql_command("redis", "abc123")
    assert command[:4] == ["docker", "exec", "-i", "abc123"]
    assert all(PASSWORD not in part and "ACL" not in part for part in command)
    assert "REDISCLI_AUTH" in command[-1] and "--user admin" in command[-1]
    stdin = engines.sql_stdin("redis", "ACL SAVE\n", PASSWORD)
    assert stdin == f"{PASSWORD}\nACL SAVE\n".encode()
    ready = engines.ready_command("redis", "abc123")
    assert all(PASSWORD not in part for part in ready)


def test_provisioning_lists_users_then_resets_the_user_and_saves():
    lines = engines.provision_sql(
        "redis", database="app_a", role="app_a", password=PASSWORD
    ).splitlines()
    assert lines[:3] == ['"ECHO" "hl-users-begin"', '"ACL" "USERS"', '"ECHO" "hl-users-end"']
    assert lines[3].startswith('"ACL" "SETUSER" "app_a" "reset" "on" "#')
    assert lines[4] == '"ACL" "SAVE"'


def test_whether_the_user_existed_is_read_from_the_user_list():
    out = "hl-users-begin\nadmin\napp_a\ndefault\nhl-users-end\nOK\nOK\n"
    assert engines.provision_existed("redis", out, role="app_a") is True
    assert engines.provision_existed("redis", out, role="app_b") is False
    with pytest.raises(ValueError):
        engines.provision_existed("redis", "OK\n", role="app_a")


def test_errors_in_redis_cli_answers_are_found_although_it_exits_0():
    assert engines.command_errors("redis", "hl-users-begin\nadmin\nhl-users-end\nOK\nOK\n") == []
    assert engines.command_errors("redis", "1\n3\nOK\n") == []
    assert engines.command_errors("redis", "NOAUTH Authentication required.\n") == [
        "NOAUTH Authentication required."
    ]
    assert engines.command_errors("redis", "OK\nERR Error in ACL SETUSER modifier\n") == [
        "ERR Error in ACL SETUSER modifier"
    ]
    assert engines.command_errors("postgres", "ERR looks like one") == []


def test_removal_deletes_the_user_then_its_keys_then_saves():
    text = engines.drop_sql("redis", database="app_a", role="app_a")
    lines = text.splitlines()
    assert lines[0] == '"ACL" "DELUSER" "app_a"'
    assert lines[1].startswith('"EVAL" "') and lines[1].endswith('"0" "app_a:*"')
    assert "SCAN" in lines[1] and "UNLINK" in lines[1]
    assert lines[2] == '"ACL" "SAVE"'


def test_redis_keys_are_not_dumped():
    assert "redis" not in engines.DUMPABLE_ENGINES


def test_the_app_gets_a_url_with_user_password_database_0_and_its_prefix():
    values = engines.connection_env(
        engines.ENGINES["redis"],
        host="hl-pool-redis",
        database="paperless_ngx_a",
        user="paperless_ngx_a",
        password=PASSWORD,
    )
    assert values["url"] == f"redis://paperless_ngx_a:{PASSWORD}@hl-pool-redis:6379/0"
    assert values["prefix"] == "paperless_ngx_a:"
    assert values["user"] == "paperless_ngx_a" and values["database"] == "0"


def test_the_paperless_compose_gets_the_shared_redis_and_loses_its_broker():
    recipe = load_catalog([]).get("paperless-ngx")
    [_, need] = recipe.manifest.requires_database
    assert need.env.names() == {"url": "PAPERLESS_REDIS", "prefix": "PAPERLESS_REDIS_PREFIX"}
    import copy

    data = copy.deepcopy(recipe.compose)
    values = engines.connection_env(
        engines.ENGINES["redis"], host="hl-pool-redis", database="x", user="paperless_ngx_a",
        password=PASSWORD,
    )  # fmt: skip
    compose_use_pool(
        data,
        service="webserver",
        env_names=need.env.names(),
        values=values,
        bundled_service="broker",
        network="homelab-pool",
    )
    env = data["services"]["webserver"]["environment"]
    assert env["PAPERLESS_REDIS"] == values["url"]
    assert env["PAPERLESS_REDIS_PREFIX"] == "paperless_ngx_a:"
    assert "broker" not in data["services"] and "redisdata" not in data["volumes"]
    assert "broker" not in data["services"]["webserver"]["depends_on"]


def test_only_a_redis_need_with_a_prefix_is_pooled():
    catalog = load_catalog([])
    paperless_redis = catalog.get("paperless-ngx").manifest.requires_database[1]
    immich_redis = catalog.get("immich").manifest.requires_database[1]
    assert need_poolable(paperless_redis) == (True, "")
    poolable, why = need_poolable(immich_redis)
    assert not poolable and "key prefix" in why
    assert engines.need_poolable("redis", {"prefix", "host"})[0] is False  # cannot log in
    assert engines.need_poolable("redis", {"prefix", "host", "user", "password"})[0] is True
    assert engines.need_poolable("mongodb", {"url"}) == (
        False,
        "the database pool does not offer mongodb",
    )


def test_a_postgres_need_with_an_extension_the_shared_server_lacks_keeps_its_own():
    catalog = load_catalog([])
    immich_postgres = catalog.get("immich").manifest.requires_database[0]
    paperless_postgres = catalog.get("paperless-ngx").manifest.requires_database[0]
    assert immich_postgres.extensions == ["vectors"]
    assert need_poolable(immich_postgres) == (
        False,
        "it needs the PostgreSQL add-on vectors, which the shared PostgreSQL does not include",
    )
    assert need_poolable(paperless_postgres) == (True, "")
    # PostgreSQL's own trusted extensions are there, and an app's role may create them
    assert engines.need_poolable("postgres", {"url"}, ["pg_trgm", "uuid-ossp"]) == (True, "")
    poolable, why = engines.need_poolable("postgres", {"url"}, ["postgis", "vectors"])
    assert not poolable and "add-ons postgis, vectors" in why


def test_the_shared_redis_keeps_users_and_jobs():
    data = engines.shared_compose(
        "redis", project="hl-pool-redis", admin_password="a" * 40, network="homelab-pool"
    )
    service = data["services"]["redis"]
    assert service["image"] == "redis:7-alpine"
    script = service["command"][0]
    for setting in (
        "--aclfile /data/users.acl",
        "--appendonly yes",
        "--maxmemory-policy noeviction",
        "--maxmemory 128mb",
        "--protected-mode yes",
    ):
        assert setting in script
    # the first ACL file: the default user off, the admin's password as a hash only
    assert "user default off" in script and "sha256sum" in script
    assert service["environment"]["POOL_ADMIN_PASSWORD"] == "a" * 40
    assert "a" * 40 not in script and "a" * 40 not in str(service["healthcheck"])
    assert service["volumes"] == ["data:/data"]
    assert data["networks"]["pool"] == {"name": "homelab-pool", "external": True}


def test_sizes_and_connections_per_user_come_from_one_answer():
    commands = engines.size_sql("redis", ["paperless_ngx_a", "paperless_ngx_b"])
    assert commands.splitlines()[-1] == "CLIENT LIST"
    answer = (
        "paperless_ngx_a\t2048\npaperless_ngx_b\t0\n"
        "id=3 addr=172.18.0.3:50512 laddr=172.18.0.2:6379 fd=8 name= age=9 db=0 "
        "user=paperless_ngx_a lib-name= cmd=brpop\n"
        "id=4 addr=172.18.0.3:50514 fd=9 user=paperless_ngx_a cmd=subscribe\n"
        "id=5 addr=127.0.0.1:40000 fd=10 user=admin cmd=client|list\n"
    )
    assert engines.parse_usage("redis", answer) == {
        "paperless_ngx_a": (2048, 2),
        "paperless_ngx_b": (0, 0),
    }
