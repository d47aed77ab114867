"""Per-engine names, quoting, SQL and commands of the shared database servers.

Pure functions: nothing here talks to a device, so every rule is unit-tested.

Names: an app's database and role are derived from its validated slug and instance
(`paperless-ngx` + `a` -> `paperless_ngx_a`) and must match NAME_RE; anything else
(`a;drop`, `$(id)`, quotes, backticks) is refused before it can reach a shell or SQL.
They are still quoted as identifiers everywhere they are used.

SQL and Redis commands always travel on the command's stdin, never on its command line;
so does the admin password (MariaDB, Redis: the first line of stdin).

Redis (7.0 ACLs) isolates less than a SQL server, and the pool says so:
  * Each app gets an ACL user `<name>` with its own password, the key pattern `~<name>:*`
    and the channel pattern `&<name>:*`: reading or writing another app's key, or
    publishing/subscribing on its channels, is refused with NOPERM (also from Lua).
  * Commands: `+@all -@dangerous -@admin` minus SELECT (every app lives in database 0, so
    its keys cannot spread into other databases), FUNCTION (functions are global),
    SCRIPT FLUSH and RANDOMKEY. `@dangerous` holds KEYS, FLUSHALL, FLUSHDB, CONFIG, INFO,
    CLIENT LIST/KILL, MONITOR, DEBUG, SHUTDOWN, SWAPDB, SORT, RESTORE, MIGRATE and ACL.
    A queue keeps GET/SET, LPUSH/BRPOP, MULTI/EXEC, EVAL/EVALSHA, PUBLISH/SUBSCRIBE.
  * Not isolated: SCAN (allowed, apps use it with MATCH on their prefix) and DBSIZE still
    see other apps' key *names* and counts, never their values; memory (`maxmemory`) is one
    limit for all apps, and with `noeviction` an app that fills it makes every app's writes
    fail; one slow Lua script or big command delays every app (one thread).
  * Only an app that can put all its keys under a prefix (its manifest maps the `prefix`
    env role) is pooled; others keep their bundled Redis (`redis_poolable`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from homelab.core.secrets import ALPHABETS, generate_secret

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,40}\Z")
_SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}\Z")
_INSTANCE_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}\Z")
_PROJECT_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}\Z")
PASSWORD_LENGTH = 40
PASSWORD_ALPHABET = ALPHABETS["alnum"]  # letters and digits: safe in compose, URLs, shells
RECIPES_DIR = Path(__file__).resolve().parent / "recipes"
NETWORK = "homelab-pool"
MIB = 1024 * 1024

# manifest engine (marketplace) -> pool engine
MANIFEST_ENGINES = {"postgres": "postgres", "mysql": "mariadb", "redis": "redis"}
# engines the pool offers today
POOLED_ENGINES = ("postgres", "mariadb", "redis")
LABELS = {"postgres": "PostgreSQL", "mariadb": "MariaDB", "redis": "Redis"}
REDIS_ADMIN_USER = "admin"


class NameError_(ValueError):  # not the builtin NameError
    """A name that may not reach SQL or a shell."""


@dataclass(frozen=True)
class EngineSpec:
    engine: str
    service: str  # the compose service of the shared instance (and its network alias)
    port: int
    url_scheme: str
    data_path: str
    # "without pooling" baseline until measured on the device: one idle standalone server
    # of this engine with its image's default settings.
    default_standalone_bytes: int
    default_source: str


ENGINES: dict[str, EngineSpec] = {
    "postgres": EngineSpec(
        "postgres",
        "postgres",
        5432,
        "postgresql",
        "/var/lib/postgresql/data",
        48 * MIB,
        "an idle postgres:16 container with default settings (shared_buffers=128MB, "
        "max_connections=100) holds about 40-50 MiB resident after start-up "
        "(docker stats; PostgreSQL docs, 'Resource Consumption'); replaced by a measured "
        "standalone instance on the device once measured",
    ),
    "mariadb": EngineSpec(
        "mariadb",
        "mariadb",
        3306,
        "mysql",
        "/var/lib/mysql",
        96 * MIB,
        "an idle mariadb:11 container with default settings (innodb_buffer_pool_size=128M) "
        "and a nofile limit holds about 90-110 MiB (docker stats; MariaDB KB, 'Configuring "
        "MariaDB for Optimal Performance'); replaced by a measured standalone instance "
        "once measured",
    ),
    "redis": EngineSpec(
        "redis",
        "redis",
        6379,
        "redis",
        "/data",
        4 * MIB,
        "an idle redis:7 container with default settings holds about 3-4 MiB (Redis FAQ: "
        "'an empty instance uses ~3MB of memory'; docker stats in the lab: 3.5 MiB); "
        "replaced by a measured standalone instance on the device once measured",
    ),
}


# ----------------------------------------------------------------------------- names
def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise NameError_(
            f"{name!r} cannot be a database or role name: use 1-41 lowercase letters, digits "
            "or '_', starting with a letter."
        )
    return name


def database_name_for(*, slug: str, instance: str) -> str:
    """`<slug>_<instance>` with '-' as '_'; long names end in a short hash so they stay
    unique within 41 characters."""
    if not isinstance(slug, str) or not _SLUG_RE.match(slug):
        raise NameError_(f"{slug!r} is not a valid app slug.")
    if not isinstance(instance, str) or not _INSTANCE_RE.match(instance):
        raise NameError_(f"{instance!r} is not a valid instance name.")
    name = f"{slug}_{instance}".replace("-", "_")
    if not name[0].isalpha():
        name = f"app_{name}"
    if len(name) > 41:
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        name = f"{name[:32].rstrip('_')}_{digest}"
    return check_name(name)


def project_for(engine: str, prefix: str = "hl-pool") -> str:
    project = f"{prefix}-{engine}"
    if engine not in ENGINES or not _PROJECT_RE.match(project):
        raise NameError_(f"{project!r} is not a valid project name.")
    return project


def generate_password() -> str:
    return generate_secret(PASSWORD_LENGTH, "alnum")


def check_password(password: str) -> str:
    if (
        not isinstance(password, str)
        or len(password) < 32
        or any(c not in PASSWORD_ALPHABET for c in password)
    ):
        raise ValueError("a pooled password must be 32+ letters and digits")
    return password


# --------------------------------------------------------------------------- quoting
def pg_ident(name: str) -> str:
    return '"' + check_name(name).replace('"', '""') + '"'


def pg_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def my_ident(name: str) -> str:
    return "`" + check_name(name).replace("`", "``") + "`"


def my_grant_db(name: str) -> str:
    """A database name in GRANT, where `_` and `%` are wildcards: escaped with '\\'."""
    escaped = check_name(name).replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")
    return "`" + escaped.replace("`", "``") + "`"


def my_literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# ------------------------------------------------------------------------------- SQL
EXISTED_MARK = "existed="


def provision_sql(engine: str, *, database: str, role: str, password: str) -> str:
    """Idempotent: creates what is missing, sets a left-over role's password to the stored
    one, never duplicates. Prints `existed=t|f` (postgres) / `existed=1|0` first; for
    Redis, the ACL commands of pooling.redis_acl (the user is the "database")."""
    check_password(password)
    if engine == "redis":
        from pooling import redis_acl

        return redis_acl.provision_commands(user=check_name(role), password=password)
    if engine == "postgres":
        db, r, pw = pg_ident(database), pg_ident(role), pg_literal(password)
        return "\n".join(
            [
                (
                    f"SELECT '{EXISTED_MARK}' || EXISTS (SELECT 1 FROM pg_database WHERE "
                    f"datname = {pg_literal(database)});"
                ),
                "DO $pool$ BEGIN",
                f"  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {pg_literal(role)}) THEN",
                f"    CREATE ROLE {r} LOGIN PASSWORD {pw} NOSUPERUSER NOCREATEDB NOCREATEROLE;",
                "  ELSE",
                f"    ALTER ROLE {r} WITH LOGIN PASSWORD {pw} NOSUPERUSER NOCREATEDB NOCREATEROLE;",
                "  END IF;",
                "END $pool$;",
                # FILE_COPY: the new database's files are copied from template1 by the OS,
                # instead of PostgreSQL 15+'s default (WAL_LOG) reading and writing every
                # template page through the shared buffers and the WAL. Measured on the lab
                # (tests/benchmarks/bench_pooling.py), shared memory of the idle server
                # after five databases: 12 instead of 55 MiB with 128 MB buffers, 7 instead
                # of 39 MiB with 32 MB; the buffers stay free for the apps' data. It costs
                # two checkpoints per CREATE DATABASE, a moment once per app.
                (
                    f"SELECT {pg_literal(f'CREATE DATABASE {db} OWNER {r} STRATEGY = FILE_COPY')}"
                    f" WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = "
                    f"{pg_literal(database)})\\gexec"
                ),
                f"ALTER DATABASE {db} OWNER TO {r};",
                f"REVOKE ALL ON DATABASE {db} FROM PUBLIC;",
                f"GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {r};",
                "",
            ]
        )
    if engine == "mariadb":
        user = f"{my_literal(check_name(role))}@'%'"
        return "\n".join(
            [
                (
                    f"SELECT CONCAT('{EXISTED_MARK}', COUNT(*)) FROM information_schema.SCHEMATA "
                    f"WHERE SCHEMA_NAME = {my_literal(check_name(database))};"
                ),
                f"CREATE DATABASE IF NOT EXISTS {my_ident(database)};",
                f"CREATE USER IF NOT EXISTS {user} IDENTIFIED BY {my_literal(password)};",
                f"ALTER USER {user} IDENTIFIED BY {my_literal(password)};",
                f"GRANT ALL PRIVILEGES ON {my_grant_db(database)}.* TO {user};",
                "FLUSH PRIVILEGES;",
                "",
            ]
        )
    raise ValueError(f"the pool does not offer {engine!r}")


def drop_sql(engine: str, *, database: str, role: str) -> str:
    if engine == "redis":
        from pooling import redis_acl

        return redis_acl.drop_commands(user=check_name(role))
    if engine == "postgres":
        return "\n".join(
            [
                f"DROP DATABASE IF EXISTS {pg_ident(database)} WITH (FORCE);",
                f"DROP ROLE IF EXISTS {pg_ident(role)};",
                "",
            ]
        )
    if engine == "mariadb":
        return "\n".join(
            [
                f"DROP DATABASE IF EXISTS {my_ident(database)};",
                f"DROP USER IF EXISTS {my_literal(check_name(role))}@'%';",
                "FLUSH PRIVILEGES;",
                "",
            ]
        )
    raise ValueError(f"the pool does not offer {engine!r}")


def size_sql(engine: str, names: list[str] | tuple[str, ...] = ()) -> str:
    """`name<TAB>bytes<TAB>open connections` per database (Redis: per app user `names`, its
    keys' memory, then CLIENT LIST); read back with `parse_usage`."""
    if engine == "redis":
        from pooling import redis_acl

        return redis_acl.size_commands(list(names))
    if engine == "postgres":
        return (
            "SELECT d.datname || chr(9) || pg_database_size(d.datname) || chr(9) || "
            "(SELECT count(*) FROM pg_stat_activity a WHERE a.datname = d.datname) "
            "FROM pg_database d;\n"
        )
    # Every database, the ones without tables yet too (size 0, not unknown). Separate
    # columns: the client's batch mode (-B) separates columns with a tab, but prints a tab
    # inside a value as the two characters "\t". Connections: the server's threads whose
    # current database it is (the admin sees them all).
    return (
        "SELECT s.schema_name, COALESCE(SUM(t.data_length + t.index_length), 0), "
        "(SELECT COUNT(*) FROM information_schema.PROCESSLIST p WHERE p.DB = s.schema_name) "
        "FROM information_schema.SCHEMATA s LEFT JOIN information_schema.TABLES t "
        "ON t.table_schema = s.schema_name GROUP BY s.schema_name;\n"
    )


def parse_usage(engine: str, output: str) -> dict[str, tuple[int, int | None]]:
    """What `size_sql` answered: {database (Redis: user): (bytes, open connections)}."""
    if engine == "redis":
        from pooling import redis_acl

        return redis_acl.parse_usage(output)
    usage: dict[str, tuple[int, int | None]] = {}
    for line in output.splitlines():
        name, size, connections, *_ = [*line.split("\t"), "", ""]
        if size.strip().isdigit():
            count = int(connections) if connections.strip().isdigit() else None
            usage[name.strip()] = (int(size), count)
    return usage


def parse_existed(output: str) -> bool:
    for line in output.splitlines():
        line = line.strip()
        if line.startswith(EXISTED_MARK):
            return line[len(EXISTED_MARK) :] in ("t", "true", "1")
    raise ValueError(f"no {EXISTED_MARK} line in the server's answer")


def provision_existed(engine: str, output: str, *, role: str) -> bool:
    """Whether the app's database (Redis: its user) existed before provision_sql ran."""
    if engine == "redis":
        from pooling import redis_acl

        return redis_acl.user_existed(output, role)
    return parse_existed(output)


def command_errors(engine: str, output: str) -> list[str]:
    """Errors in an answer whose exit code cannot tell (redis-cli exits 0 on them)."""
    if engine == "redis":
        from pooling import redis_acl

        return redis_acl.errors(output)
    return []


# -------------------------------------------------------------------------- commands
# The admin password of MariaDB travels on stdin's first line, never on a command line.
_MARIADB_CLIENT = 'read -r p; MYSQL_PWD="$p"; export MYSQL_PWD; exec mariadb -uroot -N -B'


def sql_command(engine: str, container: str) -> list[str]:
    """The command that runs SQL from stdin in the shared container."""
    if engine == "postgres":
        psql = ["psql", "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-tA", "-q"]
        return ["docker", "exec", "-i", container, *psql]
    if engine == "mariadb":
        return ["docker", "exec", "-i", container, "sh", "-c", _MARIADB_CLIENT]
    if engine == "redis":
        from pooling import redis_acl

        return ["docker", "exec", "-i", container, "sh", "-c", redis_acl.CLIENT]
    raise ValueError(f"the pool does not offer {engine!r}")


_MARIADB_READY = (
    'read -r p; MYSQL_PWD="$p"; export MYSQL_PWD; '
    'exec mariadb -uroot -h 127.0.0.1 -N -B -e "SELECT 1"'
)


def ready_command(engine: str, container: str) -> list[str]:
    """Succeeds once the final server answers over TCP: the entrypoints' first-start
    servers listen on the socket only, and a healthy socket can vanish a moment later.
    (stdin: `sql_stdin(engine, "", admin_password)`)"""
    if engine == "postgres":
        return ["docker", "exec", container, "pg_isready", "-h", "127.0.0.1", "-U", "postgres"]
    if engine == "mariadb":
        return ["docker", "exec", "-i", container, "sh", "-c", _MARIADB_READY]
    if engine == "redis":
        from pooling import redis_acl

        return ["docker", "exec", "-i", container, "sh", "-c", redis_acl.READY]
    raise ValueError(f"the pool does not offer {engine!r}")


def sql_stdin(engine: str, sql: str, admin_password: str) -> bytes:
    if engine in ("mariadb", "redis"):
        return (check_password(admin_password) + "\n" + sql).encode()
    return sql.encode()


DUMPABLE_ENGINES = ("postgres", "mariadb")  # Redis holds queues and caches: not dumped


def dump_command(engine: str, container: str, database: str, path: str) -> list[str]:
    """A dump of one database into `path` on the device (stdin: `sql_stdin(engine, "",
    admin_password)`). Every value is a positional parameter of a fixed script. The dump is
    readable by its owner only (umask 077): it holds the app's data."""
    check_name(database)
    if engine == "postgres":
        script = 'umask 077; docker exec "$1" pg_dump -U postgres -d "$2" > "$3"'
        return ["sh", "-c", script, "sh", container, database, path]
    if engine == "mariadb":
        inner = (
            'read -r p; MYSQL_PWD="$p"; export MYSQL_PWD; '
            'exec mariadb-dump -uroot --single-transaction --databases "$1"'
        )
        script = 'umask 077; docker exec -i "$1" sh -c "$4" sh "$2" > "$3"'
        return ["sh", "-c", script, "sh", container, database, path, inner]
    raise ValueError(f"the pool does not offer {engine!r}")


def dumps_folder_command(folder: str) -> list[str]:
    """Creates the kept-dumps folder (and re-closes an existing one) as 0700."""
    return ["sh", "-c", 'umask 077 && mkdir -p -- "$1" && chmod 0700 -- "$1"', "sh", folder]


def newest_dump_command(folder: str, database: str) -> list[str]:
    """Prints the path of the newest final dump of `database` in `folder` (nothing when
    there is none). Dumps are `<database>-<UTC stamp>.sql`: the glob sorts them by time, and
    names hold no `-`, so another database's dumps never match."""
    check_name(database)
    script = 'last=; for f in "$1/$2"-*.sql; do [ -f "$f" ] && last=$f; done; printf "%s" "$last"'
    return ["sh", "-c", script, "sh", folder, database]


def restore_command(engine: str, container: str, database: str, path: str) -> list[str]:
    """Load a dump made by `dump_command` into the (new, empty) database, as the admin;
    stdin: `sql_stdin(engine, "", admin_password)`. Stops at the first error."""
    check_name(database)
    if engine == "postgres":
        script = 'docker exec -i "$1" psql -q -U postgres -d "$2" -v ON_ERROR_STOP=1 < "$3"'
        return ["sh", "-c", script, "sh", container, database, path]
    if engine == "mariadb":
        # the password line first, then the dump (it names its database: --databases)
        inner = 'read -r p; MYSQL_PWD="$p"; export MYSQL_PWD; exec mariadb -uroot'
        script = (
            '{ IFS= read -r p; printf "%s\\n" "$p"; cat "$3"; } | docker exec -i "$1" sh -c "$4"'
        )
        return ["sh", "-c", script, "sh", container, database, path, inner]
    raise ValueError(f"the pool does not offer {engine!r}")


def delete_dumps_command(folder: str, database: str) -> list[str]:
    """Removes every final dump of `database` in `folder` (the "Delete my data" choice)."""
    check_name(database)
    return ["sh", "-c", 'rm -f -- "$1/$2"-*.sql', "sh", folder, database]


def connection_env(
    spec: EngineSpec, *, host: str, database: str, user: str, password: str
) -> dict[str, str]:
    """Values by manifest role (host, port, database, user, password, url; Redis: prefix,
    and the user is the database)."""
    if spec.engine == "redis":
        from pooling import redis_acl

        return redis_acl.connection_env(host=host, user=user, password=password)
    return {
        "host": host,
        "port": str(spec.port),
        "database": database,
        "user": user,
        "password": password,
        "url": f"{spec.url_scheme}://{user}:{password}@{host}:{spec.port}/{database}",
    }


# ------------------------------------------------------------------- shared compose
def shared_compose(engine: str, *, project: str, admin_password: str, network: str) -> dict:
    """The shared instance's compose data from its built-in recipe."""
    text = (RECIPES_DIR / engine / "compose.yaml").read_text()
    data = yaml.safe_load(text)
    data["name"] = project
    spec = ENGINES[engine]
    service = data["services"][spec.service]
    env = service["environment"]
    for key, value in list(env.items()):
        if value == "${POOL_ADMIN_PASSWORD}":
            env[key] = check_password(admin_password)
    service["networks"] = {"pool": {"aliases": [project]}}
    data["networks"]["pool"]["name"] = network
    service["labels"] = {"homelab.pool": engine, "homelab.project": project}
    return data


def baseline_run(engine: str, password: str) -> tuple[list[str], list[str]]:
    """(docker run options, readiness command) of a standalone server with its image's
    defaults: what an app bundles, the "without pooling" baseline."""
    if engine == "postgres":
        return ["-e", f"POSTGRES_PASSWORD={password}"], ["pg_isready", "-U", "postgres"]
    if engine == "mariadb":
        return (
            ["-e", f"MARIADB_ROOT_PASSWORD={password}", "--ulimit", "nofile=16384:16384"],
            ["healthcheck.sh", "--connect"],
        )
    if engine == "redis":  # a bundled Redis has no password; nothing reaches it from outside
        return [], ["redis-cli", "ping"]
    raise ValueError(f"the pool does not offer {engine!r}")


# PostgreSQL extensions an app's role may create in its own database on the shared server:
# the trusted ones that ship with PostgreSQL (contrib, in the official image), which a
# database owner without SUPERUSER can create since PostgreSQL 13. Anything else (a vector
# extension, PostGIS, TimescaleDB) needs a server built with it and a superuser.
SHARED_POSTGRES_EXTENSIONS = frozenset(
    {
        "btree_gin", "btree_gist", "citext", "cube", "dict_int", "fuzzystrmatch", "hstore",
        "intarray", "isn", "lo", "ltree", "pg_trgm", "pgcrypto", "plpgsql", "seg",
        "tablefunc", "tcn", "tsm_system_rows", "tsm_system_time", "unaccent", "uuid-ossp",
    }
)  # fmt: skip


def need_poolable(
    engine: str, roles: set[str], extensions: list[str] | tuple[str, ...] = ()
) -> tuple[bool, str]:
    """Whether a need of `engine` (pool name) mapping these env roles and creating these
    extensions can use the pool, and in words why not."""
    if engine not in POOLED_ENGINES:
        return False, f"the database pool does not offer {engine}"
    if engine == "redis":
        from pooling import redis_acl

        return redis_acl.poolable_roles(roles)
    missing = sorted(set(extensions) - SHARED_POSTGRES_EXTENSIONS)
    if engine == "postgres" and missing:
        names = ", ".join(missing)
        return False, (
            f"it needs the PostgreSQL add-on{'s' if len(missing) > 1 else ''} {names}, which "
            "the shared PostgreSQL does not include"
        )
    return True, ""


def manifest_need_poolable(need) -> tuple[bool, str]:
    """`need_poolable` for a recipe manifest's database need (marketplace.manifest.DatabaseNeed)."""
    return need_poolable(
        MANIFEST_ENGINES[need.engine], set(need.env.names()), getattr(need, "extensions", ())
    )


def image_version(engine: str) -> tuple[str, str]:
    data = yaml.safe_load((RECIPES_DIR / engine / "compose.yaml").read_text())
    image = data["services"][ENGINES[engine].service]["image"]
    return image, image.rpartition(":")[2]


_UNITS = {
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
}


def parse_mem_usage(text: str) -> int | None:
    """`12.5MiB / 1.9GiB` (docker stats MemUsage) -> bytes used."""
    m = re.match(r"^\s*([\d.]+)\s*([A-Za-z]+)", text or "")
    if not m or m.group(2).lower() not in _UNITS:
        return None
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def saved_bytes(*, apps: int, standalone_bytes: int, shared_bytes: int) -> int:
    """(apps x standalone) - shared, never negative."""
    if apps <= 0 or shared_bytes is None:
        return 0
    return max(0, apps * standalone_bytes - shared_bytes)
