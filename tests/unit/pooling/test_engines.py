"""Names, quoting, SQL, passwords and savings of the database pool (no device)."""

from __future__ import annotations

import pytest

from pooling import engines
from pooling.services import compose_use_pool

BAD = [
    "a;drop",
    "$(id)",
    "a'b",
    'a"b',
    "`id`",
    "a b",
    "A",
    "1abc",
    "",
    "a-b",
    "a%b",
    "a\\b",
    "x" * 42,
]


@pytest.mark.parametrize("name", BAD)
def test_it_rejects_names_with_shell_or_sql_metacharacters(name):
    with pytest.raises(engines.NameError_):
        engines.check_name(name)
    with pytest.raises(engines.NameError_):
        engines.pg_ident(name)
    with pytest.raises(engines.NameError_):
        engines.my_ident(name)
    with pytest.raises(engines.NameError_):
        engines.provision_sql("postgres", database=name, role="ok", password="a" * 32)
    for command in (
        lambda: engines.newest_dump_command("/opt/homelab/apps/pool-dumps", name),
        lambda: engines.delete_dumps_command("/opt/homelab/apps/pool-dumps", name),
        lambda: engines.restore_command("postgres", "abc", name, "/tmp/x.sql"),
        lambda: engines.restore_command("mariadb", "abc", name, "/tmp/x.sql"),
    ):
        with pytest.raises(engines.NameError_):
            command()


@pytest.mark.parametrize(
    "slug,instance", [("a;drop", "x"), ("$(id)", "x"), ("ok", "`id`"), ("ok", "a'b"), ("ok", 'a"')]
)
def test_it_refuses_to_derive_a_name_from_bad_slugs_or_instances(slug, instance):
    with pytest.raises(engines.NameError_):
        engines.database_name_for(slug=slug, instance=instance)


def test_names_come_from_slug_and_instance():
    assert engines.database_name_for(slug="paperless-ngx", instance="a") == "paperless_ngx_a"
    assert engines.database_name_for(slug="2fauth", instance="default") == "app_2fauth_default"
    long = engines.database_name_for(slug="a" * 41, instance="b" * 31)
    assert len(long) <= 41 and engines.NAME_RE.match(long)
    assert long != engines.database_name_for(slug="a" * 41, instance="b" * 30)


def test_identifiers_are_quoted():
    assert engines.pg_ident("app_a") == '"app_a"'
    assert engines.my_ident("app_a") == "`app_a`"
    # `_` and `%` are wildcards in a GRANT's database name
    assert engines.my_grant_db("monica_x_1") == r"`monica\_x\_1`"


def test_passwords_are_long_letters_and_digits():
    seen = set()
    for _ in range(50):
        password = engines.generate_password()
        assert len(password) >= 32
        assert set(password) <= set(engines.PASSWORD_ALPHABET)
        seen.add(password)
    assert len(seen) == 50
    for bad in ("short", "a" * 31, "a$" * 20, "a'" * 20):
        with pytest.raises(ValueError):
            engines.check_password(bad)


def test_postgres_sql_isolates_the_app():
    sql = engines.provision_sql("postgres", database="app_a", role="app_a", password="p" * 40)
    assert 'CREATE ROLE "app_a" LOGIN PASSWORD' in sql
    assert "NOSUPERUSER NOCREATEDB NOCREATEROLE" in sql
    assert 'REVOKE ALL ON DATABASE "app_a" FROM PUBLIC' in sql
    assert 'GRANT CONNECT, TEMPORARY ON DATABASE "app_a" TO "app_a"' in sql
    assert "ALTER ROLE" in sql  # a left-over role gets the stored password
    assert "CREATE DATABASE" in sql and "\\gexec" in sql


def test_postgres_database_is_copied_by_files_not_through_the_shared_buffers():
    # FILE_COPY keeps template1's pages out of the shared server's buffers (measured in
    # tests/benchmarks/bench_pooling.py); the quoted names stay inside the one statement
    sql = engines.provision_sql("postgres", database="app_a", role="app_b", password="p" * 40)
    [create] = [line for line in sql.splitlines() if "CREATE DATABASE" in line]
    assert create.startswith(
        'SELECT \'CREATE DATABASE "app_a" OWNER "app_b" STRATEGY = FILE_COPY\''
    )
    assert create.endswith("WHERE datname = 'app_a')\\gexec")


def test_mariadb_sql_grants_only_its_own_database():
    sql = engines.provision_sql(
        "mariadb", database="monica_x_1", role="monica_x_1", password="p" * 40
    )
    assert r"GRANT ALL PRIVILEGES ON `monica\_x\_1`.* TO 'monica_x_1'@'%'" in sql
    assert "CREATE USER IF NOT EXISTS" in sql and "ALTER USER" in sql
    assert "*.*" not in sql


def test_sql_goes_on_stdin_never_on_the_command_line():
    password = "Q" * 40
    for engine in ("postgres", "mariadb"):
        command = engines.sql_command(engine, "abc123")
        assert all(password not in part and "CREATE" not in part for part in command)
        stdin = engines.sql_stdin(engine, "SELECT 1;", password)
        assert stdin.endswith(b"SELECT 1;")
    dump = engines.dump_command("mariadb", "abc", "monica_a", "/opt/x/monica_a.sql")
    assert "monica_a" not in dump[2]  # values are positional parameters, not script text
    with pytest.raises(engines.NameError_):
        engines.dump_command("postgres", "abc", "$(id)", "/tmp/x")


def test_kept_dumps_are_found_restored_and_deleted_with_values_outside_the_scripts():
    folder = "/opt/home lab/$(id)/pool-dumps"  # a folder setting with spaces and `$(...)`
    for command in (
        engines.newest_dump_command(folder, "monica_a"),
        engines.delete_dumps_command(folder, "monica_a"),
        engines.restore_command("postgres", "c1", "monica_a", f"{folder}/monica_a-1.sql"),
        engines.restore_command("mariadb", "c1", "monica_a", f"{folder}/monica_a-1.sql"),
    ):
        script = command[2]
        assert command[:2] == ["sh", "-c"] and "monica_a" not in script and "$(id)" not in script
    # one database's glob never takes another's dumps: names hold no "-"
    assert '"$1/$2"-*.sql' in engines.newest_dump_command(folder, "monica_a")[2]
    with pytest.raises(ValueError, match="does not offer"):
        engines.restore_command("redis", "c1", "monica_a", "/tmp/x")


def test_existed_marker_is_read():
    assert engines.parse_existed("existed=t\n") is True
    assert engines.parse_existed("NOTICE\nexisted=0") is False


def test_memory_usage_is_parsed():
    assert engines.parse_mem_usage("12.5MiB / 1.9GiB") == int(12.5 * 1024 * 1024)
    assert engines.parse_mem_usage("800KiB / 2GiB") == 800 * 1024
    assert engines.parse_mem_usage("--") is None


def test_savings_are_apps_times_standalone_minus_shared_never_negative():
    mib = 1024 * 1024
    assert engines.saved_bytes(apps=3, standalone_bytes=40 * mib, shared_bytes=50 * mib) == 70 * mib
    assert engines.saved_bytes(apps=1, standalone_bytes=40 * mib, shared_bytes=50 * mib) == 0
    assert engines.saved_bytes(apps=0, standalone_bytes=40 * mib, shared_bytes=1) == 0


def test_the_bundled_database_is_replaced_by_the_pool():
    data = {
        "services": {
            "web": {
                "image": "x:1",
                "depends_on": {"db": {"condition": "service_healthy"}, "redis": {}},
                "environment": {"DB_HOST": "db", "DB_PASS": "old"},
                "volumes": ["data:/data"],
            },
            "db": {"image": "postgres:16", "volumes": ["pgdata:/var/lib/postgresql/data"]},
            "redis": {"image": "redis:7"},
        },
        "volumes": {"data": None, "pgdata": None},
    }
    compose_use_pool(
        data,
        service="web",
        env_names={"host": "DB_HOST", "password": "DB_PASS"},
        values={"host": "hl-pool-postgres", "password": "a$b"},
        bundled_service="db",
        network="homelab-pool",
    )
    assert "db" not in data["services"]
    assert data["services"]["web"]["depends_on"] == {"redis": {}}
    assert data["services"]["web"]["environment"] == {
        "DB_HOST": "hl-pool-postgres",
        "DB_PASS": "a$$b",
    }
    assert data["services"]["web"]["networks"] == ["default", "homelab-pool"]
    assert data["networks"]["homelab-pool"] == {"name": "homelab-pool", "external": True}
    assert data["volumes"] == {"data": None}


def test_shared_compose_has_limits_and_small_device_settings():
    data = engines.shared_compose(
        "postgres", project="hl-pool-postgres", admin_password="a" * 40, network="homelab-pool"
    )
    service = data["services"]["postgres"]
    assert service["ulimits"]["nofile"] == {"soft": 16384, "hard": 16384}
    # less than PostgreSQL's default of 128 MB (the value is tuned by benchmark)
    [buffers] = [c for c in service["command"] if c.startswith("shared_buffers=")]
    assert buffers.endswith("MB") and int(buffers.split("=")[1][:-2]) < 128
    assert data["networks"]["pool"] == {"name": "homelab-pool", "external": True}
    maria = engines.shared_compose(
        "mariadb", project="hl-pool-mariadb", admin_password="a" * 40, network="homelab-pool"
    )
    assert "--innodb-buffer-pool-size=64M" in maria["services"]["mariadb"]["command"]
    assert maria["services"]["mariadb"]["ulimits"]["nofile"]["hard"] == 16384


def test_mariadb_sizes_list_databases_without_tables_too():
    # a new app's database has no tables yet: its size is 0, not missing
    sql = engines.size_sql("mariadb")
    assert "information_schema.SCHEMATA s LEFT JOIN information_schema.TABLES t" in sql
    assert sql.startswith("SELECT s.schema_name, COALESCE(SUM(t.data_length + t.index_length), 0)")


@pytest.mark.parametrize("engine", ["postgres", "mariadb"])
def test_sizes_and_connections_are_read_per_database(engine):
    # psql -tA prints the one column it is given; the MariaDB client's batch mode separates
    # the columns with tabs. A line without figures (a notice, a header) is not a database.
    answer = "app_a\t7471619\t2\napp_b\t0\t0\nSET\nnot a row\n"
    assert engines.parse_usage(engine, answer) == {"app_a": (7471619, 2), "app_b": (0, 0)}
    # an older server's answer without the connections column still gives the size
    assert engines.parse_usage(engine, "app_a\t10\n") == {"app_a": (10, None)}
    assert "pg_stat_activity" in engines.size_sql("postgres")
    assert "information_schema.PROCESSLIST" in engines.size_sql("mariadb")
